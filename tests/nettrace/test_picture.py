"""The live picture's model of the seed's cluster: nodes with their ranges and pods, Services
with the endpoints their slices list (and which pod each is), routes between nodes."""
from __future__ import annotations

from kubecore.nettrace.picture import picture
from tests.nettrace.world import NODES, PODS, node_obj, pod, seed_state


def seed_picture(**kw):
    state = seed_state()
    pods = [pod(n) for n in PODS]
    return picture(kw.get("pods", pods), state.services, kw.get("slices", state.slices), [node_obj(n) for n in NODES])


def test_nodes_pods_services_and_routes_of_the_seed():
    pic = seed_picture()
    assert [(n["name"], n["ip"], n["podCIDR"]) for n in pic["nodes"]] == [
        ("kind-worker", "172.18.0.3", "10.244.1.0/24"), ("kind-worker2", "172.18.0.4", "10.244.2.0/24")]
    assert [[p["name"] for p in n["pods"]] for n in pic["nodes"]] == [
        ["client", "test-lgqcq"], ["test-jcdzz", "test-pjrjp"]]
    mysvc = next(s for s in pic["services"] if s["name"] == "mysvc")
    assert (mysvc["clusterIP"], mysvc["ports"][0]["port"]) == ("10.96.62.22", 8080)
    assert [(e["ip"], e["pod"], e["node"], e["ready"]) for e in mysvc["endpoints"]] == [
        ("10.244.1.2", "default/test-lgqcq", "kind-worker", True),
        ("10.244.2.2", "default/test-jcdzz", "kind-worker2", True),
        ("10.244.2.3", "default/test-pjrjp", "kind-worker2", True)]
    assert pic["routes"] == [
        {"from": "kind-worker", "to": "kind-worker2", "cidr": "10.244.2.0/24", "via": "172.18.0.4"},
        {"from": "kind-worker2", "to": "kind-worker", "cidr": "10.244.1.0/24", "via": "172.18.0.3"}]
    assert pic["unscheduled"] == []


def test_a_pending_pod_is_unscheduled_and_a_terminating_one_says_so():
    pending = pod("client")
    pending["spec"] = {}
    pending["status"] = {"phase": "Pending"}
    going = pod("test-jcdzz")
    going["metadata"]["deletionTimestamp"] = "2026-12-03T08:00:00Z"
    pic = seed_picture(pods=[pending, going])
    assert [p["name"] for p in pic["unscheduled"]] == ["client"]
    assert pic["nodes"][1]["pods"][0]["phase"] == "Terminating"
    mysvc = next(s for s in pic["services"] if s["name"] == "mysvc")
    assert [e["pod"] for e in mysvc["endpoints"]] == ["", "default/test-jcdzz", ""]  # pods gone from the list
