"""The DaemonSet planner: per-node pods, the rolling update's budget, the status (pure)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.daemonset import plan as P
from tests.daemonset.objects import daemonset, node, pod

NOW = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
LATER = "2026-01-01T00:05:00Z"
NODES = [node("a"), node("b"), node("c")]


def _names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def _by_node(*pods: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in pods:
        out.setdefault(p["spec"]["nodeName"], []).append(p)
    return out


NODE_CASES = [
    # (ds, nodes, pods, create on, delete, failed)
    (daemonset(), NODES, [], ["a", "b", "c"], [], []),
    (daemonset(), NODES, [pod("pa", "a"), pod("pb", "b")], ["c"], [], []),
    (daemonset(nodeSelector={"role": "edge"}), [node("a", labels={"role": "edge"}), node("b")],
     [pod("pa", "a"), pod("pb", "b")], [], ["pb"], []),
    (daemonset(), [node("a")], [pod("old", "a"), pod("young", "a", created=LATER)], [], ["young"], []),
    (daemonset(), [node("a")], [pod("gone", "a", deleting=True)], [], [], []),
    (daemonset(), [node("a")], [pod("f", "a", phase="Failed")], [], [], ["f"]),
    (daemonset(), [node("a"), node("b", taints=[{"key": "x", "effect": "NoExecute"}])],
     [pod("pa", "a"), pod("pb", "b")], [], ["pb"], []),
    (daemonset(), [node("a"), node("b", taints=[{"key": "x", "effect": "NoSchedule"}])],
     [pod("pa", "a"), pod("pb", "b")], [], [], []),
    (daemonset(surge=1, unavailable=0), [node("a")], [pod("f", "a", phase="Failed")], ["a"], [], ["f"]),
    (daemonset(surge=1, unavailable=0), [node("a")],
     [pod("old", "a", hash_="old"), pod("new", "a", created=LATER, ready=False)], [], [], []),
    (daemonset(surge=1, unavailable=0), [node("a")],
     [pod("old", "a", hash_="old"), pod("new", "a", created=LATER)], [], ["old"], []),
    (daemonset(surge=1, unavailable=0), [node("a")],
     [pod("old", "a", hash_="old", ready=False), pod("new", "a", created=LATER, ready=False)],
     [], ["old"], []),
]
NODE_IDS = ["all-nodes", "missing-node", "node-no-longer-selected", "two-pods-oldest-stays",
            "terminating-holds-the-node", "failed-pod", "untolerated-no-execute-evicts",
            "untolerated-no-schedule-stays", "surge-failed-replaced-at-once", "surge-new-not-ready",
            "surge-new-ready-old-goes", "surge-old-not-ready-goes"]


@pytest.mark.parametrize(("ds", "nodes", "pods", "create_on", "delete", "failed"), NODE_CASES,
                         ids=NODE_IDS)
def test_node_actions(ds: dict[str, Any], nodes: list[dict[str, Any]], pods: list[dict[str, Any]],
                      create_on: list[str], delete: list[str], failed: list[str]) -> None:
    got = P.node_actions(ds, nodes, _by_node(*pods), "new", NOW)
    assert (got.create_on, _names(got.delete), _names(got.failed)) == (create_on, delete, failed)


def test_unbound_pod_for_a_node_that_is_gone_is_deleted() -> None:
    stray = pod("stray", "x")
    del stray["spec"]["nodeName"]
    got = P.node_actions(daemonset(), [node("a")], {"a": [pod("pa", "a")], "gone": [stray]}, "new", NOW)
    assert (got.create_on, _names(got.delete)) == ([], ["stray"])


OLD3 = [pod("oa", "a", hash_="old"), pod("ob", "b", hash_="old"), pod("oc", "c", hash_="old")]

ROLLING_CASES = [
    # (ds, pods, create on, delete)
    (daemonset(), OLD3, [], ["oa"]),
    (daemonset(unavailable=2), OLD3, [], ["oa", "ob"]),
    (daemonset(unavailable="50%"), OLD3, [], ["oa", "ob"]),  # 1.5 rounds up
    (daemonset(unavailable="100%"), OLD3, [], ["oa", "ob", "oc"]),
    (daemonset(), [pod("na", "a", ready=False), OLD3[1], OLD3[2]], [], []),  # budget spent
    (daemonset(), [OLD3[0], OLD3[1]], [], []),  # node c has no pod: that is the one unavailable
    (daemonset(), [pod("na", "a"), OLD3[1], pod("oc", "c", hash_="old", ready=False)], [], ["oc"]),
    (daemonset(), [pod("na", "a"), OLD3[1], OLD3[2]], [], ["ob"]),
    (daemonset(min_ready=600), [pod("na", "a", ready_since=LATER), OLD3[1], OLD3[2]], [], []),
    (daemonset(surge=1, unavailable=0), OLD3, ["a"], []),
    (daemonset(surge="100%", unavailable=0), OLD3, ["a", "b", "c"], []),
    (daemonset(surge=1, unavailable=0),
     [pod("oa", "a", hash_="old"), pod("na", "a", created=LATER, ready=False), OLD3[1], OLD3[2]],
     [], []),
    (daemonset(surge=1, unavailable=0),
     [OLD3[0], pod("ob", "b", hash_="old", ready=False), OLD3[2]], ["b", "a"], []),
    (daemonset(surge=1, unavailable=0),
     [pod("oa", "a", hash_="old"), pod("na", "a", created=LATER), OLD3[1], OLD3[2]], ["b"], ["oa"]),
]
ROLLING_IDS = ["one-at-a-time", "two-at-a-time", "percent-rounds-up", "all-at-once",
               "new-pod-not-ready-yet", "missing-pod-counts", "unavailable-old-replaced-freely",
               "next-after-available", "min-ready-seconds", "surge-one", "surge-all",
               "surge-waiting", "surge-unavailable-old-at-once", "surge-available-new-old-goes"]


@pytest.mark.parametrize(("ds", "pods", "create_on", "delete"), ROLLING_CASES, ids=ROLLING_IDS)
def test_rolling_update(ds: dict[str, Any], pods: list[dict[str, Any]], create_on: list[str],
                        delete: list[str]) -> None:
    got = P.rolling_update(ds, NODES, _by_node(*pods), "new", NOW)
    assert (got.create_on, _names(got.delete)) == (create_on, delete)


@pytest.mark.parametrize(("ds", "desired", "wanted"), [
    (daemonset(), 10, (0, 1)),
    (daemonset(unavailable="25%"), 10, (0, 3)),
    (daemonset(surge="10%", unavailable=0), 5, (1, 0)),
    (daemonset(surge=0, unavailable=0), 3, (0, 1)),
    (daemonset(on_delete=True), 3, (0, 1)),
], ids=["default", "percent-up", "surge-percent-up", "both-zero-means-one", "on-delete"])
def test_budget(ds: dict[str, Any], desired: int, wanted: tuple[int, int]) -> None:
    assert P.surge_and_unavailable(ds, desired) == wanted


def test_status() -> None:
    ds = daemonset(nodeSelector={"role": "edge"}, min_ready=60)
    ds["metadata"]["generation"] = 3
    nodes = [node(n, labels={"role": "edge"}) for n in ("a", "b", "c", "d")] + [node("e")]
    pods = [pod("pa", "a"), pod("pb", "b", hash_="old"), pod("pc", "c", ready=False),
            pod("pd", "d", ready_since="2026-01-01T00:09:30Z"), pod("pe", "e")]
    status = P.daemonset_status(ds, nodes, _by_node(*pods), "new", NOW, observed=True)
    assert status == {"desiredNumberScheduled": 4, "currentNumberScheduled": 4,
                      "numberMisscheduled": 1, "numberReady": 3, "updatedNumberScheduled": 3,
                      "numberAvailable": 2, "numberUnavailable": 2, "observedGeneration": 3}
    not_observed = P.daemonset_status(ds, nodes, {}, "new", NOW, observed=False)
    assert not_observed == {"desiredNumberScheduled": 4, "currentNumberScheduled": 0,
                            "numberMisscheduled": 0, "numberReady": 0, "numberUnavailable": 4}
    assert P.seconds_until_available(ds, pods, NOW) == 30


def test_template_generation_label_counts_as_updated() -> None:
    old_controller_pod = pod("p", "a", hash_="")
    old_controller_pod["metadata"]["labels"]["pod-template-generation"] = "1"
    assert P.is_updated(old_controller_pod, "new", 1)
    assert not P.is_updated(old_controller_pod, "new", 2)
