"""The event recorder: the correlator's decisions as tables (pure, fast), then the recorder
against the real API server (aggregation into one Event, and that emitting never fails)."""
from __future__ import annotations

import asyncio

import pytest

from kubecore.api import resources as R
from kubecore.client.events import (
    NORMAL,
    WARNING,
    Correlator,
    EventRecorder,
    event_key,
    make_event,
    object_reference,
)
from kubecore.client.rest import ApiClient

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web-1", "namespace": "default", "uid": "u-1", "resourceVersion": "7"}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "mc-node-1", "uid": "n-1"}}


def ev(reason: str = "Scheduled", message: str = "Successfully assigned default/web-1 to n1", *,
       obj: dict = POD, event_type: str = NORMAL, component: str = "default-scheduler",
       field_path: str | None = None, now: float = 1_700_000_000.0, ns: int = 1) -> dict:
    return make_event(object_reference(obj, field_path), event_type, reason, message,
                      component=component, now=now, now_ns=ns)


def test_an_event_refers_to_its_object_and_is_named_after_it():
    e = make_event(object_reference(POD, "spec.containers{web}"), WARNING, "BackOff", "m",
                   component="kubelet", host="mc-node-1", now=1_700_000_000.0,
                   now_ns=0x17A3B5D6E7F80001)
    assert e["metadata"] == {"name": "web-1.17a3b5d6e7f80001", "namespace": "default"}
    assert e["involvedObject"] == {"kind": "Pod", "namespace": "default", "name": "web-1",
                                   "uid": "u-1", "apiVersion": "v1", "resourceVersion": "7",
                                   "fieldPath": "spec.containers{web}"}
    assert e["source"] == {"component": "kubelet", "host": "mc-node-1"}
    assert (e["reportingComponent"], e["reportingInstance"]) == ("kubelet", "mc-node-1")
    assert e["firstTimestamp"] == e["lastTimestamp"] == "2023-11-14T22:13:20Z"
    assert (e["type"], e["reason"], e["count"]) == (WARNING, "BackOff", 1)


def test_events_about_cluster_scoped_objects_go_to_default():
    e = ev(obj=NODE)
    assert e["metadata"]["namespace"] == "default"
    assert "namespace" not in e["involvedObject"]


def test_an_object_without_kind_cannot_be_referred_to():
    with pytest.raises(ValueError):
        object_reference({"metadata": {"name": "x"}})


@pytest.mark.parametrize("other, same", [
    (dict(), True),
    (dict(message="different"), False),
    (dict(reason="FailedScheduling"), False),
    (dict(event_type=WARNING), False),
    (dict(field_path="spec.containers{web}"), False),
    (dict(component="kubelet"), False),
    (dict(obj={**POD, "metadata": {**POD["metadata"], "uid": "u-2"}}), False),
    (dict(now=1_800_000_000.0, ns=99), True),  # the time and name are not part of it
], ids=["identical", "message", "reason", "type", "field-path", "source", "uid", "later"])
def test_event_key(other, same):
    assert (event_key(ev()) == event_key(ev(**other))) is same


def written(e: dict, count: int = 1) -> dict:
    return {**e, "count": count}


def test_a_repeat_within_ten_minutes_patches_count_and_last_timestamp():
    c = Correlator()
    first = ev(ns=1)
    assert c.decide(first, now=0.0).action == "create"
    c.observed(first, written(first), now=0.0)
    again = ev(now=1_700_000_030.0, ns=2)
    d = c.decide(again, now=30.0)
    assert d.action == "patch"
    assert d.event["metadata"]["name"] == first["metadata"]["name"]
    assert d.patch == {"count": 2, "lastTimestamp": "2023-11-14T22:13:50Z"}
    c.observed(again, written(d.event, 2), now=30.0)
    third = c.decide(ev(ns=3), now=60.0)
    assert third.patch["count"] == 3 and third.event["firstTimestamp"] == first["firstTimestamp"]


def test_a_repeat_after_ten_minutes_is_a_new_event():
    c = Correlator()
    first = ev()
    c.observed(first, written(first), now=0.0)
    assert c.decide(ev(ns=2), now=599.0).action == "patch"
    assert c.decide(ev(ns=3), now=601.0).action == "create"


