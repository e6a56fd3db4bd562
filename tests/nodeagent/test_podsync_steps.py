"""Tables for the steps a pod plan spells out for the executor (`PodPlan.steps`): everything the
executor needs is in them (grace periods, sandbox arguments, container configs, events)."""
from __future__ import annotations

import pytest

from services.nodeagent import podevents
from services.nodeagent.cni import PortMapping
from services.nodeagent.podsync import (
    Backoff,
    ContainerRef,
    CreateSandbox,
    DeletePodObject,
    ForgetGonePods,
    KillContainer,
    RemoveContainer,
    RemoveSandbox,
    Report,
    Requeue,
    StartContainers,
    StartFailure,
    StopPodContainers,
    StopSandbox,
    Tell,
    plan_pod,
    plan_report,
)
from services.nodeagent.probes import ProbeTarget
from services.nodeagent.runtime import (
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_READY,
    ContainerConfig,
    ContainerInfo,
    SandboxInfo,
)

NOW = 1_000_000.0
B = Backoff(base=10, cap=300)


def pod(uid="u1", *, deleting=False, phase=None, spec=None, containers=None):
    p = {"metadata": {"name": "p", "namespace": "ns", "uid": uid},
         "spec": {"nodeName": "n1", "containers": containers or [{"name": "web", "image": "nginx"}], **(spec or {})},
         "status": {}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        p["metadata"]["deletionGracePeriodSeconds"] = 5
    if phase:
        p["status"]["phase"] = phase
    return p


def sb(sid="s1", uid="u1", created=1.0):
    return SandboxInfo(id=sid, pod_uid=uid, namespace="ns", name="p", node="n1", netns_name="x", netns_path="/x",
                       pod_dir="/d", hostname="p", state=SANDBOX_READY, created_at=created, ip="10.244.1.5",
                       network_ready=True)


def ct(cid="c1", sid="s1", state=CONTAINER_RUNNING, attempt=0, exit_code=None, finished=None):
    return ContainerInfo(id=cid, sandbox_id=sid, name="web", image="nginx", attempt=attempt, argv=("x",), env={},
                         working_dir="/", log_path="/l", state=state, created_at=float(attempt), pid=1,
                         started_at=NOW - 100, finished_at=finished, exit_code=exit_code)


WEB0 = ContainerConfig(name="web", image="nginx", attempt=0)
NEW_SANDBOX = CreateSandbox("u1", "ns", "p", hostname=None, subdomain=None, port_mappings=(), labels={})
WITH_PORTS = [{"name": "web", "image": "nginx", "command": ["serve"], "args": ["-p", "80"], "workingDir": "/srv",
               "env": [{"name": "A", "value": 1}, {"name": "FROM_SECRET", "valueFrom": {}}],
               "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]}]


@pytest.mark.parametrize("p, sandboxes, containers, kw, want", [
    pytest.param(pod(), [], [], {}, (NEW_SANDBOX, StartContainers("u1", None, (WEB0,)), Report("u1")),
                 id="new pod: sandbox, then its containers in it"),
    pytest.param(pod(spec={"hostname": "h", "subdomain": "s"}, containers=WITH_PORTS), [], [], {},
                 (CreateSandbox("u1", "ns", "p", hostname="h", subdomain="s",
                                port_mappings=(PortMapping(host_port=8080, container_port=80, protocol="tcp"),),
                                labels={}),
                  StartContainers("u1", None, (ContainerConfig(name="web", image="nginx", command=["serve"],
                                                               args=["-p", "80"], env={"A": "1"},
                                                               working_dir="/srv", attempt=0),)),
                  Report("u1")),
                 id="host ports, env, command and working dir carried"),
    pytest.param(pod(), [sb()], [ct()], {}, (Report("u1"),), id="all running: report only"),
    pytest.param(pod(), [sb()], [], {}, (StartContainers("u1", "s1", (WEB0,)), Report("u1")),
                 id="ready sandbox, container missing: started in it"),
    pytest.param(pod(deleting=True), [sb()], [ct()], {},
                 (StopPodContainers((ContainerRef("c1", "web"),), grace=5),
                  RemoveSandbox("s1", frozenset({"c1"})), DeletePodObject("u1", "p", "ns")),
                 id="deleted: running containers stopped with its grace, sandbox removed, object deleted"),
    pytest.param(pod(deleting=True), [sb()], [ct(state=CONTAINER_EXITED, exit_code=0, finished=1)], {},
                 (RemoveSandbox("s1", frozenset({"c1"})), DeletePodObject("u1", "p", "ns")),
                 id="deleted with nothing running: no stop"),
    pytest.param(None, [sb("a"), sb("b", uid="u9")], [ct(sid="a")], {},
                 (RemoveSandbox("a", frozenset({"c1"})), RemoveSandbox("b", frozenset()), ForgetGonePods()),
                 id="gone from the API: every sandbox removed, failures of gone pods forgotten"),
    pytest.param(pod(phase="Succeeded"), [sb()], [ct(state=CONTAINER_EXITED, exit_code=0, finished=1)], {},
                 (StopSandbox("s1"), Report("u1")), id="terminal: sandbox stopped, status still reported"),
    pytest.param(pod(), [sb()], [ct()], {"liveness_failed": frozenset({"c1"})},
                 (KillContainer("c1", "web", "Unhealthy", grace=30), Report("u1")),
                 id="liveness failed: killed with the pod's grace (default 30)"),
    pytest.param(pod(), [sb()], [ct(state=CONTAINER_EXITED, exit_code=1, finished=NOW - 4)], {},
                 (Tell(podevents.back_off(pod(), "web")), Report("u1"), Requeue(6.01)),
                 id="crashed inside its back-off: BackOff event, back when it ends"),
    pytest.param(pod(), [sb()], [], {"start_failures": {"web": StartFailure("ErrImagePull", "no", NOW - 5)}},
                 (StartContainers("u1", "s1", (WEB0,)), Report("u1")),
                 id="a pull failure: started again, the image manager keeps its back-off"),
    pytest.param(pod(), [sb()], [], {"start_failures": {"web": StartFailure("CreateContainerError", "no", NOW - 5)}},
                 (Tell(podevents.back_off(pod(), "web")), Report("u1"), Requeue(5.01)),
                 id="a create failure inside its back-off: BackOff event, back when it ends"),
    pytest.param(pod(), [sb()],
                 [ct("a", attempt=0, state=CONTAINER_EXITED, exit_code=1, finished=1),
                  ct("b", attempt=1, state=CONTAINER_EXITED, exit_code=1, finished=2), ct("c", attempt=2)], {},
                 (RemoveContainer("a"), Report("u1")), id="attempts before the last two removed"),
    pytest.param(pod(uid="u2"), [sb(uid="u1")], [ct()], {},
                 (RemoveSandbox("s1", frozenset({"c1"})), CreateSandbox("u2", "ns", "p", None, None, (), {}),
                  StartContainers("u2", None, (WEB0,)), Report("u2")),
                 id="same name, new uid: the old pod's sandbox goes, a new one comes"),
])
def test_plan_steps(p, sandboxes, containers, kw, want):
    plan = plan_pod(p, sandboxes, containers, now=NOW, backoff=B, key="ns/p", **kw)
    assert plan.steps == want
    assert plan.key == "ns/p" and plan.pod is p


@pytest.mark.parametrize("containers, sandboxes, want_forget, want_probe", [
    pytest.param([ct()], [sb()], frozenset(), ("c1",), id="running in the current sandbox: probed"),
    pytest.param([ct(state=CONTAINER_EXITED, exit_code=1, finished=1)], [sb()], frozenset({"c1"}), (),
                 id="exited: its probes go"),
    pytest.param([ct(sid="old")], [sb()], frozenset(), (), id="running outside the current sandbox: not probed"),
    pytest.param([ct()], [], frozenset(), (), id="no ready sandbox: nothing probed"),
])
def test_report_probes(containers, sandboxes, want_forget, want_probe):
    p = pod(containers=[{"name": "web", "image": "nginx", "readinessProbe": {"tcpSocket": {"port": 80}}}])
    report = plan_report("ns/p", p, sandboxes, containers, node_ip="10.250.0.11", ready_probe={},
                         start_failures={}, backoff=B, now=NOW)
    assert report.forget_probes == want_forget
    assert tuple(t.container_id for t in report.probe) == want_probe
    if want_probe:
        assert report.probe[0] == ProbeTarget("ns/p", p["spec"]["containers"][0], "c1", "10.244.1.5")


def test_report_patch_only_when_the_status_changes():
    p = pod()
    first = plan_report("ns/p", p, [sb()], [ct()], node_ip="10.250.0.11", ready_probe={}, start_failures={},
                        backoff=B, now=NOW)
    assert first.status_patch is not None and first.status_patch["phase"] == "Running"
    p["status"] = {**p["status"], **first.status_patch}
    again = plan_report("ns/p", p, [sb()], [ct()], node_ip="10.250.0.11", ready_probe={}, start_failures={},
                        backoff=B, now=NOW + 60)
    assert again.status_patch is None
