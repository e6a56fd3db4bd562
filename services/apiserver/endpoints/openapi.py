"""OpenAPI documents just big enough for kubectl: operations, no schemas.

kubectl (1.27+) reads `/openapi/v3` before it creates or applies anything: when the
PATCH operation of a kind lists the `fieldValidation` query parameter, kubectl skips
its client-side schema check and leaves validation to the server (`registry/validation.py`).
Without any OpenAPI document it refuses to send the object at all.

The PATCH operations deliberately do not list `application/strategic-merge-patch+json`
in their request bodies: kubectl then computes `apply` patches from its compiled-in
Kubernetes types (the real merge keys) instead of from schemas this server lacks.
It still sends strategic merge patches, which the server understands.

`/openapi/v2` is served as kube-openapi's handler serves it: JSON, or gnostic's protobuf
(`openapiproto.py`) for client-go, which asks only for that and which kubectl up to 1.28
needs before it applies anything; the form chosen by the Accept header's clauses in
goautoneg's order, an ETag (the SHA-512 of the JSON) for both, 304 for a client that has
it, and a bare 406 when no clause matches.
"""
from __future__ import annotations

import hashlib
import json
from functools import cache

from kubecore.api import resources as R
from kubecore.api.types import Obj
from services.apiserver.endpoints import openapiproto
from services.apiserver.endpoints.discovery import VERSION_INFO

PATCH_BODY_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                    "application/apply-patch+yaml")
_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _gvk(rt: R.ResourceType) -> Obj:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _resource_paths(rt: R.ResourceType) -> tuple[str, str]:
    base = "/" + _gv_path(rt.group, rt.version)
    if rt.namespaced:
        coll = f"{base}/namespaces/{{namespace}}/{rt.plural}"
    else:
        coll = f"{base}/{rt.plural}"
    return coll, coll + "/{name}"


def _operation(rt: R.ResourceType, verb: str, action: str, *, v3: bool) -> Obj:
    op_id = f"{verb}{rt.group.split('.')[0].capitalize() or 'Core'}{rt.version.capitalize()}" \
            f"{'Namespaced' if rt.namespaced else ''}{rt.kind}"
    params: list[Obj] = []
    for name in _QUERY_PARAMS:
        p: Obj = {"name": name, "in": "query", "uniqueItems": True}
        if v3:
            p["schema"] = {"type": "boolean" if name == "force" else "string"}
        else:
            p["type"] = "boolean" if name == "force" else "string"
        params.append(p)
    op: Obj = {"operationId": op_id, "tags": [_gv_path(rt.group, rt.version)],
               "parameters": params,
               "responses": {"200": {"description": "OK"}},
               "x-kubernetes-action": action,
               "x-kubernetes-group-version-kind": _gvk(rt)}
    if verb == "patch":
        if v3:
            op["requestBody"] = {"content": {t: {"schema": {"type": "object"}}
                                             for t in PATCH_BODY_TYPES}, "required": True}
        else:
            op["consumes"] = list(PATCH_BODY_TYPES)
    return op


def _path_param(name: str, description: str, *, v3: bool) -> Obj:
    p: Obj = {"name": name, "in": "path", "required": True, "description": description}
    if v3:
        p["schema"] = {"type": "string", "uniqueItems": True}
    else:
        p.update(type="string", uniqueItems=True)
    return p


def _path_params(rt: R.ResourceType, *, named: bool, v3: bool) -> list[Obj]:
    """The `{name}` and `{namespace}` of a path, declared once for all its operations (on
    the path item, where kube-apiserver's published specs put them): OpenAPI requires every
    templated segment to be declared, and clients generated from the document need them."""
    params = []
    if named:
        params.append(_path_param("name", f"name of the {rt.kind}", v3=v3))
    if rt.namespaced:
        params.append(_path_param("namespace", "object name and auth scope, such as for teams "
                                  "and projects", v3=v3))
    return params


