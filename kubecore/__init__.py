"""What every service of the cluster shares, in layers; each layer imports only the ones below it.

    controller/   the shell of a service process: logs, the health/metrics app, the run loop
    informer/     local caches kept current by list+watch (store, reflector, informer) and the work queue
    client/       the only layer that talks HTTP to the API server: the REST client, the Event recorder
    api/          the API itself, with no I/O: object types, models, per-kind defaults and validation,
                  selectors, patches, the wire formats
    printers/     how kubectl prints objects (columns, ages); reads API objects, nothing else

`kubecore` never imports `services`, `cluster` or `minikubectl`; the contracts in pyproject.toml
([tool.importlinter]) hold every layer to this and CI checks them (`make lint`).
"""
