"""POST serviceaccounts/<name>/token: a TokenRequest (authentication.k8s.io/v1) answered with a
signed token, as kube's TokenREST (pkg/registry/core/serviceaccount/storage/token.go).

The request names audiences (default: the API server's), a lifetime (default 3600 s, at least
600) and optionally the object the token is bound to: a Pod (which must run as this
ServiceAccount; its node goes into the token too), a Secret or a Node, each read live and
checked against the uid the request gives. Nothing is stored: the token lives as long as its
claims and the objects they name. As kube-apiserver does by default
(--service-account-extend-token-expiration), a pod-bound token of exactly 3607 s for the API
server's own audiences is valid for a year and says `warnafter` at 3607 s, so a node that
falls behind refreshing it does not break the pod; the status still says 3607 s.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, Cause, bad_request, conflict, invalid
from kubecore.api.types import Obj
from services.apiserver.authn.tokens import Bound, Ref, Signer, claims
from services.apiserver.registry.interfaces import ObjectStorage
from services.apiserver.registry.meta import format_rfc3339

GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
WARN_ONLY_EXPIRATION_SECONDS = 3607  # kube's token.WarnOnlyBoundTokenExpirationSeconds
EXTENDED_EXPIRATION_SECONDS = 365 * 24 * 3600  # token.ExpirationExtensionSeconds


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audiences: tuple[str, ...]
    max_expiration_seconds: int = 0  # --service-account-max-token-expiration; 0: none
    extend_expiration: bool = True  # --service-account-extend-token-expiration


def _int_field(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                          f"{path}: expected an integer")
    return value


def _map(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def check_names(body: Obj, name: str, namespace: str) -> None:
    """The body's name and namespace, if given, are the URL's (422)."""
    meta = _map(body.get("metadata"))
    if meta.get("name") and meta["name"] != name:
        raise invalid("TokenRequest", name, [Cause("metadata.name", f'Invalid value: "{meta["name"]}": '
                                                   "must match the service account name if specified")], GROUP)
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise invalid("TokenRequest", name, [Cause("metadata.namespace", f'Invalid value: "{meta["namespace"]}": '
                                                   "must match the service account namespace if specified")],
                      GROUP)


def read_request(body: Obj, name: str, namespace: str, settings: TokenSettings) -> Obj:
    """The TokenRequest with its defaults, checked as ValidateTokenRequest checks it (400/422)."""
    if body.get("kind") not in (None, "TokenRequest") or body.get("apiVersion") not in (None, API_VERSION):
        raise bad_request(f'the body must be a TokenRequest ({API_VERSION}), not '
                          f'{body.get("apiVersion")}/{body.get("kind")}')
    req = copy.deepcopy(body)
    for part in ("metadata", "spec"):
        if req.get(part) is not None and not isinstance(req[part], dict):
            raise bad_request(f'TokenRequest in version "v1" cannot be handled as a TokenRequest: '
                              f"{part}: expected an object")
    meta, spec = _map(req.get("metadata")), _map(req.get("spec"))
    auds = spec.get("audiences")
    if auds is not None and (not isinstance(auds, list) or not all(isinstance(a, str) for a in auds)):
        raise bad_request("spec.audiences must be a list of strings")
    seconds = _int_field(spec.get("expirationSeconds"), "spec.expirationSeconds")
    spec["audiences"] = list(auds or settings.audiences)
    spec["expirationSeconds"] = DEFAULT_EXPIRATION_SECONDS if seconds is None else seconds
    ref = spec.get("boundObjectRef")
    if ref is not None and not isinstance(ref, dict):
        raise bad_request("spec.boundObjectRef must be an object")
    causes = _validation_causes(spec["expirationSeconds"])
    if causes:
        raise invalid("TokenRequest", "", causes, GROUP)
    return {"kind": "TokenRequest", "apiVersion": API_VERSION,
            "metadata": {**meta, "name": name, "namespace": namespace}, "spec": spec, "status": {}}


def _validation_causes(seconds: int) -> list[Cause]:
    """ValidateTokenRequest."""
    if seconds < MIN_EXPIRATION_SECONDS:
        return [Cause("spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a "
                      "duration less than 10 minutes")]
    if seconds > MAX_EXPIRATION_SECONDS:
        return [Cause("spec.expirationSeconds", f"Too long: must have at most {MAX_EXPIRATION_SECONDS} "
                      "bytes", "FieldValueTooLong")]
    return []


def _group_of(api_version: Any) -> tuple[str, str]:
    text = api_version if isinstance(api_version, str) else ""
    if "/" in text:
        group, version = text.split("/", 1)
        return group, version
    return "", text


async def bound_objects(storage: ObjectStorage, sa_name: str, namespace: str, ref: Obj | None) -> Bound:
    """What the token is bound to, read live; 400 for a kind that cannot be bound, 404 for a
    missing object, 409 when its uid is not the one asked for."""
    if ref is None:
        return Bound()
    group, version = _group_of(ref.get("apiVersion"))
    kind, name = ref.get("kind"), ref.get("name")
    if not isinstance(name, str):
        raise bad_request("spec.boundObjectRef.name must be a string")
    bound, uid = await _bound_of_kind(storage, sa_name, namespace, (group, version, kind), name)
    if ref.get("uid") and ref["uid"] != uid:
        raise conflict(str(kind), name, f"the UID in the bound object reference ({ref['uid']}) does "
                       "not match the UID in record. The object might have been deleted and then "
                       "recreated")
    return bound


async def _bound_of_kind(storage: ObjectStorage, sa_name: str, namespace: str,
                         gvk: tuple[str, str, Any], name: str) -> tuple[Bound, str]:
    group, version, kind = gvk
    secrets = R.by_path("", "v1", "secrets")
    if group == "" and kind == "Pod":
        pod = await storage.get(R.PODS, namespace, name)
        if (pod.get("spec") or {}).get("serviceAccountName") != sa_name:
            raise bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                              "different serviceaccount name.")
        uid = pod["metadata"]["uid"]
        return Bound(pod=Ref(name, uid), node=await _node_of(storage, pod)), uid
    if group == "" and kind == "Node":
        node = await storage.get(R.NODES, None, name)
        uid = node["metadata"]["uid"]
        return Bound(node=Ref(name, uid)), uid
    if group == "" and kind == "Secret" and secrets is not None:
        secret = await storage.get(secrets, namespace, name)
        uid = secret["metadata"]["uid"]
        return Bound(secret=Ref(name, uid)), uid
    raise bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")


async def _node_of(storage: ObjectStorage, pod: Obj) -> Ref | None:
    """The pod's node, by name even when the Node object is gone (kube then leaves the uid out)."""
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        return None
    try:
        node = await storage.get(R.NODES, None, node_name)
    except ApiError as exc:
        if exc.code != 404:
            raise
        return Ref(node_name, "")
    return Ref(node_name, node["metadata"].get("uid", ""))


