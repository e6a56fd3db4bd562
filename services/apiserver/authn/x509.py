"""Client certificates (kube-apiserver's x509 authenticator, `--client-ca-file`).

TLS has already verified the certificate against the client CA (the server's SSL context
asks for one and checks it), so what is left is reading it as kube does: the Common Name is
the user, each Organization a group. Every authenticated user is also in
`system:authenticated`.
"""
from __future__ import annotations

from kubecore.client.x509 import subject_of
from services.apiserver.authn import Credentials, Unauthenticated
from services.apiserver.registry.interfaces import UserInfo

AUTHENTICATED = "system:authenticated"


def with_authenticated(groups: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*groups, AUTHENTICATED]))


class ClientCertificates:
    async def authenticate(self, creds: Credentials) -> UserInfo | None:
        if not creds.peer_cert:
            return None
        cn, orgs = subject_of(creds.peer_cert)
        if not cn:
            raise Unauthenticated("the client certificate has no common name")
        return UserInfo(cn, groups=with_authenticated(orgs))
