"""The pod executor with an in-memory runtime and CNI (tests/fakes): whole syncs, fast, no root.

Each test drives `plan_pod` + `PodExecutor.run` the way the agent's worker does, then looks at
what the runtime was asked, what the network holds, which events were told and what the API
was written. The real runtime and agent are tested in test_runtime_real.py and test_agent_real.py.
"""
from __future__ import annotations

import time

import pytest

from kubecore.api.errors import ApiError
from kubecore.api.resources import CONFIGMAPS, SECRETS
from services.nodeagent.cni import CniError
from services.nodeagent.executor import PodExecutor, StartFailures, observe
from services.nodeagent.imagemanager import PullBackoff
from services.nodeagent.podsync import Backoff, plan_pod
from services.nodeagent.policygate import PolicyGateError
from services.nodeagent.probes import ProbeTarget
from services.nodeagent.runtime import (
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_NOTREADY,
    ContainerConfig,
    ContainerCreateError,
    SandboxCreateError,
)
from services.nodeagent.sources import ReferencedObjects
from tests.fakes.api import FakeApiClient
from tests.fakes.cni import FakeCni
from tests.fakes.runtime import FakeRuntime, fake_image

KEY = "ns/p"
BACKOFF = Backoff(base=10, cap=300)


def pod(uid="u1", *, policy="Always", grace=None, probe=False, containers=("web",)):
    spec = {"restartPolicy": policy, "nodeName": "n1",
            "containers": [{"name": n, "image": "nginx",
                            **({"readinessProbe": {"tcpSocket": {"port": 80}}} if probe else {})}
                           for n in containers]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": "p", "namespace": "ns", "uid": uid}, "spec": spec, "status": {}}


def deleting(p, grace=5):
    p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    p["metadata"]["deletionGracePeriodSeconds"] = grace
    return p


class Writer:
    """The API side: deletes and status patches, applied to the pod it was given."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str | None, str, str]] = []
        self.patches: list[dict] = []
        self.delete_error: ApiError | None = None
        self.pod: dict | None = None

    async def delete_pod(self, name, namespace, *, uid):
        self.deleted.append((namespace, name, uid))
        if self.delete_error is not None:
            raise self.delete_error

    async def patch_status(self, name, namespace, patch):
        self.patches.append(patch)
        if self.pod is not None:
            status = self.pod.setdefault("status", {})
            for k, v in patch.items():
                if v is None:
                    status.pop(k, None)
                else:
                    status[k] = v


class Events:
    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []
        self.field_paths: list[str | None] = []

    def event(self, obj, event_type, reason, message, *, field_path=None):
        self.told.append((reason, message))
        self.field_paths.append(field_path)

    @property
    def reasons(self) -> list[str]:
        return [r for r, _ in self.told]


class Probes:
    def __init__(self) -> None:
        self.ready: dict[str, bool] = {}
        self.started: dict[str, bool] = {}
        self.live_failed: set[str] = set()
        self.probing: set[str] = set()

    def ensure(self, target: ProbeTarget) -> None:
        self.probing.add(target.container_id)

    def forget(self, container_ids: set[str]) -> None:
        self.probing -= container_ids
        for cid in container_ids:
            self.ready.pop(cid, None)
            self.live_failed.discard(cid)


class Node:
    """One node's pod side around the executor, as `Agent.start` wires it."""

    def __init__(self) -> None:
        self.api = FakeApiClient()
        self.cni = FakeCni()
        self.runtime = FakeRuntime(network=self.cni)
        self.writer, self.events, self.probes = Writer(), Events(), Probes()
        self.requeued: list[tuple[str, float]] = []
        self.bound: set[str] = set()
        self.failures = StartFailures()
        self.clock = 1000.0  # the image back-off's
        self.image_backoff = PullBackoff(initial=10, cap=300, clock=lambda: self.clock)
        self.executor = PodExecutor(runtime=self.runtime, probes=self.probes, writer=self.writer, events=self.events,
                                    requeue=lambda key, delay: self.requeued.append((key, delay)),
                                    bound_pod_uids=lambda: set(self.bound), node_ip="10.250.0.11", backoff=BACKOFF,
                                    failures=self.failures, objects=ReferencedObjects(self.api, ttl=0),
                                    allocatable={"cpu": "2", "memory": "1Gi"}, image_backoff=self.image_backoff)

    async def sync(self, p: dict | None, *, now: float | None = None) -> None:
        self.writer.pod = p
        sandboxes, containers = observe(self.runtime, KEY)
        uid = (p or {}).get("metadata", {}).get("uid", "")
        plan = plan_pod(p, sandboxes, containers, now=time.time() if now is None else now, backoff=BACKOFF,
                        liveness_failed=frozenset(self.probes.live_failed),
                        start_failures=self.failures.of_pod(uid) if p else {}, key=KEY)
        await self.executor.run(plan)

    def forget_calls(self) -> None:
        self.runtime.calls.clear()
        self.events.told.clear()
        self.requeued.clear()
        self.writer.patches.clear()


@pytest.fixture
def node() -> Node:
    return Node()


# --------------------------------------------------------------------------- first sync of a new pod


@pytest.mark.parametrize("setup, want_calls, want_events, want_state", [
    pytest.param(
        lambda rt: None,
        [("run_pod_sandbox", "u1"), ("create_container", "web", 0), ("start_container", "web", 0)],
        ["Pulled", "Created", "Started"], {"running": {}},
        id="starts: sandbox, then the container"),
    pytest.param(
        lambda rt: setattr(rt, "images", {}),
        [("run_pod_sandbox", "u1"), ("pull_image", "nginx", ())],
        ["Pulling", "Failed", "Failed"],
        {"waiting": {"reason": "ErrImagePull",
                     "message": 'failed to pull and unpack image "docker.io/library/nginx:latest": not found'}},
        id="image missing and not pullable: ErrImagePull"),
    pytest.param(
        lambda rt: rt.fail_create.update(web=ContainerCreateError('exec: "x": executable file not found')),
        [("run_pod_sandbox", "u1"), ("create_container", "web", 0)],
        ["Pulled", "Failed"], {"waiting": {"reason": "CreateContainerError",
                                           "message": 'exec: "x": executable file not found'}},
        id="executable missing: CreateContainerError"),
])
async def test_first_sync(node, setup, want_calls, want_events, want_state):
    setup(node.runtime)
    p = pod()
    await node.sync(p)
    assert node.runtime.calls == want_calls
    assert node.events.reasons == want_events
    state = p["status"]["containerStatuses"][0]["state"]
    assert {k: {f: v for f, v in s.items() if f in ("reason", "message")} for k, s in state.items()} == want_state
    assert p["status"]["podIP"] == "10.244.1.2" and node.cni.addresses() == ["10.244.1.2"]


async def test_a_failed_pull_backs_off_then_pulls_again(node):
    node.runtime.images = {}
    p = pod()
    await node.sync(p)
    failed = 'failed to pull and unpack image "docker.io/library/nginx:latest": not found'
    assert node.events.told == [("Pulling", 'Pulling image "nginx"'),
                                ("Failed", f"Failed to pull image \"nginx\": {failed}"),
                                ("Failed", "Error: ErrImagePull")]
    assert node.requeued == [(KEY, 5.01)]  # halfway through the 10 s back-off, to show it
    node.forget_calls()
    node.clock += 5
    await node.sync(p)  # inside the back-off: no pull, ImagePullBackOff with the pull's error
    assert node.runtime.calls == []
    assert node.events.told == [("BackOff", 'Back-off pulling image "nginx"'), ("Failed", "Error: ImagePullBackOff")]
    assert p["status"]["containerStatuses"][0]["state"] == {"waiting": {
        "reason": "ImagePullBackOff", "message": f'Back-off pulling image "nginx": ErrImagePull: {failed}'}}
    assert node.requeued == [(KEY, 5.01)]  # when the back-off ends
    node.forget_calls()
    node.clock += 5
    await node.sync(p)  # past it: pulled again, and failing again doubles the back-off
    assert [c[0] for c in node.runtime.calls] == ["pull_image"]
    assert node.requeued == [(KEY, 10.01)]
    node.forget_calls()
    node.clock += 20
    node.runtime.registry["nginx"] = fake_image("docker.io/library/nginx:latest", size=4269694)
    await node.sync(p)
    assert node.runtime.calls == [("pull_image", "nginx", ()), ("create_container", "web", 0),
                                  ("start_container", "web", 0)]
    assert node.events.reasons == ["Pulling", "Pulled", "Created", "Started"]
    assert node.events.told[1][1].startswith('Successfully pulled image "nginx" in ')
    assert node.events.told[1][1].endswith("Image size: 4269694 bytes.")
    assert node.failures.get("u1", "web") is None
    assert "running" in p["status"]["containerStatuses"][0]["state"]


async def test_a_create_failure_backs_off_then_retries(node):
    node.runtime.fail_create["web"] = ContainerCreateError('exec: "x": executable file not found')
    p = pod()
    await node.sync(p)
    assert node.requeued == [(KEY, 10.01)]  # base back-off after the first failure
    assert node.failures.get("u1", "web").count == 1
    node.forget_calls()
    await node.sync(p)  # inside the back-off: nothing created, told and re-queued for when it ends
    assert node.runtime.calls == []
    assert node.events.told == [("BackOff", "Back-off restarting failed container web in pod p_ns(u1)")]
    assert len(node.requeued) == 1 and 0 < node.requeued[0][1] <= 10.01
    node.forget_calls()
    del node.runtime.fail_create["web"]
    await node.sync(p, now=time.time() + 11)  # past it: created, and the failure forgotten
    assert node.runtime.calls == [("create_container", "web", 0), ("start_container", "web", 0)]
    assert node.failures.get("u1", "web") is None
    assert "running" in p["status"]["containerStatuses"][0]["state"]


async def test_sandbox_failure_writes_status_then_fails_the_sync(node):
    node.runtime.fail_sandbox = SandboxCreateError("failed to set up sandbox: no IP addresses available")
    p = pod()
    with pytest.raises(SandboxCreateError):
        await node.sync(p)
    assert node.runtime.calls == [("run_pod_sandbox", "u1")]  # no container without a sandbox
    assert node.events.told == [("FailedCreatePodSandBox", "Failed to create pod sandbox: failed to set up "
                                 "sandbox: no IP addresses available")]  # kubelet's event, for describe
    assert p["status"]["phase"] == "Pending"
    assert p["status"]["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert node.requeued == []  # the work queue's own retry takes over


class Gate:
    """The node's policy agent as the executor asks it: records each ask with what the runtime
    had been asked by then; `error` makes it refuse."""

    def __init__(self, runtime: FakeRuntime, error: str = "") -> None:
        self.runtime, self.error = runtime, error
        self.asked: list[tuple[tuple[str, str, str, str], list]] = []

    async def wait(self, namespace: str, name: str, uid: str, ip: str) -> None:
        self.asked.append(((namespace, name, uid, ip), list(self.runtime.calls)))
        if self.error:
            raise PolicyGateError(self.error)


async def test_no_container_starts_before_the_policy_agent_has_the_new_address(node):
    gate = node.executor.policy_gate = Gate(node.runtime)
    p = pod()
    await node.sync(p)
    assert gate.asked == [(("ns", "p", "u1", "10.244.1.2"), [("run_pod_sandbox", "u1")])]
    assert node.runtime.calls[1:] == [("create_container", "web", 0), ("start_container", "web", 0)]


async def test_a_policy_agent_that_cannot_answer_fails_the_sandbox_which_goes(node):
    node.executor.policy_gate = Gate(node.runtime, "the network policy agent at x is not answering")
    p = pod()
    with pytest.raises(SandboxCreateError):
        await node.sync(p)
    assert [c[0] for c in node.runtime.calls] == ["run_pod_sandbox", "stop_pod_sandbox", "remove_pod_sandbox"]
    assert node.cni.addresses() == []  # its address given back
    assert node.events.told == [("FailedCreatePodSandBox", "Failed to create pod sandbox: network policy for pod "
                                 "ns/p not in place: the network policy agent at x is not answering")]
    node.forget_calls()
    node.executor.policy_gate = Gate(node.runtime)
    await node.sync(p)  # the next sync makes a new sandbox
    assert [c[0] for c in node.runtime.calls] == ["run_pod_sandbox", "create_container", "start_container"]


# --------------------------------------------------------------------------- restarts


@pytest.mark.parametrize("policy, exit_code, restarted, phase", [
    pytest.param("Always", 1, True, "Running", id="Always: failure restarts"),
    pytest.param("Always", 0, True, "Running", id="Always: success restarts"),
    pytest.param("OnFailure", 1, True, "Running", id="OnFailure: failure restarts"),
    pytest.param("OnFailure", 0, False, "Succeeded", id="OnFailure: success is final"),
    pytest.param("Never", 2, False, "Failed", id="Never: failure is final"),
])
async def test_exit_after_back_off(node, policy, exit_code, restarted, phase):
    p = pod(policy=policy)
    await node.sync(p)
    (first,) = node.runtime.by_name("web")
    node.runtime.exit(first.id, exit_code, at=time.time() - 60)
    node.forget_calls()
    await node.sync(p)
    status = p["status"]["containerStatuses"][0]
    assert node.runtime.calls == ([("create_container", "web", 1), ("start_container", "web", 1)] if restarted else [])
    assert p["status"]["phase"] == phase
    assert status["restartCount"] == (1 if restarted else 0)
    if restarted:
        assert status["lastState"]["terminated"]["exitCode"] == exit_code
        assert node.events.reasons == ["Pulled", "Created", "Started"]


async def test_crash_inside_back_off_waits(node):
    p = pod()
    await node.sync(p)
    (first,) = node.runtime.by_name("web")
    node.runtime.exit(first.id, 1, at=time.time() - 4)
    node.forget_calls()
    await node.sync(p)
    assert node.runtime.calls == []
    assert node.events.reasons == ["BackOff"]
    assert node.requeued and 5 < node.requeued[0][1] <= 6.01
    waiting = p["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"


async def test_liveness_failure_kills_with_grace_then_restarts(node):
    p = pod(grace=7)
    await node.sync(p)
    (first,) = node.runtime.by_name("web")
    node.probes.live_failed.add(first.id)
    node.forget_calls()
    await node.sync(p)
    assert node.runtime.calls[0] == ("stop_container", "web", 7)
    assert node.events.told[0] == ("Killing", "Container web failed liveness probe, will be restarted")
    assert node.runtime.container_status(first.id).state == CONTAINER_EXITED
    assert first.id not in node.probes.live_failed  # its probes went with it


async def test_lost_sandbox_replaced_attempts_continue(node):
    p = pod()
    await node.sync(p)
    (sandbox,) = node.runtime.list_pod_sandboxes()
    (first,) = node.runtime.by_name("web")
    node.runtime.exit(first.id, 137, at=time.time() - 60)
    node.runtime.lose_sandbox(sandbox.id)
    node.forget_calls()
    await node.sync(p)
    assert node.runtime.calls == [("remove_pod_sandbox", sandbox.id), ("run_pod_sandbox", "u1"),
                                  ("create_container", "web", 1), ("start_container", "web", 1)]
    (new,) = node.runtime.list_pod_sandboxes()
    assert new.id != sandbox.id and node.cni.addresses() == [new.ip]
    assert p["status"]["podIP"] == new.ip


# --------------------------------------------------------------------------- probes


async def test_readiness_gates_ready(node):
    p = pod(probe=True)
    await node.sync(p)
    (web,) = node.runtime.by_name("web")
    assert node.probes.probing == {web.id}
    ready = {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"]
    assert ready == "False"
    node.probes.ready[web.id] = True
    await node.sync(p)
    assert {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "True"


# --------------------------------------------------------------------------- the end of a pod


async def test_deleted_pod_stopped_removed_and_deleted(node):
    p = pod()
    await node.sync(p)
    (web,) = node.runtime.by_name("web")
    node.probes.probing.add(web.id)
    node.forget_calls()
    await node.sync(deleting(p, grace=5))
    assert node.runtime.calls[:2] == [("stop_container", "web", 5), ("remove_pod_sandbox", "sb1")]
    assert node.events.told == [("Killing", "Stopping container web")]
    assert node.writer.deleted == [("ns", "p", "u1")]
    assert node.writer.patches == []  # no status for an object on its way out
    assert node.runtime.list_pod_sandboxes() == [] and node.cni.addresses() == []
    assert node.probes.probing == set()


@pytest.mark.parametrize("code, raises", [
    pytest.param(404, False, id="already gone: fine"),
    pytest.param(409, False, id="uid precondition failed (a new pod of that name): fine"),
    pytest.param(500, True, id="server error: the sync fails and is retried"),
])
async def test_delete_answers(node, code, raises):
    node.writer.delete_error = ApiError(code, "x", "x")
    p = deleting(pod())
    if raises:
        with pytest.raises(ApiError):
            await node.sync(p)
    else:
        await node.sync(p)
    assert node.writer.deleted == [("ns", "p", "u1")]


async def test_deleted_pod_forgets_its_start_failures(node):
    node.runtime.fail_create["web"] = ContainerCreateError("exec: not found")
    p = pod()
    await node.sync(p)
    assert len(node.failures) == 1
    await node.sync(deleting(p))
    assert len(node.failures) == 0


async def test_terminal_pod_sandbox_stopped_records_kept(node):
    p = pod(policy="Never")
    await node.sync(p)
    (web,) = node.runtime.by_name("web")
    ip = p["status"]["podIP"]
    node.runtime.exit(web.id, 0)
    await node.sync(p)
    assert p["status"]["phase"] == "Succeeded"
    node.forget_calls()
    await node.sync(p)
    assert node.runtime.calls == [("stop_pod_sandbox", "sb1")]
    (sandbox,) = node.runtime.list_pod_sandboxes()
    assert sandbox.state == SANDBOX_NOTREADY and node.cni.addresses() == []
    assert p["status"]["phase"] == "Succeeded" and p["status"]["podIP"] == ip  # it keeps the address it had
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


async def test_gone_pod_removed_and_unbound_failures_forgotten(node):
    node.runtime.fail_create["web"] = ContainerCreateError("exec: not found")
    await node.sync(pod())
    node.failures.record("u7", "db", "ErrImagePull", "x", at=1.0)
    node.bound = {"u7"}
    node.forget_calls()
    await node.sync(None)
    assert node.runtime.calls == [("remove_pod_sandbox", "sb1")]
    assert node.runtime.list_pod_sandboxes() == [] and node.cni.addresses() == []
    assert node.failures.of_pod("u1") == {} and set(node.failures.of_pod("u7")) == {"db"}
    assert node.writer.patches == [] and node.writer.deleted == []


# --------------------------------------------------------------------------- the fakes themselves


async def test_fake_cni_hands_out_and_takes_back_addresses(node):
    rt = node.runtime
    a = await rt.run_pod_sandbox("u1", "ns", "a")
    b = await rt.run_pod_sandbox("u2", "ns", "b")
    assert (a.ip, b.ip) == ("10.244.1.2", "10.244.1.3")
    await rt.remove_pod_sandbox(a.id)
    c = await rt.run_pod_sandbox("u3", "ns", "c")
    assert c.ip == "10.244.1.2" and node.cni.addresses() == ["10.244.1.2", "10.244.1.3"]
    node.cni.fail_add = CniError(msg="no IP addresses available", code=11)
    with pytest.raises(CniError):
        await rt.run_pod_sandbox("u4", "ns", "d")


async def test_fake_runtime_states(node):
    rt = node.runtime
    sandbox = await rt.run_pod_sandbox("u1", "ns", "p")
    c = await rt.create_container(sandbox.id, ContainerConfig(name="web", image="nginx"))
    c = await rt.start_container(c.id)
    assert c.state == CONTAINER_RUNNING and rt.list_containers(sandbox.id) == [c]
    await rt.stop_pod_sandbox(sandbox.id)
    assert rt.container_status(c.id).exit_code == 137 and rt.list_pod_sandboxes()[0].state == SANDBOX_NOTREADY


# --------------------------------------------------------------------------- the container's configuration


def pod_with_env(**container):
    p = pod()
    p["spec"]["containers"][0].update(container)
    return p


async def test_a_missing_configmap_key_keeps_the_container_from_being_created(node):
    p = pod_with_env(env=[{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}],
                     command=["serve", "--mode=$(MODE)", "--ip=$(POD_IP)"])
    await node.sync(p)
    assert node.runtime.calls == [("run_pod_sandbox", "u1")]  # never created
    assert node.events.told == [("Failed", 'Error: configmap "cfg" not found')]
    assert p["status"]["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "CreateContainerConfigError", "message": 'configmap "cfg" not found'}}
    assert p["status"]["phase"] == "Pending" and node.requeued == [(KEY, 10.01)]
    node.api.preload(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "ns"}, "data": {"other": "x"}})
    node.forget_calls()
    await node.sync(p, now=time.time() + 11)
    assert p["status"]["containerStatuses"][0]["state"]["waiting"] == {
        "reason": "CreateContainerConfigError", "message": "couldn't find key mode in ConfigMap ns/cfg"}
    node.api.edit(CONFIGMAPS, "cfg", "ns", lambda cm: cm["data"].update(mode="fast"))
    node.forget_calls()
    await node.sync(p, now=time.time() + 40)
    assert node.runtime.calls == [("create_container", "web", 0), ("start_container", "web", 0)]
    (info,) = node.runtime.containers.values()
    assert info.env["MODE"] == "fast" and info.argv == ("serve", "--mode=fast", "--ip=$(POD_IP)")
    assert "running" in p["status"]["containerStatuses"][0]["state"]


async def test_envfrom_keys_that_are_not_names_are_told(node):
    node.api.preload(SECRETS, {"metadata": {"name": "s", "namespace": "ns"},
                               "data": {"TOKEN": "dG9r", "1st": "eA=="}})
    p = pod_with_env(envFrom=[{"secretRef": {"name": "s"}}],
                     env=[{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                          {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                          {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                             "divisor": "1Mi"}}}])
    await node.sync(p)
    (info,) = node.runtime.containers.values()
    assert {k: info.env[k] for k in ("TOKEN", "IP", "HOST", "MEM")} == {
        "TOKEN": "tok", "IP": "10.244.1.2", "HOST": "10.250.0.11", "MEM": "1024"}
    assert ("InvalidEnvironmentVariableNames", "Keys [1st] from the EnvFrom secret ns/s were skipped since "
            "they are considered invalid environment variable names.") in node.events.told
