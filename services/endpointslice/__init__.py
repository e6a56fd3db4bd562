"""The EndpointSlice controller: for every Service with a selector, the EndpointSlices
(discovery.k8s.io/v1) listing the ready, serving and terminating addresses of its pods.

Layers, one concern each:

- `endpoints`: a pod and a service -> the endpoint and the ports it serves (pure);
- `planner`: a service, its pods and its current slices -> slices to create, update,
  delete (pure, table-tested);
- `tracker`: the writes this controller made and has not yet seen come back through
  its cache, so a stale cache never makes it write twice;
- `controller`: informer handlers that only enqueue service keys, and the worker that
  plans from the caches and applies the plan;
- `__main__`: the process (`python -m services.endpointslice`).
"""
