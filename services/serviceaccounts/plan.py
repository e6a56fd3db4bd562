"""What one namespace needs, as pure functions of the cached objects: the ServiceAccounts to
create, and the root CA ConfigMap to create or rewrite (kube's syncNamespace of both
controllers). A namespace that is gone or Terminating needs nothing: its content is going."""
from __future__ import annotations

from dataclasses import dataclass

from kubecore.api.types import Obj

DEFAULT_SERVICE_ACCOUNTS = ("default",)
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


def active(namespace: Obj | None) -> bool:
    if namespace is None:
        return False
    phase = (namespace.get("status") or {}).get("phase", "Active")
    return phase == "Active" and not (namespace.get("metadata") or {}).get("deletionTimestamp")


def missing_service_accounts(namespace: Obj | None, existing: set[str],
                             wanted: tuple[str, ...] = DEFAULT_SERVICE_ACCOUNTS) -> list[Obj]:
    """The ServiceAccounts to create in this namespace."""
    if not active(namespace):
        return []
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
            for name in wanted if name not in existing]


@dataclass(frozen=True)
class ConfigMapWrite:
    """Create the ConfigMap (`create`), or update the one there to hold `obj`."""

    obj: Obj
    create: bool


def root_ca_configmap(namespace: Obj | None, current: Obj | None, root_ca: str) -> ConfigMapWrite | None:
    """The write that makes kube-root-ca.crt hold exactly the CA (and kube's description)."""
    if not active(namespace):
        return None
    data = {"ca.crt": root_ca}
    if current is None:
        return ConfigMapWrite({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": ROOT_CA_CONFIGMAP, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
            "data": data}, create=True)
    meta = current.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION \
            and not current.get("binaryData"):
        return None
    annotations[DESCRIPTION_ANNOTATION] = DESCRIPTION
    updated = {**current, "metadata": {**meta, "annotations": annotations}, "data": data}
    updated.pop("binaryData", None)
    return ConfigMapWrite(updated, create=False)
