"""The ServiceAccount key pair from the API server's flags: the signing key
(--service-account-signing-key-file) and the verification keys (--service-account-key-file,
which default to the signing key's public half, as kube-apiserver's do). A server started
without a signing key makes one up and says so: its tokens are valid only until it stops."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from services.apiserver.authn.oidc import default_jwks_uri
from services.apiserver.authn.tokenrequest import TokenSettings
from services.apiserver.authn.tokens import (
    PublicKey,
    Signer,
    Verifier,
    generate_key,
    load_private_key,
    load_public_keys,
)
from services.apiserver.settings import Settings

log = logging.getLogger("apiserver.authn")


@dataclass(frozen=True)
class ServiceAccountIssuer:
    """What issuing and checking ServiceAccount tokens takes."""

    signer: Signer
    public_keys: tuple[PublicKey, ...]
    token_settings: TokenSettings
    jwks_uri: str

    def verifier(self) -> Verifier:
        return Verifier(list(self.public_keys), issuers=[self.token_settings.issuer],
                        audiences=list(self.token_settings.audiences))


def load_issuer(settings: Settings, *, external_address: str) -> ServiceAccountIssuer:
    if settings.service_account_signing_key_file:
        key = load_private_key(Path(settings.service_account_signing_key_file).read_bytes())
    else:
        log.warning("no --service-account-signing-key-file: signing ServiceAccount tokens with a "
                    "key made for this process only")
        key = generate_key()
    public: list[PublicKey] = [key.public_key()]
    if settings.service_account_key_file:
        public = load_public_keys(Path(settings.service_account_key_file).read_bytes())
    audiences = tuple(settings.api_audiences or [settings.service_account_issuer])
    return ServiceAccountIssuer(
        signer=Signer(key), public_keys=tuple(public),
        token_settings=TokenSettings(issuer=settings.service_account_issuer, audiences=audiences,
                                     max_expiration_seconds=int(settings.service_account_max_token_expiration),
                                     extend_expiration=settings.service_account_extend_token_expiration),
        jwks_uri=settings.service_account_jwks_uri or default_jwks_uri(external_address))
