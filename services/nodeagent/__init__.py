"""The node agent (the project's kubelet).

Layers, bottom up; each only uses the ones below it:

- `cni`: executes a CNI network configuration list (ADD, DEL, CHECK, VERSION).
- `images`: the local image catalog (image name -> entrypoint/cmd/env).
- `podinput`: the runtime's own checks on pod strings bound for files and exec (hostnames,
  environment, arguments), so a bad stored pod fails its sandbox or container, never the agent.
- `runtime`: a CRI-shaped runtime: pod sandboxes (network namespace + CNI + pod files) and
  containers (processes inside the sandbox's namespaces), state persisted on disk. It reaches
  the network through `cni.NetworkPlugin`.
- `cri`: `ContainerRuntime`, the runtime as everything above uses it (the real one or a fake).
- `podsync`: the pure pod planner and status; `executor`: carries a plan's steps out through
  the runtime, the prober and the API; `agent`: the node, its informers, queue and loops.
- `workloads/`: the small servers catalog images run (nginx, agnhost netexec/serve-hostname).
"""
