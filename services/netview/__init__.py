"""The cluster's network, live, in a browser: nodes with their pod ranges, pods with their IPs,
Services with their cluster IPs and endpoints, the routes between nodes (`kubecore.nettrace.
picture`), kept current from watches and pushed to the page as server-sent events; select a pod
and a Service and the page draws `minikubectl trace`'s account of the packet's path over it.

- GET /                 the page (plain HTML, SVG and JavaScript shipped here: nothing fetched)
- GET /api/picture      the picture as JSON
- GET /api/events       text/event-stream: the picture at once, then again after each change
- GET /api/trace?from=<ns>/<pod>&to=<destination>[&protocol=TCP]   the account as JSON
- /healthz /readyz /metrics

The trace reads each node's network through the API server's node proxy, as its own identity
(`netview`: list and watch of the objects it draws, get and create on nodes/proxy).
"""
