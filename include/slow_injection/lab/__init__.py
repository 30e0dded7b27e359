"""The local migration lab: two demo services (blue, green), HAProxy in front, Prometheus scraping
them, and a bounded load generator — real processes on loopback, started and stopped by PID."""
