"""The API server, in layers; each imports only the ones below it (kube-apiserver's split of
endpoints, generic registry and storage).

    app           the app factory (`create_app`): builds one process's state, the route table,
                  middleware, and (through aiohttp's cleanup_ctx) the watch caches and the
                  background work, started and stopped with the app
    endpoints/    HTTP: request parsing and content negotiation (requests), thin handlers,
                  watch serving, discovery, OpenAPI, Table rendering, metrics, the node proxy
                  for pods/log and pods/exec
    registry/     what a request does to objects, with no HTTP: the one generic store
                  (create, update, patch, delete, finalizers, graceful deletion, dry run),
                  the strategy every kind goes through, validation, namespace termination,
                  the sweepers, the binding and scale subresources; it reads and writes
                  through narrow Protocols (`registry/interfaces.py`) that storage/ fulfils
    storage/      objects in etcd: the store, the watch cache, paging, range allocations
                  (ClusterIPs, NodePorts, podCIDRs, claimed in a write's own etcd transaction),
                  values encrypted at rest (codec, transformers, encryptionconfig), and the
                  etcd client (etcd, etcdwire, groupcommit)
    settings      the process's flags

The [tool.importlinter] contracts in pyproject.toml hold the layers to this order, and keep
the modules free of import cycles; CI checks them (`make lint`).
"""
