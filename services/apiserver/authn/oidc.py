"""The ServiceAccount issuer's discovery documents, as kube-apiserver serves them
(pkg/serviceaccount/openidmetadata.go): `/.well-known/openid-configuration` and the key set at
`/openid/v1/jwks`, so anyone holding a token can check it without asking this server (an
OIDC relying party, another cluster). Both are JSON with `Cache-Control: public, max-age=3600`;
the keys are the verification keys, each with kube's key id.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.apiserver.authn.tokens import PublicKey, algorithm_of, key_id

CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
CACHE_CONTROL = "public, max-age=3600"
JWKS_CONTENT_TYPE = "application/jwk-set+json"
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def default_jwks_uri(external_address: str) -> str:
    return f"https://{external_address}{JWKS_PATH}"


def openid_configuration(issuer: str, jwks_uri: str, keys: Sequence[PublicKey]) -> bytes:
    doc = {"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["id_token"],
           "subject_types_supported": ["public"],
           "id_token_signing_alg_values_supported": sorted({algorithm_of(k) for k in keys})}
    return json.dumps(doc, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n: int, size: int | None = None) -> bytes:
    length = size if size is not None else max(1, (n.bit_length() + 7) // 8)
    return n.to_bytes(length, "big")


def jwk(key: PublicKey) -> dict[str, Any]:
    """One key as go-jose's JSONWebKey marshals it (its field order: use, kty, kid, crv, alg,
    then the numbers)."""
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return {"use": "sig", "kty": "RSA", "kid": key_id(key), "alg": algorithm_of(key),
                "n": _b64(_int_bytes(nums.n)), "e": _b64(_int_bytes(nums.e))}
    assert isinstance(key, ec.EllipticCurvePublicKey)
    size = (key.curve.key_size + 7) // 8
    point = key.public_numbers()
    return {"use": "sig", "kty": "EC", "kid": key_id(key), "crv": _CURVES[key.curve.name],
            "alg": algorithm_of(key), "x": _b64(_int_bytes(point.x, size)),
            "y": _b64(_int_bytes(point.y, size))}


def jwks(keys: Sequence[PublicKey]) -> bytes:
    return json.dumps({"keys": [jwk(k) for k in keys]}, separators=(",", ":")).encode()
