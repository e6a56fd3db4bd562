"""Init containers: the order they run in, what a failure does under each restartPolicy, and the
status kubelet writes (initContainerStatuses, phase, Initialized), with the in-memory runtime."""
from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from kubecore.printers.tables import pod_summary
from services.nodeagent.podsync import pod_phase
from tests.nodeagent.test_executor import KEY, Node

ok = {"terminated": {"exitCode": 0, "reason": "Completed"}}
failed = {"terminated": {"exitCode": 1, "reason": "Error"}}
running = {"running": {}}
waiting = {"waiting": {"reason": "PodInitializing"}}
crashloop = {"waiting": {"reason": "CrashLoopBackOff"}}


def st(state, last=None):
    return {"state": state, "lastState": {"terminated": last} if last else {}}


@pytest.mark.parametrize(("policy", "init", "app", "want"), [
    ("Always", [st(running), st(waiting)], [st(waiting)], "Pending"),
    ("Always", [st(ok), st(running)], [st(waiting)], "Pending"),
    ("Always", [st(ok), st(ok)], [st(running)], "Running"),
    ("Never", [st(failed), st(waiting)], [st(waiting)], "Failed"),
    ("OnFailure", [st(crashloop, {"exitCode": 1})], [st(waiting)], "Pending"),
    ("Always", [st(crashloop, {"exitCode": 2})], [st(waiting)], "Pending"),
    ("Never", [st(ok)], [st({"terminated": {"exitCode": 0}})], "Succeeded"),
    ("Always", [st(waiting)], [st(running)], "Running"),  # init records gone, the app already runs
], ids=["first-running", "second-running", "initialized", "never-failed", "onfailure-retrying",
        "always-retrying", "never-completed", "app-started-before"])
def test_phase_with_init_containers(policy, init, app, want):
    assert pod_phase(policy, app, None, init) == want


def pod(policy="Always", inits=("init-a", "init-b")):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": policy, "nodeName": "n1",
                     "initContainers": [{"name": n, "image": "busybox"} for n in inits],
                     "containers": [{"name": "web", "image": "nginx"}]},
            "status": {}}


def started(node: Node) -> list[str]:
    return [c[1] for c in node.runtime.calls if c[0] == "start_container"]


def pod_row_status(p) -> str:
    """kubectl's STATUS column."""
    return pod_summary(p, datetime.now(UTC))[1]


def conditions(p):
    return {c["type"]: (c["status"], c.get("reason"), c.get("message")) for c in p["status"]["conditions"]}


async def test_init_containers_run_one_at_a_time_before_the_app():
    node = Node()
    p = pod()
    await node.sync(p)
    assert started(node) == ["init-a"]
    assert node.events.field_paths == ["spec.initContainers{init-a}"] * 3  # Pulled, Created, Started
    assert [s["state"] for s in p["status"]["initContainerStatuses"]][1] == {"waiting": {"reason": "PodInitializing"}}
    assert p["status"]["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert p["status"]["phase"] == "Pending"
    assert conditions(p)["Initialized"] == ("False", "ContainersNotInitialized",
                                            "containers with incomplete status: [init-a init-b]")
    assert pod_row_status(p) == "Init:0/2"
    await node.sync(p)  # still running: nothing more starts
    assert started(node) == ["init-a"]
    node.runtime.exit(node.runtime.by_name("init-a")[-1].id, 0)
    await node.sync(p)
    assert started(node) == ["init-a", "init-b"]
    assert pod_row_status(p) == "Init:1/2"
    assert p["status"]["initContainerStatuses"][0]["ready"] is True
    node.runtime.exit(node.runtime.by_name("init-b")[-1].id, 0)
    await node.sync(p)
    assert started(node) == ["init-a", "init-b", "web"]
    assert p["status"]["phase"] == "Running"
    assert conditions(p)["Initialized"] == ("True", None, None)
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == ["Completed"] * 2
    node.forget_calls()
    await node.sync(p)  # initialized: the init containers are not run again
    assert started(node) == []


async def test_a_failed_init_container_fails_the_pod_under_never():
    node = Node()
    p = pod(policy="Never")
    await node.sync(p)
    node.runtime.exit(node.runtime.by_name("init-a")[-1].id, 3)
    await node.sync(p)
    assert started(node) == ["init-a"]
    assert p["status"]["phase"] == "Failed"
    assert p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert pod_row_status(p) == "Init:Error"
    await node.sync(p)  # terminal: its sandbox is stopped, nothing restarts
    assert started(node) == ["init-a"]


@pytest.mark.parametrize("policy", ["Always", "OnFailure"])
async def test_a_failed_init_container_is_retried_after_a_back_off(policy):
    node = Node()
    p = pod(policy=policy)
    await node.sync(p)
    node.runtime.exit(node.runtime.by_name("init-a")[-1].id, 1)
    await node.sync(p)
    assert started(node) == ["init-a"]  # backing off
    init_a = p["status"]["initContainerStatuses"][0]
    assert init_a["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert init_a["lastState"]["terminated"]["exitCode"] == 1
    assert p["status"]["phase"] == "Pending" and pod_row_status(p) == "Init:CrashLoopBackOff"
    assert any(k == KEY and 9 < d <= 10.1 for k, d in node.requeued)  # the first back-off: 10 s
    await node.sync(p, now=time.time() + 11)
    assert started(node) == ["init-a", "init-a"]
    assert p["status"]["initContainerStatuses"][0]["restartCount"] == 1
