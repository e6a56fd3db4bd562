"""The node lifecycle controller: a node that stopped posting heartbeats for longer than
the grace period is marked Ready=Unknown, and the pods on it Ready=False, so the
EndpointSlice controller takes them out of service.

- `staleness`: staleness and the condition rewrites (pure);
- `controller`: informers on nodes and pods (indexed by node), a worker per node key
  that re-checks a healthy node when its grace would run out;
- `__main__`: the process (`python -m services.nodelifecycle`).

The node agent sets Ready=True again itself when it resumes posting status.
"""
