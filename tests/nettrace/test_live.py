"""Gathering a trace's world through any kube client: the objects, each node's view through the
node proxy, and a node whose agent does not answer named in a warning, not a failure."""
from __future__ import annotations

import asyncio

from kubecore.api.errors import ApiError
from kubecore.nettrace import live
from tests.nettrace.world import NODES, node_obj, node_view, pod, seed_state


class Answers:
    """The API server's answers by (method, path); a missing one is its 404."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    async def request(self, method, path, *, body=None):
        self.asked.append((method, path, body))
        answer = self.answers.get((method, path))
        if isinstance(answer, ApiError):
            raise answer
        if answer is None:
            raise ApiError(404, "NotFound", f"{path} not found")
        return answer


def test_gather_reads_objects_and_node_views_and_names_a_silent_node():
    state = seed_state()
    api = Answers({
        ("GET", "/api/v1/pods"): {"items": [pod("client")]},
        ("GET", "/api/v1/services"): {"items": state.services},
        ("GET", "/apis/discovery.k8s.io/v1/endpointslices"): {"items": state.slices},
        ("GET", "/api/v1/nodes"): {"items": [node_obj(n) for n in NODES]},
        ("GET", "/api/v1/nodes/kind-worker/proxy/debug/network"): node_view("kind-worker", state),
        ("GET", "/api/v1/nodes/kind-worker2/proxy/debug/network"):
            ApiError(503, "ServiceUnavailable", "error trying to reach service: dial node kind-worker2"),
    })
    world, warnings = asyncio.run(live.gather(api))
    assert [p["metadata"]["name"] for p in world.pods] == ["client"] and len(world.services) == 2
    assert list(world.node_views) == ["kind-worker"]
    assert warnings == ["node kind-worker2: error trying to reach service: dial node kind-worker2"]


def test_a_probe_goes_to_the_source_pods_node():
    api = Answers({("POST", "/api/v1/nodes/kind-worker/proxy/debug/network/probe"): {"dns": {"queries": []}}})
    answer = asyncio.run(live.probe(api, pod("client"), {"dns": "mysvc"}))
    assert answer == {"dns": {"queries": []}}
    assert api.asked == [("POST", "/api/v1/nodes/kind-worker/proxy/debug/network/probe",
                          {"namespace": "default", "pod": "client", "dns": "mysvc"})]
