"""The garbage collector: deletion propagation as kube's collector does it.

- Background: objects whose owners (metadata.ownerReferences) are gone are deleted, the
  owner first, then its dependents, level by level (Deployment -> ReplicaSets -> Pods,
  Service -> EndpointSlices);
- Orphan: an owner marked with the `orphan` finalizer is removed from its dependents'
  references, then the finalizer goes (the API server then deletes the owner);
- Foreground: the dependents of an owner marked with `foregroundDeletion` are deleted
  (in the foreground too when they have dependents of their own); the finalizer goes once
  none that blocks the owner (blockOwnerDeletion) is left, so the owner goes last.

- `decisions`: what to do with a dependent given its owners' states, and what an owner
  being deleted with Orphan or Foreground needs (pure);
- `controller`: informers on the kinds that own and are owned, indexed by uid and by
  owner uid; the worker confirms an absent owner against the API server and re-reads a
  dependent before deleting it;
- `__main__`: the process (`python -m services.gc`).
"""
