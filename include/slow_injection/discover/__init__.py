"""`slow-injection discover`: read blue, draft wave specs for a human to review.

inventory (read the cluster) → classify → dependencies → grouping → render → files (digest, atomic
write). Everything after inventory is pure.
"""
