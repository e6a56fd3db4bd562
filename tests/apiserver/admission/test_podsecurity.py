"""Pod Security Admission through the generic registry store (no etcd, no HTTP): namespace
labels, defaults and exemptions, the 403 and the warnings in kube-apiserver's words,
workloads warned about only, pod updates, and labels that are not valid."""
from __future__ import annotations

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.admission import Chain
from services.apiserver.admission.podsecurity import PodSecurity, default_policy, policy_for
from services.apiserver.admission.podsecurity_policy import LevelVersion, Version
from services.apiserver.registry.interfaces import SERVER_USER
from services.apiserver.registry.store import Store
from services.apiserver.registry.validation import FieldValidation
from tests.apiserver.registry.fakes import FakeCache, FakeStorage

P = "pod-security.kubernetes.io/"
HOST_NETWORK = "host namespaces (hostNetwork=true)"
RESTRICTED_PLAIN = (
    'allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")')


def pod(name: str = "web", image: str = "busybox", **spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image}], **spec}}


def deployment(**spec: object) -> dict:
    return {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}},
                     "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec}}}}


class Client:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, rt: R.ResourceType, body: dict, namespace: str | None = None) -> list[str]:
        fields = FieldValidation()
        await self.store.create(rt, body, namespace, fields=fields, dry_run=False, user=SERVER_USER)
        return fields.warnings

    async def patch(self, rt: R.ResourceType, name: str, patch: dict, namespace: str | None = None) -> list[str]:
        fields = FieldValidation()
        await self.store.patch(rt, namespace, name, patch, "application/merge-patch+json",
                               status_only=False, manager=None, fields=fields, dry_run=False,
                               user=SERVER_USER)
        return fields.warnings

    async def namespace(self, name: str, **labels: str) -> list[str]:
        return await self.create(R.NAMESPACES, {"metadata": {"name": name, "labels": {
            P + k.replace("_", "-"): v for k, v in labels.items()}}})


@pytest.fixture
async def api() -> Client:
    storage = FakeStorage()
    plugin = PodSecurity(storage, default_policy("baseline"), exempt_namespaces=["kube-system"])
    store = Store(storage, {"namespaces": FakeCache()}, Chain([plugin]))
    client = Client(store)
    for ns in ("default", "kube-system"):
        await client.namespace(ns)
    yield client
    store.namespaces.cancel()


async def refused(call) -> ApiError:
    with pytest.raises(ApiError) as err:
        await call
    return err.value


async def test_a_namespace_without_labels_enforces_baseline(api):
    err = await refused(api.create(R.PODS, pod(hostNetwork=True), "default"))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == f'pods "web" is forbidden: violates PodSecurity "baseline:latest": {HOST_NETWORK}'
    assert err.details == {"name": "web", "kind": "pods"}
    assert "/registry/pods/default/web" not in api.store.storage.objects
    assert await api.create(R.PODS, pod(), "default") == []


async def test_the_documented_message_for_two_violations(api):
    body = pod("x", hostNetwork=True, volumes=[{"name": "root", "hostPath": {"path": "/"}}])
    err = await refused(api.create(R.PODS, body, "default"))
    assert err.message == ('pods "x" is forbidden: violates PodSecurity "baseline:latest": host '
                           'namespaces (hostNetwork=true), hostPath volumes (volume "root")')


@pytest.mark.parametrize("namespace, labels, warnings", [
    ("kube-system", {}, []),
    ("ops", {"enforce": "privileged", "warn": "privileged"}, []),
    ("loose", {"enforce": "privileged"}, [f'would violate PodSecurity "baseline:latest": {HOST_NETWORK}']),
], ids=["exempt-namespace", "labelled-privileged", "enforce-only-still-warns-at-the-default"])
async def test_exempt_and_privileged_namespaces_take_any_pod(api, namespace, labels, warnings):
    if namespace != "kube-system":
        await api.namespace(namespace, **labels)
    assert await api.create(R.PODS, pod(hostNetwork=True), namespace) == warnings


async def test_enforce_restricted_and_a_pinned_version(api):
    await api.namespace("strict", enforce="restricted")
    err = await refused(api.create(R.PODS, pod(), "strict"))
    assert err.message == f'pods "web" is forbidden: violates PodSecurity "restricted:latest": {RESTRICTED_PLAIN}'
    await api.namespace("pinned", enforce="restricted", enforce_version="v1.24")
    err = await refused(api.create(R.PODS, pod(), "pinned"))
    assert 'violates PodSecurity "restricted:v1.24"' in err.message


async def test_warn_answers_warnings_and_admits(api):
    await api.namespace("soft", warn="restricted")
    warnings = await api.create(R.PODS, pod(), "soft")
    assert warnings == [f'would violate PodSecurity "restricted:latest": {RESTRICTED_PLAIN}']


async def test_workloads_are_warned_about_never_refused(api):
    warnings = await api.create(R.DEPLOYMENTS, deployment(hostNetwork=True), "default")
    assert warnings == [f'would violate PodSecurity "baseline:latest": {HOST_NETWORK}']
    await api.namespace("strict", enforce="restricted")
    warnings = await api.create(R.REPLICASETS, {**deployment(), "metadata": {"name": "rs"}}, "strict")
    assert warnings == [f'would violate PodSecurity "restricted:latest": {RESTRICTED_PLAIN}']
    assert await api.create(R.DEPLOYMENTS, deployment(hostNetwork=True), "kube-system") == []


