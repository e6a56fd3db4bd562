"""NodeRestriction (kube's plugin/pkg/admission/noderestriction): what a kubelet writes stays
on its own node. The Node authorizer lets every node write Nodes and pods at all; this plugin,
which sees the objects, narrows it:

- a node modifies only its own Node object, never its taints, and sets or changes no label
  under `node-restriction.kubernetes.io/` nor any `kubernetes.io`/`k8s.io` label a kubelet
  does not own (`kubernetes.io/hostname`, `.../os`, `.../arch`, `node.kubernetes.io/*`, ...);
- it writes the status of, and deletes, only pods bound to it (`spec.nodeName`), and cannot
  change their labels through the status; it creates only mirror pods, bound to itself,
  owned by its Node, using no ServiceAccount, Secret, ConfigMap or claim;
- it asks ServiceAccount tokens only bound to a pod running on it.

Users that are not nodes pass untouched. Refusals are kube's 403s with kube's messages.
"""
from __future__ import annotations

from collections.abc import Mapping

from kubecore.api.errors import ApiError, not_found
from kubecore.api.types import Obj
from services.apiserver.registry.interfaces import AdmissionRequest, CachedObjects, node_identity

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
NODE_RESTRICTION = "node-restriction.kubernetes.io"
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os",
    "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _forbidden(req: AdmissionRequest, message: str) -> ApiError:
    """kube's admission.NewForbidden: named by the resource, not the subresource."""
    return ApiError(403, "Forbidden", f'{req.rt.group_resource} "{req.name}" is forbidden: {message}',
                    {"name": req.name, "group": req.rt.group, "kind": req.rt.plural})


