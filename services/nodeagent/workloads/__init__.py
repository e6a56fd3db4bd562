"""Stand-ins for container images: small stdlib-only servers run inside pod namespaces.

Stdlib only, so they run with any Python and start fast.
"""
