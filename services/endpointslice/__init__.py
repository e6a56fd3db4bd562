"""The endpoints controllers of kube-controller-manager, in one process:

- the EndpointSlice controller: for every Service with a selector, the EndpointSlices
  (discovery.k8s.io/v1) listing the ready, serving and terminating addresses of its pods;
- the endpoints controller: for the same Services, the core/v1 Endpoints (one per Service,
  ready and not-ready addresses) that older clients still read;
- the EndpointSlice mirroring controller: for Services without a selector, slices mirrored
  from the Endpoints their users write, so proxies and DNS (which read slices) see them.

Layers, one concern each:

- `endpoints`: a pod and a service -> the endpoint and the ports it serves (pure);
- `planner`: a service, its pods and its current slices -> slices to create, update,
  delete (pure, table-tested);
- `endpoints_plan`: a service, its pods and its current Endpoints -> the one write (pure);
- `mirroring_plan`: an Endpoints, its Service and the slices mirrored so far -> slices to
  create, update, delete (pure);
- `triggertime`: the `endpoints.kubernetes.io/last-change-trigger-time` of each write;
- `tracker`: the writes a controller made and has not yet seen come back through
  its cache, so a stale cache never makes it write twice;
- `controller`, `endpoints_controller`, `mirroring`: informer handlers that only enqueue
  keys, and the workers that plan from the caches and apply the plan;
- `app`: the three over one informer factory; `__main__`: the process
  (`python -m services.endpointslice`).
"""
