"""Service traffic policies through real rules, in the topology of test_datapath.py (a client
outside the cluster, a routing node running the proxy as node-a, backend be1 on node-a and be2
standing for a pod of another node): externalTrafficPolicy and internalTrafficPolicy Local,
ClientIP affinity, terminating endpoints; in both proxy modes."""
from __future__ import annotations

from collections import Counter
from typing import Any

from services.proxy.runner import SyncTrigger
from tests.proxy.objects import endpoint, endpoint_slice, port, service, slice_port
from tests.proxy.test_datapath import WEB_IP, Topology, _proxier
from tests.proxy.test_datapath import topology as topology  # the fixture: every test in both modes

NODE_PORT = 30080


def _web(spec: dict[str, Any], **kind: Any) -> dict[str, Any]:
    svc = service("web", WEB_IP, [port(80, name="http", target_port=8080, node_port=NODE_PORT)], **kind)
    svc["spec"].update(spec)
    return svc


def _slice(*eps: dict[str, Any]) -> dict[str, Any]:
    return endpoint_slice("web", list(eps), [slice_port(8080, name="http")])


LOCAL, REMOTE = endpoint("10.244.1.2", node="node-a"), endpoint("10.244.2.2", node="node-b")


async def _programmed(topology: Topology, svc: dict[str, Any], eps: dict[str, Any]):
    proxier = _proxier(topology)
    proxier.on_service(svc)
    proxier.on_endpoint_slice(eps)
    proxier.mark_services_synced()
    proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)
    return proxier


async def test_external_traffic_policy_local_keeps_the_client_address(topology: Topology) -> None:
    proxier = await _programmed(topology, _web({"externalTrafficPolicy": "Local"}, type_="NodePort"),
                                _slice(LOCAL, REMOTE))
    answers = Counter(a for a, _ in topology.ask("http", "10.0.0.1", NODE_PORT, 20))
    assert answers == {"be1 10.0.0.2": 20}, "only this node's endpoint, and it sees the client itself"
    # the cluster IP still reaches both (internal traffic keeps the Cluster policy)
    assert {a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 30)} == {"be1", "be2"}

    proxier.on_endpoint_slice(_slice(REMOTE))  # no endpoint on this node any more: dropped
    await proxier.sync(SyncTrigger.CHANGED)
    [(answer, _)] = topology.ask("http", "10.0.0.1", NODE_PORT, 1)
    assert answer == "timeout", answer
    assert {a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 5)} == {"be2"}


async def test_internal_traffic_policy_local_uses_only_this_nodes_endpoints(topology: Topology) -> None:
    proxier = await _programmed(topology, _web({"internalTrafficPolicy": "Local"}), _slice(LOCAL, REMOTE))
    assert Counter(a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 20)) == {"be1": 20}
    proxier.on_endpoint_slice(_slice(REMOTE))
    await proxier.sync(SyncTrigger.CHANGED)
    [(answer, seconds)] = topology.ask("http", WEB_IP, 80, 1)
    assert answer == "timeout", "dropped, not refused: the Service has endpoints, just none here"


async def test_client_ip_affinity_sticks_to_one_endpoint(topology: Topology) -> None:
    await _programmed(topology, _web({"sessionAffinity": "ClientIP",
                                      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
                      _slice(LOCAL, REMOTE))
    answers = Counter(a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 20))
    assert len(answers) == 1 and sum(answers.values()) == 20, answers


async def test_client_ip_affinity_outlives_a_new_endpoint(topology: Topology) -> None:
    """A partial sync rewrites the Service's chain with a rule naming the existing endpoint's
    affinity set: the client stays where it was, the new endpoint gets no request of its."""
    affinity = _web({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}})
    proxier = await _programmed(topology, affinity, _slice(LOCAL))
    assert {a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 3)} == {"be1"}
    proxier.on_endpoint_slice(_slice(LOCAL, REMOTE))
    await proxier.sync(SyncTrigger.CHANGED)
    assert Counter(a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 20)) == {"be1": 20}


async def test_terminating_endpoints_serve_only_when_no_ready_one_is_left(topology: Topology) -> None:
    terminating = endpoint("10.244.1.2", ready=False, serving=True, terminating=True, node="node-a")
    proxier = await _programmed(topology, _web({}), _slice(terminating, REMOTE))
    assert {a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 20)} == {"be2"}
    proxier.on_endpoint_slice(_slice(terminating))
    await proxier.sync(SyncTrigger.CHANGED)
    assert {a.split()[0] for a, _ in topology.ask("http", WEB_IP, 80, 5)} == {"be1"}
