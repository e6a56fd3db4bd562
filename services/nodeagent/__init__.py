"""The node agent (the project's kubelet).

Layers, bottom up; each only uses the ones below it:

- `cni`: executes a CNI network configuration list (ADD, DEL, CHECK, VERSION).
- `oci/`: images (references, the content store, pulls, layers) and what an OCI runtime is given
  (runtime config, security, resources, runc); `ociruntime` runs containers from them.
- `podinput`: the runtime's own checks on pod strings bound for files and exec (hostnames,
  environment, arguments), so a bad stored pod fails its sandbox or container, never the agent.
- `runtime`: a CRI-shaped runtime: pod sandboxes (network namespace + CNI + pod files) and
  containers (host processes inside the sandbox's namespaces: `--container-runtime process`),
  state persisted on disk. It reaches the network through `cni.NetworkPlugin`. `ociruntime`
  extends it with containers from images, run by runc.
- `containerio`: a container's stdio as containerd's shim keeps it: stdout/stderr FIFOs pumped
  into a CRI-format log and to attached clients, a stdin FIFO or a terminal; the runtime uses it.
- `cri`: `ContainerRuntime`, the runtime as everything above uses it (the real one or a fake).
- `podenv`: a container's env, envFrom and $(VAR) expansion of env, command and args, as
  kubelet makes them, with `kubecore.api.quantity` for resource fields (pure).
- `projected` (tokens, the atomic writer), `volumefiles` (which volumes the node makes, what
  their files hold; pure), `sources` (the ConfigMaps and Secrets pods read, through a TTL cache)
  and `volumes` (emptyDir, hostPath, configMap, secret, downwardAPI, projected on disk).
- `probes` (startup, readiness, liveness) and `lifecycle` (postStart and preStop hooks).
- `podsync`: the pure pod planner and status; `executor`: carries a plan's steps out through
  the runtime, the prober and the API; `imagemanager` (pull policies, back-off, pull secrets) and
  `imagegc` (image garbage collection); `agent`: the node, its informers, queue and loops.
- the secure port's streams, each over what the client speaks: `execstream` and `attachstream`
  (WebSocket channels), `spdyconn` (a SPDY/3.1 server connection) with `spdystreams` (exec and
  attach of SPDY clients) and `portforward`; `podlog` reads the CRI log for `pods/log`.
- `workloads/`: the agnhost image's servers (netexec, serve-hostname, pause), which
  `cluster/nodeimages.py` puts into that image.
"""
