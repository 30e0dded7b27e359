"""One driver per real system, each behind a port in include.slow_injection.ports."""
