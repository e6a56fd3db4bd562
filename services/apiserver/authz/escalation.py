"""Privilege escalation prevention (kube's pkg/registry/rbac/{role,clusterrole,rolebinding,
clusterrolebinding}/policybased): RBAC objects can only hand out what their writer holds.

- A Role or ClusterRole may be created or changed by someone who holds every permission it
  grants (in the role's namespace, or cluster-wide), or who may `escalate` it.
- A RoleBinding or ClusterRoleBinding may be written by someone who holds every permission of
  the role it binds, or who may `bind` that role.
- `system:masters` may do either.

This sits in the registry's admission chain (`validate`, on the object about to be stored) so
every path that writes these kinds (create, update, patch, apply, dry run) goes through it.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.authz import Attributes, Authorizer
from services.apiserver.authz.rbac import RBACAuthorizer
from services.apiserver.authz.rules import compact, compact_string, missing_rules
from services.apiserver.registry.interfaces import AdmissionRequest, UserInfo

MASTERS = "system:masters"
ROLES = (R.ROLES, R.CLUSTERROLES)
BINDINGS = (R.ROLEBINDINGS, R.CLUSTERROLEBINDINGS)


def _forbidden(req: AdmissionRequest, message: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{req.rt.group_resource} "{req.name}" is forbidden: {message}',
                    {"name": req.name, "group": req.rt.group, "kind": req.rt.plural})


def _go_strings(values: tuple[str, ...]) -> str:
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def escalation_message(user: UserInfo, missing: list[dict[str, list[str]]], errors: list[str]) -> str:
    """kube's ConfirmNoEscalation error."""
    lines = sorted({compact_string(r) for r in compact(missing)})
    msg = (f'user "{user.name}" (groups={_go_strings(user.groups)}) is attempting to grant RBAC '
           "permissions not currently held:\n" + "\n".join(lines))
    if errors:
        msg += "; resolution errors: [" + ", ".join(errors) + "]"
    return msg


def only_gc_fields(req: AdmissionRequest) -> bool:
    """An update that changes only owner references and finalizers (the garbage collector's
    work) grants nothing new (kube's IsOnlyMutatingGCFields)."""
    if req.operation != "UPDATE" or req.old is None or req.obj is None:
        return False
    old = copy.deepcopy(req.old)
    new_meta = req.obj.get("metadata") or {}
    for key in ("ownerReferences", "finalizers", "resourceVersion", "managedFields"):
        old["metadata"].pop(key, None)
        if key in new_meta:
            old["metadata"][key] = new_meta[key]
    return bool(old == req.obj)


class EscalationCheck:
    """An admission plugin for the four RBAC kinds; `authorizer` is the whole chain (for
    `escalate` and `bind`), `rbac` the rules a user holds."""

    def __init__(self, authorizer: Authorizer, rbac: RBACAuthorizer) -> None:
        self.authorizer = authorizer
        self.rbac = rbac

    async def mutate(self, req: AdmissionRequest) -> None:
        return None

    async def validate(self, req: AdmissionRequest) -> None:
        if req.operation not in ("CREATE", "UPDATE") or req.obj is None:
            return
        if req.rt not in ROLES and req.rt not in BINDINGS:
            return
        if MASTERS in req.user.groups or only_gc_fields(req):
            return
        namespace = (req.namespace or "") if req.rt.namespaced else ""
        if req.rt in ROLES:
            if self._may(req, "escalate", req.rt.plural, req.name, namespace):
                return
            self._confirm_held(req, req.obj.get("rules") or [], namespace)
            return
        ref = req.obj.get("roleRef") or {}
        role_resource = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        if self._may(req, "bind", role_resource, ref.get("name") or "", namespace):
            return
        rules, error = self.rbac.policy().rules_of_ref(ref, namespace)
        if error is not None:
            raise _forbidden(req, error)
        self._confirm_held(req, [r.source for r in rules], namespace)

    def _may(self, req: AdmissionRequest, verb: str, resource: str, name: str, namespace: str) -> bool:
        attrs = Attributes(user=req.user, verb=verb, namespace=namespace, api_group=req.rt.group,
                           api_version="*", resource=resource, name=name)
        return self.authorizer.authorize(attrs).allowed

    def _confirm_held(self, req: AdmissionRequest, wanted: list[Any], namespace: str) -> None:
        held, errors = self.rbac.rules_for(req.user, namespace)
        missing = missing_rules(held, [r for r in wanted if isinstance(r, dict)])
        if missing:
            raise _forbidden(req, escalation_message(req.user, missing, errors))
