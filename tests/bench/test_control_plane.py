"""The identities the benchmarks give the components they start: the cluster's own
(cluster/credentials.py), so a benchmark runs each under the permissions RBAC gives it."""
from __future__ import annotations

import pytest

from bench.control_plane import identity


@pytest.mark.parametrize(("component", "expected"), [
    ("scheduler", ("system:kube-scheduler", ())),
    ("endpointslice", ("system:serviceaccount:kube-system:endpointslice-controller", ())),
    ("dns", ("system:serviceaccount:kube-system:coredns", ())),
    ("proxy", ("system:kube-proxy", ())),
    ("node:n1", ("system:node:n1", ("system:nodes",))),
], ids=["scheduler", "endpointslice", "dns", "proxy", "node-agent"])
def test_components_run_as_their_identity_in_the_cluster(component, expected):
    assert identity(component) == expected


def test_an_unknown_component_has_no_identity():
    with pytest.raises(KeyError):
        identity("nobody")
