"""Node staleness and the condition rewrites, as tables."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.nodelifecycle.staleness import (
    format_time,
    mark_pod_not_ready,
    mark_unknown,
    ready_status,
    seconds_until_stale,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def node(beat_ago: float | None, status: str = "True", created_ago: float = 3600) -> dict:
    meta = {"name": "n1", "creationTimestamp": format_time(NOW - timedelta(seconds=created_ago))}
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if beat_ago is not None:
        conditions.append({"type": "Ready", "status": status, "reason": "KubeletReady",
                           "lastHeartbeatTime": format_time(NOW - timedelta(seconds=beat_ago)),
                           "lastTransitionTime": "2024-05-01T00:00:00Z"})
    return {"metadata": meta, "status": {"conditions": conditions}}


@pytest.mark.parametrize("n, left", [
    (node(10), 30.0),
    (node(40), 0.0),
    (node(100), -60.0),
    (node(None, created_ago=5), 35.0),
    (node(None, created_ago=500), -460.0),
], ids=["fresh", "exactly-grace", "long-silent", "new-never-posted", "old-never-posted"])
def test_seconds_until_stale(n, left):
    assert seconds_until_stale(n, NOW, 40) == left


def test_mark_unknown_rewrites_every_condition_and_keeps_the_heartbeat():
    marked = mark_unknown(node(100), NOW)
    ready = [c for c in marked["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready == {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                     "message": "Kubelet stopped posting node status.",
                     "lastHeartbeatTime": "2024-05-01T11:58:20Z",
                     "lastTransitionTime": "2024-05-01T12:00:00Z"}
    assert {c["type"]: c["status"] for c in marked["status"]["conditions"]} == {
        "MemoryPressure": "Unknown", "Ready": "Unknown"}
    assert mark_unknown(marked, NOW) is None  # already says so: no write


def test_a_node_that_never_posted_gets_a_ready_unknown_condition():
    marked = mark_unknown(node(None), NOW)
    assert ready_status(marked) == "Unknown"
    assert [c["reason"] for c in marked["status"]["conditions"] if c["type"] == "Ready"] == [
        "NodeStatusNeverUpdated"]


@pytest.mark.parametrize("conditions, changed", [
    ([{"type": "Ready", "status": "True"}], True),
    ([{"type": "Ready", "status": "False"}], False),
    ([], False),
], ids=["ready", "not-ready", "no-conditions"])
def test_mark_pod_not_ready(conditions, changed):
    pod = {"metadata": {"name": "p"}, "status": {"conditions": conditions}}
    out = mark_pod_not_ready(pod, "n1", NOW)
    assert (out is not None) == changed
    if out is not None:
        (ready,) = out["status"]["conditions"]
        assert ready["status"] == "False" and ready["reason"] == "NodeNotReady"
        assert pod["status"]["conditions"][0]["status"] == "True"  # the input is left alone