def _paths(rts: list[R.ResourceType], *, v3: bool) -> Obj:
    paths: Obj = {}
    for rt in rts:
        coll, item = _resource_paths(rt)
        paths[coll] = {"get": _operation(rt, "list", "list", v3=v3),
                       "post": _operation(rt, "create", "post", v3=v3)}
        paths[item] = {"get": _operation(rt, "read", "get", v3=v3),
                       "put": _operation(rt, "replace", "put", v3=v3),
                       "patch": _operation(rt, "patch", "patch", v3=v3),
                       "delete": _operation(rt, "delete", "delete", v3=v3),
                       "parameters": _path_params(rt, named=True, v3=v3)}
        if rt.namespaced:
            paths[coll]["parameters"] = _path_params(rt, named=False, v3=v3)
    return paths


def _info() -> Obj:
    return {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]}


def _group_versions() -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for rt in R.ALL:
        if (rt.group, rt.version) not in seen:
            seen.append((rt.group, rt.version))
    return seen


@cache
def v3_group_version(group: str, version: str) -> bytes:
    rts = [rt for rt in R.ALL if rt.group == group and rt.version == version]
    doc = {"openapi": "3.0.0", "info": _info(), "paths": _paths(rts, v3=True),
           "components": {"schemas": {}}}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def v3_hash(group: str, version: str) -> str:
    return hashlib.sha512(v3_group_version(group, version)).hexdigest().upper()[:128]


@cache
def v3_root() -> bytes:
    paths = {_gv_path(g, v): {"serverRelativeURL": v3_url(_gv_path(g, v), v3_hash(g, v))}
             for g, v in _group_versions()}
    return json.dumps({"paths": paths}, separators=(",", ":"), sort_keys=True).encode()


def v3_lookup(path: str) -> tuple[bytes, str] | None:
    """The document for `api/v1` or `apis/<group>/<version>` and its hash, or None."""
    for g, v in _group_versions():
        if _gv_path(g, v) == path:
            return v3_group_version(g, v), v3_hash(g, v)
    return None


def v3_url(path: str, digest: str) -> str:
    """A group version's document with its hash, as the /openapi/v3 index names it."""
    return f"/openapi/v3/{path}?hash={digest}"


def etag(body: bytes) -> str:
    """kube-openapi's ETag of a document: its SHA-512 in upper-case hex, quoted."""
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


def _v2_document() -> Obj:
    return {"swagger": "2.0", "info": _info(), "paths": _paths(list(R.ALL), v3=False),
            "definitions": {}}


@cache
def v2() -> bytes:
    return json.dumps(_v2_document(), separators=(",", ":"), sort_keys=True).encode()


@cache
def v2_protobuf() -> bytes:
    return openapiproto.document(_v2_document())


@cache
def v2_etag() -> str:
    """The JSON document's ETag; the protobuf form has the same one."""
    return etag(v2())


V2_JSON = "application/json"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# (subtype, what is served, its content type), in kube-openapi's order of preference.
_V2_FORMS = (("json", v2, V2_JSON),
             ("com.github.proto-openapi.spec.v2@v1.0+protobuf", v2_protobuf, V2_PROTOBUF),
             ("com.github.proto-openapi.spec.v2.v1.0+protobuf", v2_protobuf, V2_PROTOBUF))


def _accept_clauses(accept: str) -> list[tuple[str, str]]:
    """(type, subtype) of each clause, ordered as goautoneg.ParseAccept orders them:
    higher q first, then concrete types before wildcards."""
    clauses: list[tuple[float, int, str, str]] = []
    for part in (accept or "*/*").split(","):
        fields = [f.strip() for f in part.split(";")]
        kind, _, sub = fields[0].partition("/")
        q = 1.0
        for f in fields[1:]:
            name, _, value = f.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        wildcards = (kind == "*") + (sub == "*")
        clauses.append((-q, wildcards, kind, sub or "*"))
    return [(kind, sub) for _, _, kind, sub in sorted(clauses, key=lambda c: (c[0], c[1]))]


def v2_negotiate(accept: str) -> tuple[bytes, str] | None:
    """The v2 document's body and content type for an Accept header, or None (a 406)."""
    for kind, sub in _accept_clauses(accept):
        for subtype, body, content_type in _V2_FORMS:
            if kind in ("application", "*") and sub in (subtype, "*"):
                return body(), content_type
    return None


def v3_acceptable(accept: str) -> bool:
    """Whether the Accept header takes the JSON form of a v3 document (the only one here;
    kube-openapi's handler also offers protobuf, which no client asks for first)."""
    return any(kind in ("application", "*") and sub in ("json", "*")
               for kind, sub in _accept_clauses(accept))
