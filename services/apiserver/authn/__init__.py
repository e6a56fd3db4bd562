"""Authentication: who a request comes from (kube-apiserver's `authenticator.Request` chain).

Each authenticator looks at the request's credentials (`Credentials`: the client certificate
TLS verified, the bearer token) and answers a `UserInfo`, None when the request carries no
credentials of its kind, or raises `Unauthenticated` when it carries some that are not valid.
`Chain` asks them in order; a request with no valid credentials is anonymous only on the paths
kube-apiserver leaves open (health and version), and 401 everywhere else.

ServiceAccount tokens: `tokens` (the key, kube's claims, signing and checking a JWT, no I/O),
`serviceaccount` (the authenticator: the objects a token names must still be there),
`tokenrequest` (POST serviceaccounts/<name>/token), `keys` (the key pair from the flags) and
`oidc` (the issuer's discovery documents).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from services.apiserver.registry.interfaces import UserInfo

ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))
# Paths kube-apiserver's system:public-info-viewer role opens to unauthenticated callers.
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})


class Unauthenticated(Exception):
    """Credentials were presented and are not valid (an expired token, a bad signature)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presents: the peer certificate TLS verified against the client CA (as
    `ssl.SSLSocket.getpeercert()` gives it, or None), and the bearer token of its
    Authorization header (or None)."""

    peer_cert: dict[str, Any] | None
    bearer: str | None
    path: str


class Authenticator(Protocol):
    async def authenticate(self, creds: Credentials) -> UserInfo | None: ...


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or any(path.startswith(p + "/") for p in ("/healthz", "/livez", "/readyz"))


class Chain:
    """The authenticators in order; the first that knows the request answers. An invalid
    credential is 401 even if a later authenticator would have found nothing."""

    def __init__(self, authenticators: list[Authenticator], *, anonymous: bool = True) -> None:
        self.authenticators = authenticators
        self.anonymous = anonymous

    async def authenticate(self, creds: Credentials) -> UserInfo | None:
        """-> the user, or None for 401."""
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(creds)
            except Unauthenticated:
                return None
            if user is not None:
                return user
        if self.anonymous and creds.bearer is None and is_public(creds.path):
            return ANONYMOUS
        return None