def test_a_different_message_is_a_new_event():
    c = Correlator()
    first = ev()
    c.observed(first, written(first), now=0.0)
    assert c.decide(ev(message="other"), now=1.0).action == "create"


def test_twenty_five_per_object_then_one_per_five_minutes():
    c = Correlator()
    actions = [c.decide(ev(message=f"m{i}"), now=float(i) * 0.01).action for i in range(30)]
    assert actions == ["create"] * 25 + ["drop"] * 5
    # another object has its own budget
    other = {**POD, "metadata": {**POD["metadata"], "name": "web-2", "uid": "u-2"}}
    assert c.decide(ev(obj=other), now=1.0).action == "create"
    assert c.decide(ev(message="later"), now=150.0).action == "drop"
    assert c.decide(ev(message="later"), now=300.0).action == "create"
    assert c.decide(ev(message="later still"), now=301.0).action == "drop"


def test_caches_are_bounded():
    c = Correlator(size=3)
    for i in range(5):
        e = ev(message=f"m{i}")
        c.observed(e, written(e), now=0.0)
    assert c.decide(ev(message="m0"), now=1.0).action == "create"  # forgotten
    assert c.decide(ev(message="m4"), now=1.0).action == "patch"


# --- against the API server ----------------------------------------------------------------

async def test_two_identical_events_are_one_event_with_count_two(apiserver):
    async with ApiClient(apiserver.config) as client:
        pod = await client.create(R.PODS, {"metadata": {"name": "web-1"}, "spec": {
            "containers": [{"name": "web", "image": "nginx"}]}}, "default")
        recorder = EventRecorder(client, "default-scheduler")
        for _ in range(2):
            recorder.event(pod, NORMAL, "Scheduled", "Successfully assigned default/web-1 to n1")
        recorder.event(pod, WARNING, "FailedScheduling", "0/0 nodes are available")
        await recorder.close()
        assert recorder.stats == {"created": 2, "patched": 1}
        items, _ = await client.list(R.EVENTS, "default",
                                     field_selector="involvedObject.name=web-1,reason=Scheduled")
        [e] = items
        assert e["count"] == 2
        assert e["lastTimestamp"] >= e["firstTimestamp"]
        assert e["involvedObject"]["uid"] == pod["metadata"]["uid"]
        assert e["involvedObject"]["kind"] == "Pod"
        assert e["source"] == {"component": "default-scheduler"}
        assert e["metadata"]["name"].startswith("web-1.")


async def test_an_event_deleted_meanwhile_is_created_again(apiserver):
    async with ApiClient(apiserver.config) as client:
        recorder = EventRecorder(client, "kubelet", host="n1")
        recorder.event(NODE, NORMAL, "Starting", "Starting kubelet.")
        await recorder.flush()
        [e], _ = await client.list(R.EVENTS, "default")
        await client.delete(R.EVENTS, e["metadata"]["name"], "default")
        recorder.event(NODE, NORMAL, "Starting", "Starting kubelet.")
        await recorder.close()
        [again], _ = await client.list(R.EVENTS, "default")
        assert again["count"] == 1 and again["metadata"]["name"] != e["metadata"]["name"]


async def test_emitting_never_fails_the_caller():
    from cluster.procs import free_port

    async with ApiClient(f"http://127.0.0.1:{free_port()}", connect_timeout=0.5) as client:
        recorder = EventRecorder(client, "replicaset-controller", queue_size=2)
        for i in range(5):  # nobody answers; the queue takes two, the rest are dropped
            recorder.event(POD, NORMAL, "SuccessfulCreate", f"Created pod: web-{i}")
        recorder.event({"metadata": {"name": "no-kind"}}, NORMAL, "X", "y")
        recorder.event(POD, "Odd", "X", "y")
        await asyncio.wait_for(recorder.close(), 10)
    assert recorder.stats["dropped_queue_full"] == 3
    assert recorder.stats["failed"] == 2 + 2  # two unwritable, two unbuildable
