"""The Node authorizer (kube's plugin/pkg/auth/authorizer/node): what a kubelet may do,
decided by which pods are bound to its node.

A node is the user `system:node:<name>` in the group `system:nodes`. It may read a Secret, a
ConfigMap or a PersistentVolumeClaim, and ask a token for a ServiceAccount, only when a pod
bound to it uses that object; its node lease only under its own name. Everything else it may
do is one fixed set of rules (kube's `NodeRules`, `bootstrap.NODE_RULES`); the NodeRestriction
admission plugin (`admission/noderestriction.py`) then keeps its writes to its own Node and
its own pods, which an authorizer, seeing no bodies, cannot.

Which pod uses what is a graph kube keeps from informers; here it is an index built from the
API server's pod cache, again only when the pods have changed since and a node asks.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from kubecore.api.types import Obj
from services.apiserver.authz import NO_OPINION, Attributes, Decision, Verdict
from services.apiserver.authz.bootstrap import NODE_RULES
from services.apiserver.authz.rbac import Caches
from services.apiserver.authz.reviews import RulesFound
from services.apiserver.authz.rules import compile_rules
from services.apiserver.registry.interfaces import UserInfo, node_identity

NODE_LEASE_NAMESPACE = "kube-node-lease"
Ref = tuple[str, str, str]  # (kind: secret | configmap | pvc | serviceaccount, namespace, name)

_ALLOW = Decision(Verdict.ALLOW)


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c


def _env_refs(container: Obj) -> Iterator[tuple[str, Any]]:
    for env in container.get("env") or []:
        source = (env or {}).get("valueFrom") or {}
        yield "secret", (source.get("secretKeyRef") or {}).get("name")
        yield "configmap", (source.get("configMapKeyRef") or {}).get("name")
    for env_from in container.get("envFrom") or []:
        yield "secret", ((env_from or {}).get("secretRef") or {}).get("name")
        yield "configmap", ((env_from or {}).get("configMapRef") or {}).get("name")


def _volume_refs(pod_name: str, volume: Obj) -> Iterator[tuple[str, Any]]:
    yield "secret", (volume.get("secret") or {}).get("secretName")
    yield "configmap", (volume.get("configMap") or {}).get("name")
    yield "pvc", (volume.get("persistentVolumeClaim") or {}).get("claimName")
    if volume.get("ephemeral") is not None:
        yield "pvc", f"{pod_name}-{volume.get('name')}"
    for source in (volume.get("projected") or {}).get("sources") or []:
        yield "secret", ((source or {}).get("secret") or {}).get("name")
        yield "configmap", ((source or {}).get("configMap") or {}).get("name")
    for plugin in ("csi", "cephfs", "rbd", "iscsi", "flexVolume", "scaleIO", "storageos"):
        ref = (volume.get(plugin) or {})
        yield "secret", (ref.get("nodePublishSecretRef") or ref.get("secretRef") or {}).get("name")
    yield "secret", (volume.get("azureFile") or {}).get("secretName")


def pod_references(pod: Obj) -> set[tuple[str, str]]:
    """(kind, name) of every object in the pod's namespace the pod uses."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name") or ""
    found: list[tuple[str, Any]] = [("secret", (s or {}).get("name"))
                                    for s in spec.get("imagePullSecrets") or []]
    found.append(("serviceaccount", spec.get("serviceAccountName")))
    for container in _containers(spec):
        found += _env_refs(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            found += _volume_refs(name, volume)
    return {(kind, ref) for kind, ref in found if isinstance(ref, str) and ref}


class PodGraph:
    """Which nodes' pods use each object, from the pod cache at its current revision."""

    def __init__(self, caches: Caches) -> None:
        self.caches = caches
        self._revision: int | None = None
        self._users: Mapping[Ref, frozenset[str]] = {}

    def nodes_using(self, ref: Ref) -> frozenset[str]:
        pods = self.caches.get("pods")
        if pods is None:
            return frozenset()
        if pods.revision != self._revision:
            users: dict[Ref, set[str]] = defaultdict(set)
            for pod, _ in list(pods.objects.values()):
                node = (pod.get("spec") or {}).get("nodeName")
                if not node:
                    continue
                namespace = pod["metadata"].get("namespace") or ""
                for kind, name in pod_references(pod):
                    users[(kind, namespace, name)].add(node)
            self._users = {k: frozenset(v) for k, v in users.items()}
            self._revision = pods.revision
        return self._users.get(ref, frozenset())


class NodeAuthorizer:
    def __init__(self, caches: Caches) -> None:
        self.graph = PodGraph(caches)
        self.rules = compile_rules(NODE_RULES)

    def resolve_rules(self, user: UserInfo, namespace: str) -> RulesFound:
        """A node's rules depend on its pods: kube lists none, and says so."""
        if node_identity(user) is None:
            return RulesFound()
        return RulesFound(incomplete=True, errors=["node authorizer does not support user rule resolution"])

    def authorize(self, attrs: Attributes) -> Decision:
        node = node_identity(attrs.user)
        if node is None:
            return NO_OPINION
        if not node:
            return Decision(Verdict.NO_OPINION, f'unknown node for user "{attrs.user.name}"')
        if attrs.resource_request and attrs.api_group in ("", "coordination.k8s.io"):
            special = self._subdivided(node, attrs)
            if special is not None:
                return special
        if any(rule.allows(attrs) for rule in self.rules):
            return _ALLOW
        return NO_OPINION

    def _subdivided(self, node: str, attrs: Attributes) -> Decision | None:
        """The resources kube decides per object; None for the rest."""
        key = (attrs.api_group, attrs.resource)
        if key == ("", "secrets"):
            return self._read_namespaced(node, attrs, "secret")
        if key == ("", "configmaps"):
            return self._read_namespaced(node, attrs, "configmap")
        if key == ("", "persistentvolumeclaims"):
            return self._get(node, attrs, "pvc")
        if key == ("", "serviceaccounts"):
            return self._create_token(node, attrs)
        if key == ("coordination.k8s.io", "leases"):
            return self._lease(node, attrs)
        return None

    def _related(self, node: str, kind: str, attrs: Attributes) -> Decision:
        if not attrs.name:
            return Decision(Verdict.NO_OPINION, "No Object name found")
        if node in self.graph.nodes_using((kind, attrs.namespace, attrs.name)):
            return _ALLOW
        return Decision(Verdict.NO_OPINION, f"no relationship found between node '{node}' and this object")

    def _read_namespaced(self, node: str, attrs: Attributes, kind: str) -> Decision:
        if attrs.verb not in ("get", "list", "watch"):
            return Decision(Verdict.NO_OPINION, "can only read resources of this type")
        if attrs.subresource:
            return Decision(Verdict.NO_OPINION, "cannot read subresource")
        if not attrs.namespace:
            return Decision(Verdict.NO_OPINION, "can only read namespaced object of this type")
        return self._related(node, kind, attrs)

    def _get(self, node: str, attrs: Attributes, kind: str) -> Decision:
        if attrs.verb != "get":
            return Decision(Verdict.NO_OPINION, "can only get individual resources of this type")
        if attrs.subresource:
            return Decision(Verdict.NO_OPINION, "cannot get subresource")
        return self._related(node, kind, attrs)

    def _create_token(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb != "create" or not attrs.name:
            return Decision(Verdict.NO_OPINION, "can only create tokens for individual service accounts")
        if attrs.subresource != "token":
            return Decision(Verdict.NO_OPINION, "can only create token subresource of serviceaccount")
        return self._related(node, "serviceaccount", attrs)

    def _lease(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision(Verdict.NO_OPINION, "can only get, create, update, patch, or delete a node lease")
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return Decision(Verdict.NO_OPINION, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" '
                            "system namespace")
        if attrs.verb != "create" and attrs.name != node:
            return Decision(Verdict.NO_OPINION, "can only access node lease with the same name as the "
                            "requesting node")
        return _ALLOW
