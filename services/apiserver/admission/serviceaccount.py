"""The ServiceAccount admission plugin (kube's plugin/pkg/admission/serviceaccount).

On the creation of a pod (not its subresources, not updates):
- `spec.serviceAccountName` defaults to "default" (or the deprecated `spec.serviceAccount`);
- the ServiceAccount must exist, else 403 `error looking up service account <ns>/<name>: ...`
  (looked up in the watch cache, then live; the `default` one up to ten times a little apart,
  since the ServiceAccount controller may be about to make it in a new namespace);
- unless `automountServiceAccountToken` says false (the pod's word wins over the
  ServiceAccount's), the projected volume `kube-api-access-<5 random chars>` (a token for the
  API server valid 3607 s, the cluster CA from the `kube-root-ca.crt` ConfigMap, the pod's
  namespace) is added, and mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount
  in every init container and container that has nothing mounted there yet;
- `imagePullSecrets` come from the ServiceAccount when the pod names none.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, not_found
from kubecore.api.types import Obj
from services.apiserver.registry.interfaces import AdmissionRequest
from services.apiserver.registry.lookup import ObjectGetter
from services.apiserver.registry.meta import random_suffix

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_EXPIRATION_SECONDS = 3607  # kube's WarnOnlyBoundTokenExpirationSeconds
DEFAULT_MODE = 0o644
DEFAULT_LOOKUP_ATTEMPTS = 10

Sleep = Callable[[float], Awaitable[None]]


def token_volume(name: str) -> Obj:
    """The projected volume, as kube-apiserver stores it."""
    return {"name": name, "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
        "defaultMode": DEFAULT_MODE}}


def should_automount(sa: Obj, spec: Obj) -> bool:
    """The pod's preference wins, then the ServiceAccount's; true when neither says."""
    if isinstance(spec.get("automountServiceAccountToken"), bool):
        return bool(spec["automountServiceAccountToken"])
    if isinstance(sa.get("automountServiceAccountToken"), bool):
        return bool(sa["automountServiceAccountToken"])
    return True


def mount_token(spec: Obj, new_name: Callable[[], str]) -> None:
    """kube's mountServiceAccountToken: one kube-api-access-* volume, mounted in every container
    that has nothing at the mount path."""
    volumes = _list(spec.get("volumes"))
    existing = next((v.get("name") for v in volumes if isinstance(v, dict)
                     and str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or new_name()
    needs_volume = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            mounts = _list(container.get("volumeMounts"))
            if any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            container["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
            needs_volume = True
    if existing is None and needs_volume:
        spec["volumes"] = [*volumes, token_volume(name)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def forbidden(req: AdmissionRequest, why: str) -> ApiError:
    """kube's admission.NewForbidden for a pod."""
    pod = req.obj or {}
    meta = pod.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = req.name or meta.get("name") or meta.get("generateName") or ""
    subject = f'pods "{name}"' if name else "pods"
    details: dict[str, Any] = {"kind": "pods"}
    if name:
        details = {"name": name, **details}
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details)


class ServiceAccountAdmission:
    """The `admission.Plugin`."""

    def __init__(self, getter: ObjectGetter, *, sleep: Sleep = asyncio.sleep,
                 volume_suffix: Callable[[], str] = random_suffix) -> None:
        self.getter = getter
        self.sleep = sleep
        self.volume_suffix = volume_suffix

    @staticmethod
    def _applies(req: AdmissionRequest) -> bool:
        return (req.rt is R.PODS and req.operation == "CREATE" and req.subresource is None
                and isinstance(req.obj, dict))

    async def mutate(self, req: AdmissionRequest) -> None:
        if not self._applies(req):
            return
        assert req.obj is not None
        spec = req.obj.get("spec")
        if not isinstance(spec, dict):
            return  # the shape check refuses it
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
        spec["serviceAccount"] = spec["serviceAccountName"]
        sa = await self._service_account(req, spec["serviceAccountName"])
        if should_automount(sa, spec):
            mount_token(spec, lambda: VOLUME_PREFIX + self.volume_suffix())
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]
                                        if isinstance(s, dict)]

    async def validate(self, req: AdmissionRequest) -> None:
        if not self._applies(req):
            return
        assert req.obj is not None
        spec = req.obj.get("spec") or {}
        name = spec.get("serviceAccountName") if isinstance(spec, dict) else None
        if not name:
            pod_name = (req.obj.get("metadata") or {}).get("name", "")
            raise forbidden(req, f"no service account specified for pod {req.namespace}/{pod_name}")
        await self._service_account(req, name)

    async def _service_account(self, req: AdmissionRequest, name: Any) -> Obj:
        """kube's getServiceAccount: the cache, then live; 403 when there is none."""
        if not isinstance(name, str):
            raise forbidden(req, "spec.serviceAccountName must be a string")
        attempts = DEFAULT_LOOKUP_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
        for attempt in range(attempts):
            if attempt:
                await self.sleep(random.uniform(0.1, 0.2))
            sa = await self.getter.get(R.SERVICEACCOUNTS, req.namespace, name)
            if sa is not None:
                return sa
        missing = not_found("serviceaccount", name)
        raise forbidden(req, f"error looking up service account {req.namespace}/{name}: {missing.message}")
