"""The node agent (the project's kubelet).

Layers, bottom up; each only uses the ones below it:

- `cni`: executes a CNI network configuration list (ADD, DEL, CHECK, VERSION).
- `images`: the local image catalog (image name -> entrypoint/cmd/env).
- `runtime`: a CRI-shaped runtime: pod sandboxes (network namespace + CNI + pod files) and
  containers (processes inside the sandbox's namespaces), state persisted on disk.
- `workloads/`: the small servers catalog images run (nginx, agnhost netexec/serve-hostname).
"""
