"""The DaemonSet controller: one pod per node that should run it, rolled out by revisions.

Layers, pure first:
- `placement`: which nodes should run a daemon pod (the template's node name, node selector
  and required node affinity, the node's taints against the tolerations kube adds to every
  daemon pod) and the pod a node gets (bound to it by a required node affinity on
  `metadata.name`, which the scheduler honours);
- `revisions`: the template hash, the `controller-revision-hash` label, ControllerRevision
  `data` (kube's strategic merge patch that restores the template) and the history to keep;
- `plan`: per node, the pods to create and delete; the rolling update's budget
  (maxUnavailable, maxSurge); the DaemonSet's status;
- `controller`: informers on DaemonSets, pods, nodes and ControllerRevisions, the work queue,
  expectations and the API writes;
- `__main__`: the process (`python -m services.daemonset`).

The helpers of `revisions` have the same shape as the StatefulSet controller's; they live here
because services do not import each other.
"""
