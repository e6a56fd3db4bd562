"""The shell every service process shares, one concern per module:

    logs.py      one log line per record, the object key as a field (`setup_logging`)
    health.py    the one /healthz, /readyz, /metrics app of every service (`create_health_app`)
    healthz.py   named checks served as the Kubernetes components serve them (?verbose, /readyz/<check>)
    metrics.py   the work-queue and informer Prometheus collector
    run.py       the run loop: informers, wait for sync, workers, stop on SIGTERM/SIGINT
    flags.py     the command line every controller process shares, and its `main`

Import names from the module that defines them; this package re-exports nothing.
"""
