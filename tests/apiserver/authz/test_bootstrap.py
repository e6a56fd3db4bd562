"""The bootstrap policy: each controller's role grants exactly the calls that controller makes
(every call allowed, nothing more granted), checked against a table of the calls read from
the services' code and against the calls the controllers really make to the recording fake
client; the user-facing roles and bindings as kube has them; and the reconciliation that adds
what is missing and keeps an administrator's opt-out."""
from __future__ import annotations

import asyncio

import pytest

from kubecore.api import resources as R
from services.apiserver.authz import Attributes
from services.apiserver.authz import bootstrap as B
from services.apiserver.authz.rbac import RBACAuthorizer
from services.apiserver.authz.rules import breakdown, compile_rules, missing_rules
from services.apiserver.registry.interfaces import UserInfo
from services.daemonset.controller import DaemonSetController
from services.deployments.app import DeploymentsManager
from services.endpointslice.app import EndpointsManager
from services.endpointslice.controller import EndpointSliceController
from services.jobs.app import JobsManager
from services.nodelifecycle.controller import NodeLifecycleController
from services.statefulset.app import StatefulSetManager
from tests.apiserver.authz.policy import caches_over
from tests.apiserver.registry.fakes import FakeStorage
from tests.fakes.api import Call, FakeApiClient
from tests.support.controllers import create_pod, running, until

