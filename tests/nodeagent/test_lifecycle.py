"""postStart and preStop hooks and the startup probe, with the in-memory runtime: what runs in
which order, what is told, and what the status says."""
from __future__ import annotations

import asyncio
import time

import pytest

from services.nodeagent.lifecycle import HookRunner
from services.nodeagent.podsync import Backoff, plan_pod
from services.nodeagent.probes import Prober, ProbeTarget
from services.nodeagent.runtime import ContainerConfig
from tests.fakes.runtime import FakeRuntime
from tests.nodeagent.test_executor import Node, deleting, pod


def with_container(p, **fields):
    p["spec"]["containers"][0].update(fields)
    return p


@pytest.fixture
def node() -> Node:
    n = Node()
    n.executor.hooks = HookRunner(n.runtime, host_netns=None)
    return n


async def test_post_start_runs_after_start_and_a_failure_kills_the_container(node):
    p = with_container(pod(policy="OnFailure"), lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}})
    node.runtime.exec_result = (1, b"", b"boom")
    await node.sync(p)
    assert node.runtime.calls[1:] == [("create_container", "web", 0), ("start_container", "web", 0),
                                      ("exec_sync", "web", ("sh", "-c", "exit 1")), ("stop_container", "web", 30)]
    message = ("Exec lifecycle hook ([sh -c exit 1]) for Container \"web\" in Pod \"p_ns(u1)\" failed - error: "
               "command 'sh -c exit 1' exited with 1: boom, message: \"boom\"")
    assert node.events.told == [("Pulled", 'Container image "nginx" already present on machine'),
                                ("Created", "Created container: web"), ("Started", "Started container web"),
                                ("FailedPostStartHook", message), ("Killing", "FailedPostStartHook")]
    waiting = p["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "PostStartHookError", "message": message}
    assert node.requeued and node.requeued[-1][1] == pytest.approx(10.01)  # the back-off, then a restart


async def test_a_successful_post_start_leaves_the_container_running(node):
    p = with_container(pod(), lifecycle={"postStart": {"exec": {"command": ["true"]}}})
    await node.sync(p)
    assert ("exec_sync", "web", ("true",)) in node.runtime.calls
    assert "running" in p["status"]["containerStatuses"][0]["state"]


async def test_pre_stop_runs_before_the_term_signal_within_the_grace_period(node):
    p = with_container(pod(grace=30), lifecycle={"preStop": {"exec": {"command": ["drain"]}}})
    await node.sync(p)
    node.forget_calls()
    node.runtime.exec_result = (2, b"", b"")
    await node.sync(deleting(p, grace=20))
    assert node.runtime.calls[:2] == [("exec_sync", "web", ("drain",)), ("stop_container", "web", 19)]
    assert ("FailedPreStopHook", "PreStopHook failed") in node.events.told


async def test_pre_stop_sleep_takes_from_the_grace_period_leaving_at_least_two_seconds(node):
    p = with_container(pod(grace=1), lifecycle={"preStop": {"sleep": {"seconds": 5}}})
    await node.sync(p)
    node.forget_calls()
    began = time.monotonic()
    await node.sync(deleting(p, grace=1))
    assert time.monotonic() - began < 3  # the hook is cut at the grace period
    assert ("stop_container", "web", 2) in node.runtime.calls


def test_a_failed_startup_probe_kills_the_container_with_its_own_words():
    n = Node()
    p = with_container(pod(), startupProbe={"exec": {"command": ["ready"]}})
    plan = plan_pod(p, [], [], now=0, backoff=Backoff())
    assert plan.create_sandbox
    asyncio.run(n.sync(p))
    (cid,) = n.runtime.containers
    assert p["status"]["containerStatuses"][0]["started"] is False  # not until the startup probe succeeds
    assert p["status"]["containerStatuses"][0]["ready"] is False
    sandboxes, containers = list(n.runtime.sandboxes.values()), list(n.runtime.containers.values())
    plan = plan_pod(p, sandboxes, containers, now=time.time(), backoff=Backoff(), startup_failed=frozenset({cid}))
    assert plan.kill_containers == [(cid, "StartupFailed")]
    asyncio.run(n.executor.run(plan))
    assert ("Killing", "Container web failed startup probe, will be restarted") in n.events.told


async def until(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("exit_code", "started", "failed"), [(0, True, False), (1, False, True)],
                         ids=["succeeds", "fails"])
async def test_the_startup_probe_gates_the_other_probes(exit_code, started, failed):
    runtime = FakeRuntime()
    sandbox = await runtime.run_pod_sandbox("u1", "ns", "p")
    info = await runtime.create_container(sandbox.id, ContainerConfig(name="web", image="nginx"))
    await runtime.start_container(info.id)
    runtime.exec_result = (exit_code, b"", b"")
    changes: list[str] = []
    prober = Prober(runtime, host_netns=None, on_change=changes.append)
    spec = {"name": "web", "startupProbe": {"exec": {"command": ["check"]}, "periodSeconds": 0.05,
                                            "failureThreshold": 2},
            "livenessProbe": {"exec": {"command": ["alive"]}, "periodSeconds": 0.05, "failureThreshold": 100}}
    prober.ensure(ProbeTarget("ns/p", spec, info.id, sandbox.ip))
    try:
        await until(lambda: changes)
        assert prober.started.get(info.id, False) is started
        assert (info.id in prober.startup_failed) is failed
        if started:  # only now the liveness probe runs
            await until(lambda: ("exec_sync", "web", ("alive",)) in runtime.calls)
        else:
            await asyncio.sleep(0.2)
            assert ("exec_sync", "web", ("alive",)) not in runtime.calls
            assert runtime.calls.count(("exec_sync", "web", ("check",))) == 2
    finally:
        await prober.close()