def lifetimes(req: Obj, bound: Bound, settings: TokenSettings) -> tuple[int, int, int, list[str]]:
    """-> (seconds asked, after shortening; seconds the token is valid; warnafter; warnings)."""
    asked: int = req["spec"]["expirationSeconds"]
    warnings = []
    if settings.max_expiration_seconds > 0 and asked > settings.max_expiration_seconds:
        warnings.append(f"requested expiration of {asked} seconds shortened to "
                        f"{settings.max_expiration_seconds} seconds")
        asked = settings.max_expiration_seconds
    if (settings.extend_expiration and bound.pod is not None and asked == WARN_ONLY_EXPIRATION_SECONDS
            and set(req["spec"]["audiences"]) <= set(settings.audiences)):
        return asked, EXTENDED_EXPIRATION_SECONDS, asked, warnings
    return asked, asked, 0, warnings


def issue(req: Obj, sa: Obj, bound: Bound, signer: Signer, settings: TokenSettings,
          *, now: float | None = None) -> tuple[Obj, list[str]]:
    """The answered TokenRequest (status.token, status.expirationTimestamp), and warnings."""
    issued = time.time() if now is None else now
    asked, valid_for, warn_after, warnings = lifetimes(req, bound, settings)
    meta = sa["metadata"]
    token = signer.sign(claims(issuer=settings.issuer, namespace=meta["namespace"],
                               sa=Ref(meta["name"], meta.get("uid", "")), bound=bound,
                               audiences=req["spec"]["audiences"], expiration_seconds=valid_for,
                               warn_after=warn_after, now=issued))
    out = copy.deepcopy(req)
    out["metadata"]["creationTimestamp"] = format_rfc3339(_utc(issued))
    out["spec"]["expirationSeconds"] = asked
    out["status"] = {"token": token, "expirationTimestamp": format_rfc3339(_utc(int(issued) + asked))}
    return out, warnings


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


Admit = Callable[[Obj], Awaitable[None]]


async def create_token(storage: ObjectStorage, signer: Signer, settings: TokenSettings, *,
                       namespace: str, name: str, body: Obj, admit: Admit | None = None
                       ) -> tuple[Obj, list[str]]:
    """The whole of TokenREST.Create, in its order: names, the ServiceAccount (404), defaults and
    validation, admission (`admit`), the bound object; -> (the TokenRequest answered, warnings)."""
    check_names(body, name, namespace)
    sa = await storage.get(R.SERVICEACCOUNTS, namespace, name)
    req = read_request(body, name, namespace, settings)
    if admit is not None:
        await admit(copy.deepcopy(req))
    bound = await bound_objects(storage, name, namespace, req["spec"].get("boundObjectRef"))
    return issue(req, sa, bound, signer, settings)
