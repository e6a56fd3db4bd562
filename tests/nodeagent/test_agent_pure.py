"""Tables for the agent's pure parts: the pod planner, pod status, phases, routes."""
from __future__ import annotations

import pytest

from kubecore.api.nodenet import NodeRanges
from services.nodeagent import podevents, podsync
from services.nodeagent.podsync import Backoff, StartFailure, plan_pod, pod_phase, pod_status, status_patch
from services.nodeagent.probes import ProbeError, resolve_port
from services.nodeagent.routes import desired_routes, route_changes
from services.nodeagent.runtime import (
    CONTAINER_CREATED,
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    SANDBOX_CREATING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerInfo,
    SandboxInfo,
)

NOW = 1_000_000.0
B = Backoff(base=10, cap=300)


def pod(uid="u1", *, policy="Always", deleting=False, phase=None, containers=("web",), probe=False):
    p = {"metadata": {"name": "p", "namespace": "ns", "uid": uid},
         "spec": {"restartPolicy": policy, "nodeName": "n1",
                  "containers": [{"name": n, "image": "nginx", **({"readinessProbe": {"httpGet": {"port": 80}}}
                                                                   if probe else {})} for n in containers]},
         "status": {}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        p["metadata"]["deletionGracePeriodSeconds"] = 5
    if phase:
        p["status"]["phase"] = phase
    return p


def sb(sid="s1", uid="u1", state=SANDBOX_READY, created=1.0, ip="10.244.1.5"):
    return SandboxInfo(id=sid, pod_uid=uid, namespace="ns", name="p", node="n1", netns_name="x", netns_path="/x",
                       pod_dir="/d", hostname="p", state=state, created_at=created, ip=ip,
                       network_ready=state == SANDBOX_READY)


def ct(cid="c1", name="web", sid="s1", state=CONTAINER_RUNNING, attempt=0, exit_code=None, finished=None):
    return ContainerInfo(id=cid, sandbox_id=sid, name=name, image="nginx", attempt=attempt, argv=("x",), env={},
                         working_dir="/", log_path="/l", state=state, created_at=float(attempt), pid=1,
                         started_at=NOW - 100, finished_at=finished, exit_code=exit_code,
                         reason="" if exit_code is None else ("Completed" if exit_code == 0 else "Error"))


def plan(p, sandboxes=(), containers=(), **kw):
    return plan_pod(p, list(sandboxes), list(containers), now=NOW, backoff=B, **kw)


@pytest.mark.parametrize("case,p,sandboxes,containers,want", [
    ("new pod: sandbox and container", pod(), [], [],
     dict(create_sandbox=True, start=[("web", 0)])),
    ("all running: nothing", pod(), [sb()], [ct()], dict()),
    ("container missing in ready sandbox", pod(), [sb()], [], dict(start=[("web", 0)])),
    ("dead sandbox replaced, attempts continue", pod(), [sb(state=SANDBOX_NOTREADY)],
     [ct(state=CONTAINER_EXITED, exit_code=137, finished=NOW - 1000, attempt=2)],
     dict(remove_sandboxes=["s1"], create_sandbox=True, start=[("web", 3)])),
    ("half-created sandbox removed, new one made", pod(), [sb(state=SANDBOX_CREATING, ip="")], [],
     dict(remove_sandboxes=["s1"], create_sandbox=True, start=[("web", 0)])),
    ("two ready sandboxes: the older goes", pod(), [sb("old", created=1), sb("new", created=2)],
     [ct(sid="new")], dict(remove_sandboxes=["old"])),
    ("sandbox of a previous pod with the same name", pod(uid="u2"), [sb(uid="u1")], [ct()],
     dict(remove_sandboxes=["s1"], create_sandbox=True, start=[("web", 0)])),
    ("created never started: replaced, same attempt", pod(), [sb()], [ct(state=CONTAINER_CREATED, attempt=1)],
     dict(remove_containers=["c1"], start=[("web", 1)])),
    ("Always: crashed past back-off restarts", pod(), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=1, finished=NOW - 11)], dict(start=[("web", 1)])),
    ("Always: inside back-off waits", pod(), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=1, finished=NOW - 4)], dict(requeue_after=6.0, backoff=["web"])),
    ("back-off doubles with restarts", pod(), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=1, finished=NOW - 30, attempt=2)],
     dict(requeue_after=10.0, backoff=["web"])),
    ("Always restarts after success too", pod(), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=0, finished=NOW - 11)], dict(start=[("web", 1)])),
    ("OnFailure: success is final", pod(policy="OnFailure"), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=0, finished=NOW - 11)], dict()),
    ("OnFailure: failure restarts", pod(policy="OnFailure"), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=2, finished=NOW - 11)], dict(start=[("web", 1)])),
    ("Never: failure is final", pod(policy="Never"), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=2, finished=NOW - 11)], dict()),
    ("older attempts pruned, last two kept", pod(), [sb()],
     [ct("a", attempt=0, state=CONTAINER_EXITED, exit_code=1, finished=1),
      ct("b", attempt=1, state=CONTAINER_EXITED, exit_code=1, finished=2), ct("c", attempt=2)],
     dict(remove_containers=["a"])),
    ("deleted: kill, remove, delete object", pod(deleting=True), [sb()], [ct()],
     dict(kill_pod=True, remove_sandboxes=["s1"], delete_api_object=True)),
    ("deleted before a sandbox existed", pod(deleting=True), [], [],
     dict(kill_pod=True, delete_api_object=True)),
    ("terminal: sandbox stopped, kept", pod(phase="Succeeded"), [sb()],
     [ct(state=CONTAINER_EXITED, exit_code=0, finished=1)], dict(stop_sandboxes=["s1"])),
    ("gone from the API: everything removed", None, [sb("a"), sb("b", uid="u9")], [ct()],
     dict(remove_sandboxes=["a", "b"])),
], ids=lambda v: v if isinstance(v, str) else "")
def test_plan(case, p, sandboxes, containers, want):
    got = plan(p, sandboxes, containers)
    expected = podsync.PodPlan(**want)
    assert got == expected, case