# (verb, group, resource[/subresource]) of every call each controller makes.
CALLS: dict[str, set[tuple[str, str, str]]] = {
    "endpointslice-controller": {
        *((v, "", r) for v in ("list", "watch") for r in ("services", "pods")),
        *((v, "discovery.k8s.io", "endpointslices") for v in ("list", "watch", "create", "update", "delete")),
    },
    "endpoint-controller": {
        *((v, "", r) for v in ("list", "watch") for r in ("services", "pods")),
        *((v, "", "endpoints") for v in ("list", "watch", "create", "update", "delete")),
    },
    "endpointslicemirroring-controller": {
        *((v, "", r) for v in ("list", "watch") for r in ("services", "endpoints")),
        *((v, "discovery.k8s.io", "endpointslices") for v in ("list", "watch", "create", "update", "delete")),
    },
    "deployment-controller": {
        *((v, "apps", "deployments") for v in ("get", "list", "watch", "patch")),
        ("patch", "apps", "deployments/status"),
        *((v, "apps", "replicasets") for v in ("get", "list", "watch", "create", "patch", "delete")),
        ("list", "", "pods"), ("watch", "", "pods"), ("create", "", "events"), ("patch", "", "events"),
    },
    "replicaset-controller": {
        *((v, "apps", "replicasets") for v in ("get", "list", "watch")),
        ("patch", "apps", "replicasets/status"),
        *((v, "", "pods") for v in ("list", "watch", "create", "patch", "delete")),
        ("create", "", "events"), ("patch", "", "events"),
    },
    "generic-garbage-collector": {
        *((v, g, r) for v in ("get", "list", "watch", "patch", "delete")
          for g, r in (("", "services"), ("", "pods"), ("", "nodes"), ("apps", "deployments"),
                       ("apps", "replicasets"), ("discovery.k8s.io", "endpointslices"),
                       ("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "controllerrevisions"),
                       ("batch", "jobs"), ("batch", "cronjobs"))),
        # owners of kinds it does not watch are looked up: mirrored slices' Endpoints
        ("get", "", "endpoints"),
    },
    "statefulset-controller": {
        *((v, "apps", "statefulsets") for v in ("get", "list", "watch")),
        ("patch", "apps", "statefulsets/status"),
        *((v, "", "pods") for v in ("list", "watch", "create", "patch", "delete")),
        *((v, "apps", "controllerrevisions") for v in ("get", "list", "watch", "create", "patch", "delete")),
        ("create", "", "events"), ("patch", "", "events"),
    },
    "job-controller": {
        ("list", "batch", "jobs"), ("watch", "batch", "jobs"), ("update", "batch", "jobs/status"),
        *((v, "", "pods") for v in ("get", "list", "watch", "create", "patch", "delete")),
        ("create", "", "events"), ("patch", "", "events"),
    },
    "cronjob-controller": {
        *((v, "batch", "cronjobs") for v in ("get", "list", "watch")),
        ("update", "batch", "cronjobs/status"),
        *((v, "batch", "jobs") for v in ("get", "list", "watch", "create", "delete")),
        ("create", "", "events"), ("patch", "", "events"),
    },
    "ttl-after-finished-controller": {
        (v, "batch", "jobs") for v in ("get", "list", "watch", "delete")
    },
    "node-controller": {
        ("list", "", "nodes"), ("watch", "", "nodes"), ("update", "", "nodes/status"),
        ("list", "", "pods"), ("watch", "", "pods"), ("update", "", "pods/status"),
    },
    "daemon-set-controller": {
        *((v, "apps", "daemonsets") for v in ("get", "list", "watch")),
        ("update", "apps", "daemonsets/status"), ("list", "", "nodes"), ("watch", "", "nodes"),
        *((v, "", "pods") for v in ("list", "watch", "create", "delete", "patch")),
        *((v, "apps", "controllerrevisions") for v in ("get", "list", "watch", "create", "delete", "patch")),
        ("create", "", "events"), ("patch", "", "events"),
    },
}
FAKE_VERBS = {"replace": "update", "update_status": "update", "bind": "create"}


def controller_user(name: str) -> UserInfo:
    return UserInfo(f"system:serviceaccount:kube-system:{name}",
                    groups=("system:serviceaccounts", "system:serviceaccounts:kube-system",
                            "system:authenticated"))


async def bootstrap_authorizer() -> RBACAuthorizer:
    storage = FakeStorage()
    await B.reconcile(storage)
    return RBACAuthorizer(caches_over(storage))


@pytest.fixture(scope="module")
def authorizer() -> RBACAuthorizer:
    return asyncio.run(bootstrap_authorizer())


def attrs(user: UserInfo, verb: str, group: str, resource: str, namespace: str = "default") -> Attributes:
    base, _, sub = resource.partition("/")
    rt = next((rt for rt in R.ALL if rt.plural == base and rt.group == group), None)
    return Attributes(user=user, verb=verb, api_group=group, resource=base, subresource=sub,
                      namespace=namespace if rt is None or rt.namespaced else "", name="x")


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_controller_s_role_allows_each_of_its_calls(authorizer, name) -> None:
    user = controller_user(name)
    refused = [c for c in sorted(CALLS[name]) if not authorizer.authorize(attrs(user, *c)).allowed]
    assert refused == []


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_controller_s_role_grants_nothing_more(name) -> None:
    granted = {(r["verbs"][0], r["apiGroups"][0], r["resources"][0])
               for rule in B.CONTROLLER_RULES[name] for r in breakdown(rule)}
    assert granted - CALLS[name] == set()


def test_a_controller_may_not_do_what_another_does(authorizer) -> None:
    user = controller_user("node-controller")
    assert not authorizer.authorize(attrs(user, "delete", "", "pods")).allowed
    assert not authorizer.authorize(attrs(user, "create", "discovery.k8s.io", "endpointslices")).allowed


def as_call(call: Call) -> tuple[str, str, str]:
    rt = next(rt for rt in R.ALL if rt.plural == call.resource)
    sub = call.options.get("subresource")
    if call.verb == "update_status":
        sub = "status"
    return (FAKE_VERBS.get(call.verb, call.verb), rt.group, f"{rt.plural}/{sub}" if sub else rt.plural)


class Recorded:
    """The calls a controller made to the fake, without the test's own (made through `own`)."""

    def __init__(self, api: FakeApiClient) -> None:
        self.api = api
        self.mine: set[int] = set()

    async def own(self, call) -> None:
        self.mine.add(len(self.api.calls))  # the fake records a call before any await
        await call

    def made(self) -> set[tuple[str, str, str]]:
        return {as_call(c) for i, c in enumerate(self.api.calls) if i not in self.mine}

    def has(self, verb: str, resource: str, at_least: int = 1):
        async def check() -> bool:
            return sum(1 for i, c in enumerate(self.api.calls) if i not in self.mine
                       and c.verb == verb and c.resource == resource) >= at_least
        return check


async def test_the_endpointslice_controller_s_real_calls_are_in_its_table() -> None:
    api = FakeApiClient()
    api.preload(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    seen = Recorded(api)
    await seen.own(create_pod(api, "web-1", ip="10.1.0.1", node="n1"))  # type: ignore[arg-type]
    await seen.own(create_pod(api, "web-2", ip="10.1.0.2", node="n1"))  # type: ignore[arg-type]
    seen.mine.update(range(len(api.calls)))
    async with running(EndpointSliceController(api)):  # type: ignore[arg-type]
        await until(seen.has("create", "endpointslices"))
        await seen.own(api.delete(R.PODS, "web-1", "default", grace_period_seconds=0))
        await until(seen.has("replace", "endpointslices"))
    assert seen.made() <= CALLS["endpointslice-controller"]
    assert ("update", "discovery.k8s.io", "endpointslices") in seen.made()


async def test_the_node_controller_s_real_calls_are_in_its_table() -> None:
    api = FakeApiClient()
    api.preload(R.NODES, {"metadata": {"name": "dead"}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "2000-01-01T00:00:00Z"}]}})
    api.preload(R.PODS, {"metadata": {"name": "p", "namespace": "default"},
                         "spec": {"nodeName": "dead", "containers": [{"name": "c", "image": "i"}]},
                         "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    seen = Recorded(api)
    async with running(NodeLifecycleController(api, grace=1)):  # type: ignore[arg-type]
        await until(seen.has("update_status", "pods"))
    assert seen.made() <= CALLS["node-controller"]
    assert ("update", "", "pods/status") in seen.made()


async def test_the_deployments_process_calls_are_in_its_two_controllers_tables() -> None:
    """One process runs both controllers (services/deployments): its identity needs both roles."""
    api = FakeApiClient()
    api.preload(R.DEPLOYMENTS, {"metadata": {"name": "d", "namespace": "default"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    seen = Recorded(api)
    manager = DeploymentsManager(api)  # type: ignore[arg-type]
    async with running(manager):
        await until(seen.has("create", "pods", 2))
        await seen.own(api.patch(R.DEPLOYMENTS, "d", {"spec": {"replicas": 0}}, "default", patch_type="merge"))
        await until(seen.has("delete", "pods"))
        await manager.replicasets.events.flush()
        await manager.deployments.events.flush()
    assert seen.made() <= CALLS["deployment-controller"] | CALLS["replicaset-controller"]
    assert {("create", "apps", "replicasets"), ("create", "", "events")} <= seen.made()
    process = controller_user("deployment-controller")  # cluster/credentials.py: the process's identity
    authorizer = await bootstrap_authorizer()
    assert [c for c in sorted(seen.made()) if not authorizer.authorize(attrs(process, *c)).allowed] == []


async def test_the_statefulset_process_calls_are_in_its_table() -> None:
    api = FakeApiClient()
    api.preload(R.STATEFULSETS, {"metadata": {"name": "s", "namespace": "default", "uid": "u1"}, "spec": {
        "replicas": 1, "podManagementPolicy": "Parallel", "revisionHistoryLimit": 0,
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "selector": {"matchLabels": {"app": "s"}},
        "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    seen = Recorded(api)
    manager = StatefulSetManager(api)  # type: ignore[arg-type]
    async with running(manager):
        await until(seen.has("create", "pods"))
        await until(seen.has("patch", "statefulsets"))  # its status
        await seen.own(api.patch(R.STATEFULSETS, "s", {"spec": {"replicas": 0, "template": {"spec": {
            "containers": [{"name": "c", "image": "j"}]}}}}, "default", patch_type="merge"))
        await until(seen.has("delete", "pods"))
        await until(seen.has("delete", "controllerrevisions"))
        await manager.controller.events.flush()
    assert seen.made() <= CALLS["statefulset-controller"]
    assert {("create", "", "pods"), ("create", "apps", "controllerrevisions"),
            ("patch", "apps", "statefulsets/status"), ("create", "", "events")} <= seen.made()


async def test_the_daemonset_controller_s_real_calls_are_in_its_table() -> None:
    api = FakeApiClient()
    api.preload(R.NODES, {"metadata": {"name": "n1"}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}]}})
    api.preload(R.DAEMONSETS, {"metadata": {"name": "agent", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    seen = Recorded(api)
    controller = DaemonSetController(api)  # type: ignore[arg-type]
    async with running(controller):
        await until(seen.has("create", "pods"))
        await seen.own(api.patch(R.DAEMONSETS, "agent", {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "i2"}]}}}}, "default", patch_type="strategic"))
        await until(seen.has("delete", "pods"))
        await until(seen.has("update_status", "daemonsets"))
        await controller.events.flush()
    assert seen.made() <= CALLS["daemon-set-controller"]
    assert {("create", "apps", "controllerrevisions"), ("create", "", "events")} <= seen.made()


async def test_the_endpointslice_process_calls_are_in_its_three_controllers_tables() -> None:
    """One process runs the slice, endpoints and mirroring controllers (services/endpointslice),
    as kube-controller-manager does: its identity holds all three roles."""
    api = FakeApiClient()
    api.preload(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    api.preload(R.SERVICES, {"metadata": {"name": "ext", "namespace": "default"},
                             "spec": {"ports": [{"port": 80}]}})
    api.preload(R.ENDPOINTS, {"metadata": {"name": "ext", "namespace": "default", "uid": "ext-uid"},
                              "subsets": [{"addresses": [{"ip": "192.0.2.1"}],
                                           "ports": [{"port": 80, "protocol": "TCP"}]}]})
    seen = Recorded(api)
    await seen.own(create_pod(api, "web-1", ip="10.1.0.1", node="n1"))  # type: ignore[arg-type]
    seen.mine.update(range(len(api.calls)))
    async with running(EndpointsManager(api)):  # type: ignore[arg-type]
        await until(seen.has("create", "endpoints"))
        await until(seen.has("create", "endpointslices", 2))
        await seen.own(api.delete(R.SERVICES, "web", "default"))
        await until(seen.has("delete", "endpoints"))
    tables = (CALLS["endpointslice-controller"] | CALLS["endpoint-controller"]
              | CALLS["endpointslicemirroring-controller"])
    assert seen.made() <= tables
    process = controller_user("endpointslice-controller")  # cluster/credentials.py: the process's identity
    authorizer = await bootstrap_authorizer()
    assert [c for c in sorted(seen.made()) if not authorizer.authorize(attrs(process, *c)).allowed] == []


async def test_the_jobs_process_calls_are_in_its_three_controllers_tables() -> None:
    """One process runs the Job, CronJob and ttl-after-finished controllers (services/jobs):
    its identity, job-controller, is bound to all three roles."""
    pod_spec = {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}
    api = FakeApiClient()
    api.preload(R.JOBS, {"metadata": {"name": "j", "namespace": "default"},
                         "spec": {"ttlSecondsAfterFinished": 0, "template": {"spec": pod_spec}}})
    api.preload(R.CRONJOBS, {"metadata": {"name": "c", "namespace": "default"},
                             "spec": {"schedule": "@every 1s", "suspend": False,
                                      "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}})
    seen = Recorded(api)
    manager = JobsManager(api, pod_failure_backoff=0)  # type: ignore[arg-type]
    async with running(manager):
        await until(seen.has("create", "pods"))
        for obj in list(api.objects.values()):
            if obj["kind"] == "Pod" and obj["metadata"]["name"].startswith("j-"):
                await seen.own(api.patch(R.PODS, obj["metadata"]["name"], {"status": {"phase": "Succeeded"}},
                                         "default", subresource="status"))
        await until(seen.has("delete", "jobs"))
        await until(seen.has("create", "jobs"))
        await manager.jobs.events.flush()
        await manager.cronjobs.events.flush()
    tables = CALLS["job-controller"] | CALLS["cronjob-controller"] | CALLS["ttl-after-finished-controller"]
    assert seen.made() <= tables
    assert {("update", "batch", "jobs/status"), ("patch", "", "pods"), ("delete", "batch", "jobs"),
            ("create", "batch", "jobs")} <= seen.made()
    process = controller_user("job-controller")  # cluster/credentials.py: the process's identity
    authorizer = await bootstrap_authorizer()
    assert [c for c in sorted(seen.made()) if not authorizer.authorize(attrs(process, *c)).allowed] == []


# --- the user-facing roles -------------------------------------------------------------------

def _user(name: str, *groups: str) -> UserInfo:
    return UserInfo(name, groups=(*groups, "system:authenticated"))


ROLES = [
    ("system:masters are cluster-admin", _user("root", "system:masters"), "delete", "", "nodes", True),
    ("anyone authenticated: discovery", _user("jane"), "get", "URL", "/apis/apps/v1", True),
    ("anyone authenticated: healthz", _user("jane"), "get", "URL", "/healthz", True),
    ("anyone authenticated: can-i", _user("jane"), "create", "authorization.k8s.io", "selfsubjectaccessreviews", True),
    ("anyone authenticated: whoami", _user("jane"), "create", "authentication.k8s.io", "selfsubjectreviews", True),
    ("anyone authenticated: nothing else", _user("jane"), "list", "", "pods", False),
    ("anonymous: version only",
     UserInfo("system:anonymous", groups=("system:unauthenticated",)), "get", "URL", "/version", True),
    ("anonymous: no discovery",
     UserInfo("system:anonymous", groups=("system:unauthenticated",)), "get", "URL", "/api", False),
    ("the proxy reads endpointslices", _user("system:kube-proxy"), "watch", "discovery.k8s.io", "endpointslices", True),
    ("the proxy writes no services", _user("system:kube-proxy"), "create", "", "services", False),
    ("the scheduler binds pods", _user("system:kube-scheduler"), "create", "", "pods/binding", True),
    ("the DNS reads services", UserInfo("system:serviceaccount:kube-system:coredns"), "list", "", "services", True),
    ("the DNS writes nothing", UserInfo("system:serviceaccount:kube-system:coredns"), "update", "", "services", False),
    ("nodes get nothing from RBAC", _user("system:node:n1", "system:nodes"), "get", "", "pods", False),
]


@pytest.mark.parametrize("user, verb, group, what, allowed", [c[1:] for c in ROLES], ids=[c[0] for c in ROLES])
def test_the_default_bindings(authorizer, user, verb, group, what, allowed) -> None:
    if group == "URL":
        ask = Attributes(user=user, verb=verb, resource_request=False, path=what)
    else:
        ask = attrs(user, verb, group, what)
    assert authorizer.authorize(ask).allowed is allowed


def _rules(name: str):
    (role,) = [r for r in B.cluster_roles() if r["metadata"]["name"] == name]
    return compile_rules(role["rules"])


@pytest.mark.parametrize("role, verb, group, resource, allowed", [
    ("view", "list", "", "pods", True), ("view", "get", "", "pods/log", True),
    ("view", "create", "", "pods", False), ("view", "create", "", "pods/exec", False),
    ("view", "list", "rbac.authorization.k8s.io", "roles", False),
    ("edit", "create", "apps", "deployments", True), ("edit", "create", "", "pods/exec", True),
    ("edit", "patch", "apps", "deployments/scale", True),
    ("edit", "create", "rbac.authorization.k8s.io", "rolebindings", False),
    ("edit", "update", "discovery.k8s.io", "endpointslices", False),
    ("admin", "create", "rbac.authorization.k8s.io", "rolebindings", True), ("admin", "list", "", "pods", True),
    ("admin", "delete", "", "namespaces", False),
], ids=str)
def test_admin_edit_view_flattened(role, verb, group, resource, allowed) -> None:
    base, _, sub = resource.partition("/")
    ask = Attributes(user=UserInfo("u"), verb=verb, api_group=group, resource=base, subresource=sub,
                     namespace="team", name="x")
    assert any(r.allows(ask) for r in _rules(role)) is allowed


# --- reconciliation --------------------------------------------------------------------------

async def test_reconcile_creates_everything_once() -> None:
    storage = FakeStorage()
    first = await B.reconcile(storage)
    assert first == {"created": len(B.cluster_roles()) + len(B.cluster_role_bindings())}
    assert await B.reconcile(storage) == {"unchanged": first["created"]}


async def test_reconcile_adds_missing_rules_and_subjects_unless_told_not_to() -> None:
    storage = FakeStorage()
    await B.reconcile(storage)
    view = R.CLUSTERROLES.key(None, "view")
    storage.objects[view]["rules"] = storage.objects[view]["rules"][:1]
    storage.objects[view]["rules"].append({"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["things"]})
    masters = R.CLUSTERROLEBINDINGS.key(None, "cluster-admin")
    storage.objects[masters]["subjects"] = [{"kind": "User", "apiGroup": B.RBAC_GROUP, "name": "alice"}]
    edit = R.CLUSTERROLES.key(None, "edit")
    storage.objects[edit]["rules"] = []
    storage.objects[edit]["metadata"]["annotations"][B.AUTOUPDATE] = "false"

    counts = await B.reconcile(storage)
    assert counts["updated"] == 2
    rules = storage.objects[view]["rules"]
    assert {"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["things"]} in rules  # kept
    (wanted,) = [r for r in B.cluster_roles() if r["metadata"]["name"] == "view"]
    assert missing_rules(compile_rules(rules), wanted["rules"]) == []  # the missing ones added
    assert [s["name"] for s in storage.objects[masters]["subjects"]] == ["alice", "system:masters"]
    assert storage.objects[edit]["rules"] == []  # autoupdate=false: left alone
