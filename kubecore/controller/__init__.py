"""The shell every service process shares: structured logs, the /healthz, /readyz and /metrics
app, the run loop that waits for caches before starting workers and stops them on a signal."""