def test_plan_liveness_failure_kills_running_container():
    got = plan(pod(), [sb()], [ct()], liveness_failed=frozenset({"c1"}))
    assert got.kill_containers == [("c1", "Unhealthy")] and not got.start


def test_plan_create_failure_backs_off_but_a_pull_failure_is_the_image_managers():
    failure = StartFailure("CreateContainerError", "nope", at=NOW - 5, count=1)
    waiting = plan(pod(), [sb()], [], start_failures={"web": failure})
    assert waiting.requeue_after == 5.0 and waiting.backoff == ["web"]
    pulling = plan(pod(), [sb()], [], start_failures={"web": StartFailure("ErrImagePull", "nope", at=NOW - 5)})
    assert pulling.start == [("web", 0)] and pulling.backoff == []
    failure = StartFailure("ErrImagePull", "nope", at=NOW - 25, count=2)
    retried = plan(pod(), [sb()], [], start_failures={"web": failure})
    assert retried.start == [("web", 0)] and retried.backoff == []


POD_META = {"metadata": {"name": "web-1", "namespace": "default", "uid": "u1"}}


@pytest.mark.parametrize("event, want", [
    (podevents.pulled("web", "nginx"),
     ("Normal", "Pulled", 'Container image "nginx" already present on machine')),
    (podevents.created("web"), ("Normal", "Created", "Created container: web")),
    (podevents.started("web"), ("Normal", "Started", "Started container web")),
    (podevents.stopping("web"), ("Normal", "Killing", "Stopping container web")),
    (podevents.killing_unhealthy("web"),
     ("Normal", "Killing", "Container web failed liveness probe, will be restarted")),
    (podevents.back_off(POD_META, "web"),
     ("Warning", "BackOff", "Back-off restarting failed container web in pod web-1_default(u1)")),
    (podevents.back_off_pulling("web", "nope"), ("Normal", "BackOff", 'Back-off pulling image "nope"')),
    (podevents.pulling("web", "nginx:1.27"), ("Normal", "Pulling", 'Pulling image "nginx:1.27"')),
    (podevents.pulled_image("web", "nginx", took=1.3934, waited=1.3939, size=62958873),
     ("Normal", "Pulled", 'Successfully pulled image "nginx" in 1.393s (1.393s including waiting). '
                          "Image size: 62958873 bytes.")),
    (podevents.pulled_image("web", "busybox", took=0.3131, waited=61.5, size=4269694),
     ("Normal", "Pulled", 'Successfully pulled image "busybox" in 313ms (1m1.5s including waiting). '
                          "Image size: 4269694 bytes.")),
    (podevents.failed_pull("web", "nope", "no such image"),
     ("Warning", "Failed", 'Failed to pull image "nope": no such image')),
    (podevents.failed("web", "nope", "ErrImagePull", "no such image"), ("Warning", "Failed", "Error: ErrImagePull")),
    (podevents.failed("web", "nope", "ImagePullBackOff", "Back-off pulling image"),
     ("Warning", "Failed", "Error: ImagePullBackOff")),
    (podevents.never_pull("web", 'Container image "x" is not present with pull policy of Never'),
     ("Warning", "ErrImageNeverPull", 'Container image "x" is not present with pull policy of Never')),
    (podevents.failed("web", "nginx", "CreateContainerError", 'exec: "x": not found'),
     ("Warning", "Failed", 'Error: exec: "x": not found')),
    (podevents.unhealthy("web", "readiness", "HTTP probe failed with statuscode: 500"),
     ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 500")),
    (podevents.unhealthy("web", "liveness", "dial tcp 10.244.1.5:80: refused"),
     ("Warning", "Unhealthy", "Liveness probe failed: dial tcp 10.244.1.5:80: refused")),
], ids=lambda v: v.reason + "-" + v.message[:12] if isinstance(v, podevents.PodEvent) else "")
def test_kubelet_event_wording(event, want):
    assert (event.type, event.reason, event.message) == want
    assert event.field_path == "spec.containers{web}"


def test_backoff_doubles_to_cap():
    assert [B.delay(n) for n in range(7)] == [10, 20, 40, 80, 160, 300, 300]


@pytest.mark.parametrize("policy,states,previous,want", [
    ("Always", [{"waiting": {}}], None, "Pending"),
    ("Always", [{"running": {}}], None, "Running"),
    ("Always", [{"running": {}}, {"waiting": {}}], None, "Pending"),
    ("Never", [{"terminated": {"exitCode": 0}}], None, "Succeeded"),
    ("Never", [{"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 1}}], None, "Failed"),
    ("Never", [{"running": {}}, {"terminated": {"exitCode": 1}}], None, "Running"),
    ("OnFailure", [{"terminated": {"exitCode": 0}}], None, "Succeeded"),
    ("Always", [{"running": {}}], "Failed", "Failed"),
], ids=["waiting", "running", "one-waiting", "never-ok", "never-failed", "never-one-running", "onfailure-ok",
        "terminal-latched"])
def test_phase(policy, states, previous, want):
    assert pod_phase(policy, [{"state": s} for s in states], previous) == want


def _status(p, sandboxes, containers, **kw):
    return pod_status(p, sandboxes, containers, node_ip="10.250.0.11",
                      ready_probe=kw.pop("ready", {}), start_failures=kw.pop("failures", {}), backoff=B, now=NOW)


def test_status_running_pod():
    s = _status(pod(), [sb()], [ct()])
    assert s["phase"] == "Running" and s["podIP"] == "10.244.1.5" and s["podIPs"] == [{"ip": "10.244.1.5"}]
    assert s["hostIP"] == "10.250.0.11"
    [cs] = s["containerStatuses"]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
    assert cs["containerID"] == "minicluster://c1" and cs["imageID"] == "minicluster://nginx"
    assert cs["state"] == {"running": {"startedAt": podsync.rfc3339(NOW - 100)}}
    conds = {c["type"]: c["status"] for c in s["conditions"]}
    assert conds == {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}


def test_status_readiness_probe_gates_ready_and_keeps_transition_times():
    p = pod(probe=True)
    s = _status(p, [sb()], [ct()])
    assert not s["containerStatuses"][0]["ready"]
    ready = {c["type"]: c for c in s["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    p["status"] = s
    again = pod_status(p, [sb()], [ct()], node_ip="10.250.0.11", ready_probe={}, start_failures={}, backoff=B,
                       now=NOW + 50)
    assert status_patch(s, again) is None  # nothing changed: nothing written
    ok = pod_status(p, [sb()], [ct()], node_ip="10.250.0.11", ready_probe={"c1": True}, start_failures={},
                    backoff=B, now=NOW + 60)
    cond = {c["type"]: c for c in ok["conditions"]}
    assert cond["Ready"]["status"] == "True" and cond["Ready"]["lastTransitionTime"] == podsync.rfc3339(NOW + 60)
    assert cond["PodScheduled"]["lastTransitionTime"] == podsync.rfc3339(NOW)


def test_status_crash_loop():
    s = _status(pod(), [sb()], [ct("a", state=CONTAINER_EXITED, exit_code=3, finished=NOW - 1, attempt=1)])
    [cs] = s["containerStatuses"]
    assert s["phase"] == "Running" and cs["restartCount"] == 1 and not cs["ready"]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 3 and cs["lastState"]["terminated"]["reason"] == "Error"


def test_status_restarted_container_shows_last_state():
    s = _status(pod(), [sb()], [ct("a", state=CONTAINER_EXITED, exit_code=1, finished=NOW - 20),
                                ct("b", attempt=1)])
    [cs] = s["containerStatuses"]
    assert "running" in cs["state"] and cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 1


def test_status_err_image_pull():
    s = _status(pod(), [sb()], [], failures={"web": StartFailure("ErrImagePull", "not found", NOW)})
    [cs] = s["containerStatuses"]
    assert s["phase"] == "Pending"
    assert cs["state"] == {"waiting": {"reason": "ErrImagePull", "message": "not found"}}


def test_status_never_failed_pod_keeps_ip_after_sandbox_stopped():
    p = pod(policy="Never", phase="Failed")
    p["status"]["podIP"] = "10.244.1.5"
    s = _status(p, [sb(state=SANDBOX_NOTREADY)], [ct(state=CONTAINER_EXITED, exit_code=1, finished=NOW)])
    assert s["phase"] == "Failed" and s["podIP"] == "10.244.1.5"
    assert s["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_status_patch_removes_vanished_keys():
    assert status_patch({"phase": "Running", "podIP": "1.2.3.4"}, {"phase": "Running"}) == {"podIP": None}
    assert status_patch({"phase": "Pending"}, {"phase": "Running"}) == {"phase": "Running"}


def node(name, cidr=None, ip=None):
    n = {"metadata": {"name": name}, "spec": {}, "status": {"addresses": []}}
    if cidr:
        n["spec"]["podCIDR"] = cidr
    if ip:
        n["status"]["addresses"] = [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]
    return n


@pytest.mark.parametrize("nodes,want", [
    ([node("me", "10.244.0.0/24", "10.0.0.1")], set()),
    ([node("me", "10.244.0.0/24", "10.0.0.1"), node("b", "10.244.1.0/24", "10.0.0.2")],
     {("10.244.1.0/24", "10.0.0.2")}),
    ([node("b", "10.244.1.0/24")], set()),
    ([node("b", None, "10.0.0.2")], set()),
    ([node("b", "10.244.1.0/24", "10.0.0.2"), node("c", "10.244.2.0/24", "10.0.0.3")],
     {("10.244.1.0/24", "10.0.0.2"), ("10.244.2.0/24", "10.0.0.3")}),
    ([node("b", "not-a-cidr", "10.0.0.2"), node("c", "10.244.2.0/24", "bogus")], set()),
    ([node("b", "10.244.1.0/24", "10.244.1.7")], set()),
], ids=["only-me", "one-peer", "peer-without-ip", "peer-without-cidr", "two-peers", "malformed",
        "gateway-inside-range"])
def test_desired_routes(nodes, want):
    assert desired_routes("me", nodes, NodeRanges.parse("10.244.0.0/16", 24))[0] == want


def test_desired_routes_refuse_what_a_node_object_must_not_route():
    nodes = [node("half", "0.0.0.0/1", "10.250.0.12"), node("other-half", "128.0.0.0/1", "10.250.0.13"),
             node("wide", "10.244.0.0/16", "10.250.0.14"), node("far", "10.244.5.0/24", "192.0.2.1"),
             node("ok", "10.244.6.0/24", "10.250.0.16")]
    routes, refused = desired_routes("me", nodes, NodeRanges.parse("10.244.0.0/16", 24, "10.250.0.0/24"))
    assert routes == {("10.244.6.0/24", "10.250.0.16")}
    assert [r.node for r in refused] == ["half", "other-half", "wide", "far"]


def test_route_changes_replace_gateway_without_delete():
    add, delete = route_changes({("10.244.1.0/24", "10.0.0.9")},
                                {("10.244.1.0/24", "10.0.0.2"), ("10.244.2.0/24", "10.0.0.3")})
    assert add == {("10.244.1.0/24", "10.0.0.9")} and delete == {("10.244.2.0/24", "10.0.0.3")}


def test_named_probe_port():
    c = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port("http", c) == 8080 and resolve_port(81, c) == 81 and resolve_port("82", c) == 82
    with pytest.raises(ProbeError):
        resolve_port("nope", c)


def _pod_v(rv: str, *, status: dict, labels: dict | None = None, image: str = "nginx") -> dict:
    return {"metadata": {"name": "p", "uid": "u1", "resourceVersion": rv, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": image}]}, "status": status}


@pytest.mark.parametrize("new, written, echo", [
    pytest.param(_pod_v("2", status={"phase": "Running"}), {"phase": "Running"}, True,
                 id="only the status this agent wrote: an echo"),
    pytest.param(_pod_v("2", status={"phase": "Running"}), None, False, id="nothing written: not ours"),
    pytest.param(_pod_v("2", status={"phase": "Failed"}), {"phase": "Running"}, False,
                 id="a status someone else wrote"),
    pytest.param(_pod_v("2", status={"phase": "Running"}, labels={"a": "b"}), {"phase": "Running"}, False,
                 id="labels changed too"),
    pytest.param(_pod_v("2", status={"phase": "Running"}, image="nginx:2"), {"phase": "Running"}, False,
                 id="spec changed too"),
])
def test_own_status_echo(new, written, echo):
    from services.nodeagent.agent import own_status_echo

    assert own_status_echo(_pod_v("1", status={"phase": "Pending"}), new, written) is echo