async def test_only_an_image_change_re_checks_a_stored_pod(api):
    await api.create(R.PODS, pod(hostNetwork=True), "kube-system")
    # moved into force by making kube-system checked: build a plugin that exempts nothing
    plugin = api.store.admission.plugins[0]
    plugin.exempt_namespaces = frozenset()
    assert await api.patch(R.PODS, "web", {"metadata": {"labels": {"a": "b"}}}, "kube-system") == []
    err = await refused(api.patch(R.PODS, "web", {"spec": {"containers": [{"name": "app", "image": "nginx"}]}},
                                  "kube-system"))
    assert err.code == 403


@pytest.mark.parametrize("labels, message", [
    ({"enforce": "bogus"}, 'Namespace "bad" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
                           'Invalid value: "bogus": must be one of privileged, baseline, restricted'),
    ({"warn_version": "1.30", "audit": "x"},
     'Namespace "bad" is invalid: [metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "x": '
     'must be one of privileged, baseline, restricted, metadata.labels[pod-security.kubernetes.io/warn-version]: '
     'Invalid value: "1.30": must be "latest" or "v1.x"]'),
], ids=["bad-level", "bad-audit-and-version"])
async def test_a_namespace_with_invalid_labels_is_refused(api, labels, message):
    err = await refused(api.namespace("bad", **labels))
    assert (err.code, err.message) == (422, message)


async def test_pods_in_a_namespace_whose_labels_are_invalid_meet_restricted(api):
    api.store.storage.objects["/registry/namespaces/old"] = {
        "metadata": {"name": "old", "labels": {P + "enforce": "bogus"}}, "status": {"phase": "Active"}}
    err = await refused(api.create(R.PODS, pod(), "old"))
    assert 'violates PodSecurity "restricted:latest"' in err.message


async def test_tightening_a_namespace_warns_about_its_pods(api):
    await api.namespace("team", enforce="privileged")
    await api.create(R.PODS, pod("a", hostNetwork=True), "team")
    await api.create(R.PODS, pod("b", hostNetwork=True), "team")
    await api.create(R.PODS, pod("c", hostPID=True, volumes=[{"name": "v", "hostPath": {"path": "/"}}]), "team")
    warnings = await api.patch(R.NAMESPACES, "team", {"metadata": {"labels": {P + "enforce": "baseline"}}})
    assert warnings == ['existing pods in namespace "team" violate the new PodSecurity enforce level "baseline:latest"',
                        "a (and 1 other pod): host namespaces",
                        "c: host namespaces, hostPath volumes"]
    assert await api.patch(R.NAMESPACES, "team", {"metadata": {"labels": {P + "enforce": "privileged"}}}) == []


async def test_labels_on_an_exempt_namespace_are_said_to_be_ignored(api):
    warnings = await api.patch(R.NAMESPACES, "kube-system", {"metadata": {"labels": {P + "enforce": "restricted"}}})
    assert warnings == ['namespace "kube-system" is exempt from Pod Security, and the policy '
                        "(enforce=restricted:latest) will be ignored"]


async def test_a_pod_in_a_missing_namespace_is_a_404_not_a_psa_error(api):
    err = await refused(api.create(R.PODS, pod(hostNetwork=True), "nowhere"))
    assert err.code == 404


@pytest.mark.parametrize("labels, enforce, warn", [
    ({}, "baseline:latest", "baseline:latest"),
    ({"enforce": "restricted"}, "restricted:latest", "restricted:latest"),
    ({"enforce": "restricted", "enforce-version": "v1.25"}, "restricted:v1.25", "restricted:v1.25"),
    ({"enforce": "restricted", "warn-version": "v1.20"}, "restricted:latest", "restricted:v1.20"),
    ({"enforce": "privileged"}, "privileged:latest", "baseline:latest"),
    ({"enforce": "bogus"}, "restricted:latest", "baseline:latest"),
    ({"warn": "bogus"}, "baseline:latest", "privileged:latest"),
], ids=["defaults", "warn-follows-stricter-enforce", "with-its-version", "own-warn-version",
        "looser-enforce-keeps-warn", "invalid-enforce-is-restricted", "invalid-warn-is-privileged"])
def test_policy_from_labels(labels, enforce, warn):
    policy, _ = policy_for({P + k: v for k, v in labels.items()}, default_policy("baseline"))
    assert (str(policy.enforce), str(policy.warn)) == (enforce, warn)
    assert policy.audit.level == "privileged" or labels.get("audit")


def test_settings_flags(tmp_path):
    from services.apiserver.settings import parse_args

    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_text("")
    tls = ["--tls-cert-file", str(tmp_path / "tls.crt"), "--tls-private-key-file", str(tmp_path / "tls.key")]
    s = parse_args([*tls, "--pod-security-default-enforce", "restricted",
                    "--pod-security-exempt-namespaces", "kube-system, ops"])
    assert (s.pod_security_default_enforce, s.pod_security_exempt_namespaces) == ("restricted", ["kube-system", "ops"])
    assert parse_args(tls).pod_security_default_enforce == "baseline"
    assert LevelVersion("baseline", Version(3)).__str__() == "baseline:v1.3"
