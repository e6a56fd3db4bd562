"""In-memory stand-ins for what the services talk to (the API server, a container runtime,
CNI, iptables), so their logic gets fast table tests without etcd, root or namespaces.

Each fake lives in its own module and records what it was asked, so a test can assert the
writes a controller made as well as the state it left.
"""