def _label_namespace(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _in_namespace(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def is_kubelet_label(key: str) -> bool:
    namespace = _label_namespace(key)
    return key in KUBELET_LABELS or any(_in_namespace(namespace, ns) for ns in KUBELET_LABEL_NAMESPACES)


def forbidden_labels(new: Mapping[str, str], old: Mapping[str, str]) -> list[str]:
    """The labels added, changed or removed that a node may not touch, sorted."""
    modified = {k for k in set(new) | set(old) if new.get(k) != old.get(k)}
    out = set()
    for key in modified:
        namespace = _label_namespace(key)
        if _in_namespace(namespace, NODE_RESTRICTION):
            out.add(key)
        kubernetes = _in_namespace(namespace, "kubernetes.io") or _in_namespace(namespace, "k8s.io")
        if kubernetes and not is_kubelet_label(key):
            out.add(key)
    return sorted(out)


def _labels(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


REFERENCE_ORDER = ("a service account", "secrets", "configmaps", "persistentvolumeclaims")


def _volume_uses(volume: Obj) -> set[str]:
    sources = [volume] + [s for s in (volume.get("projected") or {}).get("sources") or [] if isinstance(s, dict)]
    uses = {"secrets" for s in sources if "secret" in s}
    uses |= {"configmaps" for s in sources if "configMap" in s}
    if "persistentVolumeClaim" in volume or "ephemeral" in volume:
        uses.add("persistentvolumeclaims")
    return uses


def _container_uses(container: Obj) -> set[str]:
    uses = set()
    for env in container.get("env") or []:
        source = (env or {}).get("valueFrom") or {}
        uses |= {"secrets"} if "secretKeyRef" in source else set()
        uses |= {"configmaps"} if "configMapKeyRef" in source else set()
    for env_from in container.get("envFrom") or []:
        uses |= {"secrets"} if "secretRef" in (env_from or {}) else set()
        uses |= {"configmaps"} if "configMapRef" in (env_from or {}) else set()
    return uses


def _pod_references(pod: Obj) -> list[str]:
    """What a mirror pod may not use, by kube's words for each, in kube's order."""
    spec = pod.get("spec") or {}
    uses: set[str] = set()
    if spec.get("serviceAccountName"):
        uses.add("a service account")
    if spec.get("imagePullSecrets"):
        uses.add("secrets")
    for volume in spec.get("volumes") or []:
        uses |= _volume_uses(volume) if isinstance(volume, dict) else set()
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            uses |= _container_uses(container) if isinstance(container, dict) else set()
    return [what for what in REFERENCE_ORDER if what in uses]


class NodeRestriction:
    """The plugin; `caches` are the watch caches (pods and nodes are read from them, as
    kube's plugin reads its informers)."""

    def __init__(self, caches: Mapping[str, CachedObjects]) -> None:
        self.caches = caches

    def _cached(self, plural: str, key: str) -> Obj | None:
        cache = self.caches.get(plural)
        entry = cache.objects.get(key) if cache is not None else None
        return entry[0] if entry is not None else None

    async def mutate(self, req: AdmissionRequest) -> None:
        if req.operation in ("CREATE", "UPDATE", "CONNECT"):
            self._admit(req)

    async def validate(self, req: AdmissionRequest) -> None:
        if req.operation == "DELETE":
            self._admit(req)

    def _admit(self, req: AdmissionRequest) -> None:
        node = node_identity(req.user)
        if node is None:
            return
        if not node:
            raise _forbidden(req, f'could not determine node from user "{req.user.name}"')
        if req.rt.group != "":
            return
        if req.rt.plural == "pods":
            self._pod(node, req)
        elif req.rt.plural == "nodes":
            self._node(node, req)
        elif req.rt.plural == "serviceaccounts" and req.subresource == "token":
            self._token(node, req)

    # -- pods --------------------------------------------------------------------------------
    def _pod(self, node: str, req: AdmissionRequest) -> None:
        if req.subresource == "status":
            self._pod_status(node, req)
        elif req.subresource:
            raise _forbidden(req, f"unexpected pod subresource \"{req.subresource}\", only 'status' "
                             "and 'eviction' are allowed")
        elif req.operation == "CREATE":
            self._mirror_pod(node, req)
        elif req.operation == "DELETE":
            if ((req.old or {}).get("spec") or {}).get("nodeName") != node:
                raise _forbidden(req, f'node "{node}" can only delete pods with spec.nodeName set to itself')
        else:
            raise _forbidden(req, f'unexpected operation "{req.operation}", node "{node}" can only '
                             "create and delete mirror pods")

    def _pod_status(self, node: str, req: AdmissionRequest) -> None:
        if req.operation != "UPDATE":
            raise _forbidden(req, f'unexpected operation "{req.operation}"')
        if ((req.old or {}).get("spec") or {}).get("nodeName") != node:
            raise _forbidden(req, f'node "{node}" can only update pod status for pods with '
                             "spec.nodeName set to itself")
        if _labels(req.old) != _labels(req.obj):
            raise _forbidden(req, f'node "{node}" cannot update labels through pod status')

    def _mirror_pod(self, node: str, req: AdmissionRequest) -> None:
        pod = req.obj or {}
        meta = pod.get("metadata") or {}
        if MIRROR_POD_ANNOTATION not in (meta.get("annotations") or {}):
            raise _forbidden(req, f'pod does not have "{MIRROR_POD_ANNOTATION}" annotation, node '
                             f'"{node}" can only create mirror pods')
        if (pod.get("spec") or {}).get("nodeName") != node:
            raise _forbidden(req, f'node "{node}" can only create pods with spec.nodeName set to itself')
        self._mirror_owner(node, req, meta.get("ownerReferences") or [])
        for what in _pod_references(pod):
            raise _forbidden(req, f'node "{node}" can not create pods that reference {what}')

    def _mirror_owner(self, node: str, req: AdmissionRequest, owners: list[Obj]) -> None:
        if len(owners) > 1:
            raise _forbidden(req, f'node "{node}" can only create pods with a single owner reference '
                             "set to itself")
        owner = owners[0] if owners else {}
        if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
            raise _forbidden(req, f'node "{node}" can only create pods with an owner reference set to itself')
        if not owner.get("controller"):
            raise _forbidden(req, f'node "{node}" can only create pods with a controller owner '
                             "reference set to itself")
        if owner.get("blockOwnerDeletion"):
            raise _forbidden(req, f'node "{node}" must not set blockOwnerDeletion on an owner reference')
        stored = self._cached("nodes", f"/registry/nodes/{node}")
        if stored is None:
            raise not_found("nodes", node)
        uid = stored["metadata"].get("uid")
        if owner.get("uid") != uid:
            raise _forbidden(req, f"node {node} UID mismatch: expected {uid} got {owner.get('uid')}")

    # -- nodes -------------------------------------------------------------------------------
    def _node(self, node: str, req: AdmissionRequest) -> None:
        if req.name != node:
            raise _forbidden(req, f'node "{node}" is not allowed to modify node "{req.name}"')
        if req.operation == "CREATE":
            bad = forbidden_labels(_labels(req.obj), {})
            if bad:
                raise _forbidden(req, f'node "{node}" is not allowed to set the following labels: '
                                 + ", ".join(bad))
        elif req.operation == "UPDATE":
            taints = ((req.obj or {}).get("spec") or {}).get("taints")
            if taints != ((req.old or {}).get("spec") or {}).get("taints"):
                raise _forbidden(req, f'node "{node}" is not allowed to modify taints')
            bad = forbidden_labels(_labels(req.obj), _labels(req.old))
            if bad:
                raise _forbidden(req, "is not allowed to modify labels: " + ", ".join(bad))

    # -- serviceaccounts/token -----------------------------------------------------------------
    def _token(self, node: str, req: AdmissionRequest) -> None:
        if req.operation != "CREATE":
            return
        ref = ((req.obj or {}).get("spec") or {}).get("boundObjectRef") or {}
        if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
            raise _forbidden(req, "node requested token not bound to a pod")
        if not ref.get("uid"):
            raise _forbidden(req, "node requested token with a pod binding without a uid")
        pod = self._cached("pods", f"/registry/pods/{req.namespace}/{ref['name']}")
        if pod is None:
            raise not_found("pods", ref["name"])
        if pod["metadata"].get("uid") != ref["uid"]:
            raise _forbidden(req, f"the UID in the bound object reference ({ref['uid']}) does not match "
                             "the UID in record. The object might have been deleted and then recreated")
        if (pod.get("spec") or {}).get("nodeName") != node:
            raise _forbidden(req, "node requested token bound to a pod scheduled on a different node")
