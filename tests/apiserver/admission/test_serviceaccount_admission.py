"""The ServiceAccount admission plugin as a table: pod in, pod out (or kube's refusal)."""
from __future__ import annotations

import copy

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from services.apiserver.admission.serviceaccount import MOUNT_PATH, ServiceAccountAdmission, token_volume
from services.apiserver.registry.interfaces import SERVER_USER, AdmissionRequest

VOLUME = "kube-api-access-abcde"
MOUNT = {"name": VOLUME, "readOnly": True, "mountPath": MOUNT_PATH}


class ServiceAccounts:
    def __init__(self, *sas: Obj) -> None:
        self.by_name = {sa["metadata"]["name"]: sa for sa in sas}
        self.lookups = 0

    async def get(self, rt: R.ResourceType, namespace: str | None, name: str) -> Obj | None:
        assert rt is R.SERVICEACCOUNTS and namespace == "ns"
        self.lookups += 1
        return self.by_name.get(name)


def sa(name: str = "default", **fields) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns"}, **fields}


def pod(**spec) -> Obj:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def request(obj: Obj, operation: str = "CREATE", rt: R.ResourceType = R.PODS,
            subresource: str | None = None) -> AdmissionRequest:
    return AdmissionRequest(operation, rt, "ns", "p", subresource, obj, None, SERVER_USER, False)  # type: ignore[arg-type]


def plugin(accounts: ServiceAccounts) -> ServiceAccountAdmission:
    async def no_wait(seconds: float) -> None:
        return None
    return ServiceAccountAdmission(accounts, sleep=no_wait, volume_suffix=lambda: "abcde")


def mounted(spec: Obj, *, init: bool = False) -> Obj:
    out = copy.deepcopy(spec)
    for key in ("initContainers", "containers") if init else ("containers",):
        for c in out[key]:
            c["volumeMounts"] = [*c.get("volumeMounts", []), MOUNT]
    out["volumes"] = [*out.get("volumes", []), token_volume(VOLUME)]
    return out


CASES = [
    # (id, service accounts, pod spec, expected spec changes: a function of the spec in)
    ("defaults-and-mounts", [sa()], {},
     lambda s: {**mounted(s), "serviceAccountName": "default", "serviceAccount": "default"}),
    ("init-containers-too", [sa()], {"initContainers": [{"name": "i", "image": "busybox"}]},
     lambda s: {**mounted(s, init=True), "serviceAccountName": "default", "serviceAccount": "default"}),
    ("named-account", [sa("robot")], {"serviceAccountName": "robot"},
     lambda s: {**mounted(s), "serviceAccount": "robot"}),
    ("deprecated-field", [sa("robot")], {"serviceAccount": "robot"},
     lambda s: {**mounted(s), "serviceAccountName": "robot"}),
    ("sa-opts-out", [sa(automountServiceAccountToken=False)], {},
     lambda s: {**s, "serviceAccountName": "default", "serviceAccount": "default"}),
    ("pod-opts-out", [sa()], {"automountServiceAccountToken": False},
     lambda s: {**s, "serviceAccountName": "default", "serviceAccount": "default"}),
    ("pod-wins-over-sa", [sa(automountServiceAccountToken=False)], {"automountServiceAccountToken": True},
     lambda s: {**mounted(s), "serviceAccountName": "default", "serviceAccount": "default"}),
    ("something-already-at-the-path", [sa()],
     {"containers": [{"name": "c", "image": "b", "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]}]},
     lambda s: {**s, "serviceAccountName": "default", "serviceAccount": "default"}),
    ("existing-volume-reused", [sa()], {"volumes": [{"name": "kube-api-access-zzzzz", "emptyDir": {}}]},
     lambda s: {**s, "serviceAccountName": "default", "serviceAccount": "default",
                "containers": [{"name": "c", "image": "busybox", "volumeMounts": [
                    {"name": "kube-api-access-zzzzz", "readOnly": True, "mountPath": MOUNT_PATH}]}]}),
    ("image-pull-secrets", [sa(imagePullSecrets=[{"name": "reg"}], automountServiceAccountToken=False)], {},
     lambda s: {**s, "serviceAccountName": "default", "serviceAccount": "default",
                "imagePullSecrets": [{"name": "reg"}]}),
]


@pytest.mark.parametrize(("accounts", "spec", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_mutate(accounts: list[Obj], spec: Obj, expected) -> None:
    obj = pod(**spec)
    want = expected(copy.deepcopy(obj["spec"]))
    p = plugin(ServiceAccounts(*accounts))
    await p.mutate(request(obj))
    await p.validate(request(obj))
    assert obj["spec"] == want


def test_the_volume_is_kubes() -> None:
    assert token_volume("kube-api-access-x") == {"name": "kube-api-access-x", "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ], "defaultMode": 420}}


@pytest.mark.parametrize(("spec", "lookups", "message"), [
    ({"serviceAccountName": "robot"}, 1,
     'pods "p" is forbidden: error looking up service account ns/robot: serviceaccount "robot" not found'),
    ({}, 10,
     'pods "p" is forbidden: error looking up service account ns/default: serviceaccount "default" not found'),
], ids=["named", "default-retried"])
async def test_a_missing_service_account_is_forbidden(spec: Obj, lookups: int, message: str) -> None:
    accounts = ServiceAccounts()
    with pytest.raises(ApiError) as err:
        await plugin(accounts).mutate(request(pod(**spec)))
    assert (err.value.code, err.value.reason, err.value.message) == (403, "Forbidden", message)
    assert accounts.lookups == lookups


@pytest.mark.parametrize("req", [
    request(pod(), operation="UPDATE"),
    request(pod(), subresource="status"),
    request({"metadata": {"name": "p"}}, rt=R.SERVICES),
], ids=["update", "subresource", "other-kind"])
async def test_only_pod_creation_is_touched(req: AdmissionRequest) -> None:
    before = copy.deepcopy(req.obj)
    p = plugin(ServiceAccounts())
    await p.mutate(req)
    await p.validate(req)
    assert req.obj == before
