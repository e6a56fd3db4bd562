"""The ServiceAccount token authenticator (kube's JWTTokenAuthenticator with the bound-token
validator of pkg/serviceaccount/claims.go).

A bearer token whose unverified `iss` is not one of this server's issuers is left to the other
authenticators. One of ours must hold: signature (any of the verification keys), issuer,
audience against the API server's audiences, exp/nbf/iat with a minute's leeway, and then the
objects it names must still be there: the ServiceAccount with the same uid, and the pod or
secret (or node) it is bound to with the uid it was issued for, none deleted more than the
leeway ago. Objects are read from the watch caches, with a read of storage when the cache
does not have one yet (a pod created a moment ago), as kube's getters fall back to the client.

The user is kube's ServiceAccountInfo.UserInfo(): `system:serviceaccount:<ns>:<name>` with the
ServiceAccount's uid, groups system:serviceaccounts and system:serviceaccounts:<ns> (and
system:authenticated, which kube's filter adds to everyone authenticated), and the extra
pod-name/pod-uid, node-name/node-uid and credential-id (`JTI=<jti>`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubecore.api import resources as R
from kubecore.api.types import Obj
from services.apiserver.authn import Credentials, Unauthenticated
from services.apiserver.authn.tokens import LEEWAY_SECONDS, InvalidToken, Verifier, username
from services.apiserver.registry.interfaces import UserInfo
from services.apiserver.registry.lookup import ObjectGetter

log = logging.getLogger("apiserver.authn")

EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
INVALIDATED = "service account token has been invalidated"


def service_account_user(namespace: str, name: str, uid: str, *, pod: tuple[str, str] | None,
                         node: tuple[str, str] | None, jti: str) -> UserInfo:
    extra: list[tuple[str, tuple[str, ...]]] = []
    if pod is not None and pod[0] and pod[1]:
        extra += [(EXTRA_POD_NAME, (pod[0],)), (EXTRA_POD_UID, (pod[1],))]
    if jti:
        extra.append((EXTRA_CREDENTIAL_ID, (f"JTI={jti}",)))
    if node is not None and node[0]:
        extra.append((EXTRA_NODE_NAME, (node[0],)))
        if node[1]:
            extra.append((EXTRA_NODE_UID, (node[1],)))
    return UserInfo(username(namespace, name), uid,
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                     "system:authenticated"), tuple(extra))


def _deleted_before(obj: Obj, cutoff: float) -> bool:
    ts = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not isinstance(ts, str):
        return False
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() < cutoff
    except ValueError:
        return False


def _ref(private: Mapping[str, Any], key: str) -> tuple[str, str] | None:
    ref = private.get(key)
    if not isinstance(ref, dict):
        return None
    name, uid = ref.get("name", ""), ref.get("uid", "")
    return (name if isinstance(name, str) else "", uid if isinstance(uid, str) else "")


class ServiceAccountTokens:
    """The `Authenticator` for ServiceAccount tokens."""

    def __init__(self, verifier: Verifier, getter: ObjectGetter) -> None:
        self.verifier, self.getter = verifier, getter

    async def authenticate(self, creds: Credentials) -> UserInfo | None:
        token = creds.bearer
        if token is None or not self.verifier.ours(token):
            return None
        try:
            return await self.validate(token, now=time.time())
        except InvalidToken as exc:
            log.info("service account token refused: %s", exc)
            raise Unauthenticated(str(exc)) from None

    async def validate(self, token: str, *, now: float) -> UserInfo:
        """kube's validator.Validate after the signature: the objects named must still be there."""
        public = self.verifier.verify(token, now=now)
        private = public.get("kubernetes.io")
        if not isinstance(private, dict):
            raise InvalidToken("service account token claims could not be validated")
        namespace = private.get("namespace")
        sa = _ref(private, "serviceaccount")
        if not isinstance(namespace, str) or not namespace or sa is None or not sa[0]:
            raise InvalidToken("service account token claims could not be validated")
        cutoff = now - LEEWAY_SECONDS
        await self._check_service_account(namespace, sa, cutoff)
        pod, secret, node = (_ref(private, k) for k in ("pod", "secret", "node"))
        if secret is not None:
            await self._check_bound(_secrets(), namespace, secret, cutoff, "secret", "secret ref")
        if pod is not None:
            await self._check_bound(R.PODS, namespace, pod, cutoff, "pod", "pod ref")
        elif node is not None:
            await self._check_bound(R.NODES, None, node, cutoff, "node", "node ref")
        jti = public.get("jti")
        return service_account_user(namespace, sa[0], sa[1], pod=pod, node=node,
                                    jti=jti if isinstance(jti, str) else "")

    async def _check_service_account(self, namespace: str, sa: tuple[str, str], cutoff: float) -> None:
        obj = await self.getter.get(R.SERVICEACCOUNTS, namespace, sa[0])
        if obj is None:
            raise InvalidToken(f'serviceaccounts "{sa[0]}" not found')
        if _deleted_before(obj, cutoff):
            raise InvalidToken(f"service account {namespace}/{sa[0]} has been deleted")
        uid = obj["metadata"].get("uid", "")
        if uid != sa[1]:
            raise InvalidToken(f"service account UID ({uid}) does not match claim ({sa[1]})")

    async def _check_bound(self, rt: R.ResourceType | None, namespace: str | None,
                           ref: tuple[str, str], cutoff: float, what: str, claim: str) -> None:
        obj = await self.getter.get(rt, namespace, ref[0]) if rt is not None else None
        if obj is None or _deleted_before(obj, cutoff):
            raise InvalidToken(INVALIDATED)
        uid = obj["metadata"].get("uid", "")
        if uid != ref[1]:
            raise InvalidToken(f"{what} UID ({uid}) does not match service account {claim} "
                               f"claim ({ref[1]})")


def _secrets() -> R.ResourceType | None:
    """Secrets, where this server serves them."""
    return R.by_path("", "v1", "secrets")
