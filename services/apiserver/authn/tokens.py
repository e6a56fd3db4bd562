"""ServiceAccount tokens as JWTs, without I/O: the signing key, the claims, signing and checking
a signature (kube's pkg/serviceaccount: jwt.go and claims.go).

The cluster's key pair is what `cluster/pki.py` writes (ECDSA P-256, so ES256), but any PEM
private key works and picks its algorithm as kube's signer does: RSA -> RS256, ECDSA by curve
-> ES256/ES384/ES512. The key id (`kid`) is kube's: the unpadded base64url SHA-256 of the public
key's DER (PKIX) form, so the JWKS this server publishes names the keys tokens carry.

The claims are exactly kube's: `iss`, `sub` (system:serviceaccount:<ns>:<name>), `aud`, `exp`,
`iat`, `nbf`, `jti`, and the private `kubernetes.io` claim naming the namespace, the
ServiceAccount and the object the token is bound to (pod and its node, secret, or node), plus
`warnafter` for the projected tokens whose life is extended.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# go-jose's jwt.DefaultLeeway: exp, nbf and iat are checked with a minute's slack either way
LEEWAY_SECONDS = 60
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class KeyFileError(ValueError):
    """A key file holds nothing this server can sign or verify with."""


class InvalidToken(Exception):
    """A token of this issuer that does not hold (signature, times, audience); kube's message."""


def algorithm_of(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    name = key.curve.name
    if name not in _EC_ALGORITHMS:
        raise KeyFileError(f"unsupported elliptic curve {name}")
    return _EC_ALGORITHMS[name]


def key_id(public: PublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def load_private_key(pem: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"no usable private key: {exc}") from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise KeyFileError("the signing key must be an RSA or ECDSA private key")
    algorithm_of(key)
    return key


def load_public_keys(pem: bytes) -> list[PublicKey]:
    """Every public key in a PEM file (kube's keyutil.ParsePublicKeysPEM): public keys, and the
    public half of private keys."""
    out: list[PublicKey] = []
    for block in _pem_blocks(pem):
        key: Any
        if b"PRIVATE KEY" in block.split(b"\n", 1)[0]:
            key = load_private_key(block).public_key()
        elif b"PUBLIC KEY" in block.split(b"\n", 1)[0]:
            key = serialization.load_pem_public_key(block)
        else:
            continue
        if isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
            algorithm_of(key)
            out.append(key)
    if not out:
        raise KeyFileError("no public key found")
    return out


def _pem_blocks(pem: bytes) -> list[bytes]:
    blocks, current = [], []
    for line in pem.splitlines():
        if line.startswith(b"-----BEGIN "):
            current = [line]
        elif line.startswith(b"-----END ") and current:
            current.append(line)
            blocks.append(b"\n".join(current) + b"\n")
            current = []
        elif current:
            current.append(line)
    return blocks


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key, for a server started without key files (tokens die with it)."""
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True, slots=True)
class Ref:
    name: str
    uid: str

    def claim(self) -> dict[str, str]:
        return {k: v for k, v in (("name", self.name), ("uid", self.uid)) if v}


@dataclass(frozen=True, slots=True)
class Bound:
    """What a token is bound to: a pod (and the node it runs on), a secret, or a node."""

    pod: Ref | None = None
    secret: Ref | None = None
    node: Ref | None = None


def username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def claims(*, issuer: str, namespace: str, sa: Ref, bound: Bound, audiences: list[str],
           expiration_seconds: int, warn_after: int = 0, now: float | None = None) -> dict[str, Any]:
    """kube's serviceaccount.Claims, as the JSON go-jose signs (its keys in sorted order)."""
    issued = int(now if now is not None else time.time())
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": sa.claim()}
    if bound.pod is not None:
        private["pod"] = bound.pod.claim()
    elif bound.secret is not None:
        private["secret"] = bound.secret.claim()
    if bound.node is not None and bound.secret is None:
        private["node"] = bound.node.claim()
    if warn_after:
        private["warnafter"] = issued + warn_after
    out = {"aud": list(audiences), "exp": issued + expiration_seconds, "iat": issued,
           "iss": issuer, "jti": str(uuid.uuid4()),
           "kubernetes.io": dict(sorted(private.items())), "nbf": issued,
           "sub": username(namespace, sa.name)}
    return out


class Signer:
    """Signs claims with the cluster's private key (kube's JWTTokenGenerator)."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.algorithm = algorithm_of(key)
        self.kid = key_id(key.public_key())

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": self.algorithm, "kid": self.kid}
        payload = json.dumps(claims, separators=(",", ":")).encode()
        token: str = jwt.api_jws.encode(payload, self.key, algorithm=self.algorithm,
                                        headers={**header, "typ": None}, sort_headers=False)
        return token


def unverified_issuer(token: str) -> str | None:
    """The `iss` of something shaped like a JWT, unchecked; None for anything else (kube's
    hasCorrectIssuer: a token of another shape or issuer is for another authenticator)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    iss = payload.get("iss") if isinstance(payload, dict) else None
    return iss if isinstance(iss, str) else None


class Verifier:
    """Checks a token's signature against the public keys (any of them, as kube tries each),
    then its issuer, audience and times with kube's leeway; -> the claims."""

    def __init__(self, keys: list[PublicKey], *, issuers: list[str], audiences: list[str]) -> None:
        self.keys = [(k, algorithm_of(k)) for k in keys]
        self.issuers = set(issuers)
        self.audiences = list(audiences)

    def ours(self, token: str) -> bool:
        return unverified_issuer(token) in self.issuers

    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        payload = self._signed_payload(token)
        if payload.get("iss") not in self.issuers:
            raise InvalidToken(f'token issuer "{payload.get("iss")}" is invalid')
        self._check_audience(payload)
        self._check_times(payload, time.time() if now is None else now)
        return payload

    def _signed_payload(self, token: str) -> dict[str, Any]:
        errors = []
        for key, algorithm in self.keys:
            try:
                raw = jwt.api_jws.decode(token, key, algorithms=[algorithm])
            except jwt.InvalidTokenError as exc:
                errors.append(str(exc))
                continue
            try:
                payload = json.loads(raw)
            except ValueError:
                raise InvalidToken("token claims are not JSON") from None
            if not isinstance(payload, dict):
                raise InvalidToken("token claims are not a JSON object")
            return payload
        raise InvalidToken("invalid signature" if errors else "no key to verify the token with")

    def _check_audience(self, payload: dict[str, Any]) -> None:
        aud = payload.get("aud")
        token_auds = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
        if not token_auds:
            token_auds = list(self.audiences)  # a legacy token: the API server's own audiences
        if self.audiences and not set(token_auds) & set(self.audiences):
            raise InvalidToken(f"token audiences {_go_quote_list(token_auds)} is invalid for the "
                               f"target audiences {_go_quote_list(self.audiences)}")

    @staticmethod
    def _check_times(payload: dict[str, Any], now: float) -> None:
        """go-jose's Claims.ValidateWithLeeway, with kube's messages."""
        exp, nbf, iat = (_number(payload.get(k)) for k in ("exp", "nbf", "iat"))
        if exp is not None and now - LEEWAY_SECONDS > exp:
            raise InvalidToken("service account token has expired")
        if nbf is not None and now + LEEWAY_SECONDS < nbf:
            raise InvalidToken("service account token is not valid yet")
        if iat is not None and now + LEEWAY_SECONDS < iat:
            raise InvalidToken("service account token is issued in the future")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _go_quote_list(values: list[str]) -> str:
    """A []string as Go's %q prints it: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"
