"""The garbage collector: objects whose owners (metadata.ownerReferences) are gone are
deleted, in the background (the owner goes first, then its dependents, level by level:
Deployment -> ReplicaSets -> Pods, Service -> EndpointSlices).

- `ownership`: given what is known of each owner, keep / delete / drop dangling
  references (pure);
- `controller`: informers on the kinds that own and are owned, indexed by uid and by
  owner uid; an owner's deletion enqueues its dependents; the worker confirms an absent
  owner against the API server before deleting anything;
- `__main__`: the process (`python -m services.gc`).
"""
