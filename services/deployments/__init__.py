"""The ReplicaSet and Deployment controllers, one process, shared informers.

Layers, pure first:
- `controller_refs`: controller references, and which objects an owner adopts or releases;
- `replicaset_plan`: pods to create or delete, the order they are deleted in, RS status;
- `deployment_plan`: the pod-template hash, rolling-update and recreate steps,
  proportional scaling, Deployment status and conditions, history clean-up;
- `expectations`: creations and deletions in flight, so a burst is not repeated
  before the informer has seen it;
- `replicaset`, `deployment`: the controllers (informers, queues, API writes);
- `__main__`: the process.
"""
