"""The scheduler: binds pending pods to nodes.

Layers: `plan` decides (pure: which node fits a pod, and why the others do not);
`assumed_pods` keeps the pods the scheduler has bound but the informer has not shown bound yet;
`scheduler` wires informers, the work queue and the API writes (binding, status).
"""
