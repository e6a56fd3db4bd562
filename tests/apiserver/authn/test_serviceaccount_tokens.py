"""ServiceAccount tokens: kube's claims, and the authenticator's verdict on tokens that are
good, expired, for another audience or issuer, badly signed, or bound to objects that are gone
or were re-created (a table over the objects the watch caches would hold)."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubecore.api import resources as R
from kubecore.api.types import Obj
from services.apiserver.authn import Credentials, Unauthenticated, oidc
from services.apiserver.authn import tokens as T
from services.apiserver.authn.serviceaccount import ServiceAccountTokens

ISSUER = T.DEFAULT_ISSUER
NOW = 1_800_000_000.0
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def obj(name: str, uid: str, namespace: str | None = "ns", deleted: str | None = None) -> Obj:
    meta: Obj = {"name": name, "uid": uid}
    if namespace:
        meta["namespace"] = namespace
    if deleted:
        meta["deletionTimestamp"] = deleted
    return {"metadata": meta}


@dataclass
class Objects:
    """What the watch caches would hold: (plural, namespace, name) -> object."""

    items: dict[tuple[str, str | None, str], Obj] = field(default_factory=dict)

    async def get(self, rt: R.ResourceType, namespace: str | None, name: str) -> Obj | None:
        return self.items.get((rt.plural, namespace, name))


def world(**changes: Obj | None) -> Objects:
    items: dict[tuple[str, str | None, str], Obj | None] = {
        ("serviceaccounts", "ns", "sa"): obj("sa", "sa-uid"),
        ("pods", "ns", "p"): obj("p", "pod-uid"),
        ("nodes", None, "n1"): obj("n1", "node-uid", namespace=None),
    }
    for key, value in changes.items():
        plural, name = key.split("__")
        ns = None if plural == "nodes" else "ns"
        items[(plural, ns, name)] = value
    return Objects({k: v for k, v in items.items() if v is not None})


def token(*, key: ec.EllipticCurvePrivateKey = KEY, issuer: str = ISSUER, audiences: list[str] | None = None,
          issued: float = NOW, seconds: int = 3600, bound: T.Bound | None = None,
          sa_uid: str = "sa-uid") -> str:
    claims = T.claims(issuer=issuer, namespace="ns", sa=T.Ref("sa", sa_uid),
                      bound=bound if bound is not None else T.Bound(pod=T.Ref("p", "pod-uid"),
                                                                    node=T.Ref("n1", "node-uid")),
                      audiences=audiences or [ISSUER], expiration_seconds=seconds, now=issued)
    return T.Signer(key).sign(claims)


def authenticator(objects: Objects) -> ServiceAccountTokens:
    verifier = T.Verifier([KEY.public_key()], issuers=[ISSUER], audiences=[ISSUER])
    return ServiceAccountTokens(verifier, objects)


def decode(part: str) -> Obj:
    result: Obj = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return result


def test_claims_are_kubes() -> None:
    tok = token()
    header, payload, _ = tok.split(".")
    assert decode(header) == {"alg": "ES256", "kid": T.key_id(KEY.public_key())}
    claims = decode(payload)
    assert list(claims) == sorted(claims)  # go-jose marshals a map: keys sorted
    jti = claims.pop("jti")
    assert len(jti) == 36
    assert claims == {
        "aud": [ISSUER], "exp": int(NOW) + 3600, "iat": int(NOW), "iss": ISSUER, "nbf": int(NOW),
        "sub": "system:serviceaccount:ns:sa",
        "kubernetes.io": {"namespace": "ns", "node": {"name": "n1", "uid": "node-uid"},
                          "pod": {"name": "p", "uid": "pod-uid"},
                          "serviceaccount": {"name": "sa", "uid": "sa-uid"}}}


@pytest.mark.parametrize(("make", "algorithm"), [
    (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
    (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
], ids=["p256", "p384", "rsa"])
def test_any_pem_key_signs_and_verifies_with_its_algorithm(make, algorithm) -> None:
    key = make()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    loaded = T.load_private_key(pem)
    signer = T.Signer(loaded)
    assert signer.algorithm == algorithm
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    verifier = T.Verifier(T.load_public_keys(public_pem), issuers=[ISSUER], audiences=[ISSUER])
    tok = signer.sign(T.claims(issuer=ISSUER, namespace="ns", sa=T.Ref("sa", "u"), bound=T.Bound(),
                               audiences=[ISSUER], expiration_seconds=600))
    assert verifier.verify(tok)["sub"] == "system:serviceaccount:ns:sa"
    assert oidc.jwk(key.public_key())["alg"] == algorithm


def test_a_file_without_keys_is_refused() -> None:
    with pytest.raises(T.KeyFileError):
        T.load_public_keys(b"not a pem")
    with pytest.raises(T.KeyFileError):
        T.load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


REFUSED = [
    # (id, token, objects, now, kube's reason)
    ("expired", dict(issued=NOW - 3600 - 61), world(), NOW, "service account token has expired"),
    ("not-yet-valid", dict(issued=NOW + 61), world(), NOW, "service account token is not valid yet"),
    ("wrong-audience", dict(audiences=["vault"]), world(), NOW,
     f'token audiences ["vault"] is invalid for the target audiences ["{ISSUER}"]'),
    ("bad-signature", dict(key=OTHER_KEY), world(), NOW, "invalid signature"),
    ("sa-deleted", {}, world(serviceaccounts__sa=None), NOW, 'serviceaccounts "sa" not found'),
    ("sa-recreated", {}, world(serviceaccounts__sa=obj("sa", "new-uid")), NOW,
     "service account UID (new-uid) does not match claim (sa-uid)"),
    ("sa-being-deleted", {}, world(serviceaccounts__sa=obj("sa", "sa-uid", deleted="2027-01-15T07:58:00Z")),
     NOW, "service account ns/sa has been deleted"),
    ("pod-deleted", {}, world(pods__p=None), NOW, "service account token has been invalidated"),
    ("pod-recreated", {}, world(pods__p=obj("p", "other")), NOW,
     "pod UID (other) does not match service account pod ref claim (pod-uid)"),
    ("pod-deleted-long-ago", {}, world(pods__p=obj("p", "pod-uid", deleted="2027-01-15T07:58:00Z")), NOW,
     "service account token has been invalidated"),
    ("node-bound-node-gone", dict(bound=T.Bound(node=T.Ref("n1", "node-uid"))), world(nodes__n1=None), NOW,
     "service account token has been invalidated"),
]


@pytest.mark.parametrize(("kwargs", "objects", "now", "reason"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
async def test_refused(kwargs, objects: Objects, now: float, reason: str) -> None:
    with pytest.raises(T.InvalidToken) as err:
        await authenticator(objects).validate(token(**kwargs), now=now)
    assert str(err.value) == reason


ACCEPTED = [
    ("fresh", {}, world(), NOW),
    ("within-exp-leeway", dict(issued=NOW - 3600 - 59), world(), NOW),
    ("within-nbf-leeway", dict(issued=NOW + 59), world(), NOW),
    ("pod-deleting-within-leeway", {}, world(pods__p=obj("p", "pod-uid", deleted="2027-01-15T08:00:00Z")),
     NOW),
    ("node-of-pod-gone", {}, world(nodes__n1=None), NOW),  # only a node-bound token needs its node
    ("one-of-several-audiences", dict(audiences=["vault", ISSUER]), world(), NOW),
]


@pytest.mark.parametrize(("kwargs", "objects", "now"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
async def test_accepted(kwargs, objects: Objects, now: float) -> None:
    user = await authenticator(objects).validate(token(**kwargs), now=now)
    assert user.name == "system:serviceaccount:ns:sa"


async def test_the_user_is_kubes_service_account_user() -> None:
    tok = token()
    user = await authenticator(world()).validate(tok, now=NOW)
    jti = decode(tok.split(".")[1])["jti"]
    assert user.uid == "sa-uid"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")
    assert dict(user.extra) == {
        "authentication.kubernetes.io/pod-name": ("p",),
        "authentication.kubernetes.io/pod-uid": ("pod-uid",),
        "authentication.kubernetes.io/credential-id": (f"JTI={jti}",),
        "authentication.kubernetes.io/node-name": ("n1",),
        "authentication.kubernetes.io/node-uid": ("node-uid",),
    }


@pytest.mark.parametrize("bearer", [
    token(issuer="https://other.example"), "not-a-jwt", "a.b.c", None,
], ids=["other-issuer", "opaque", "garbage-jwt-shape", "no-token"])
async def test_tokens_of_others_are_left_to_other_authenticators(bearer: str | None) -> None:
    creds = Credentials(peer_cert=None, bearer=bearer, path="/api/v1/pods")
    assert await authenticator(world()).authenticate(creds) is None


async def test_an_invalid_token_of_ours_is_unauthenticated() -> None:
    creds = Credentials(peer_cert=None, bearer=token(issued=time.time() - 7200), path="/api/v1/pods")
    with pytest.raises(Unauthenticated):
        await authenticator(world()).authenticate(creds)


def test_jwks_is_the_verification_keys_as_go_jose_writes_them() -> None:
    keys = json.loads(oidc.jwks([KEY.public_key()]))["keys"]
    assert list(keys[0]) == ["use", "kty", "kid", "crv", "alg", "x", "y"]
    assert keys[0]["kid"] == T.key_id(KEY.public_key())
    assert len(base64.urlsafe_b64decode(keys[0]["x"] + "=")) == 32
    config = json.loads(oidc.openid_configuration(ISSUER, "https://10.0.0.1:6443/openid/v1/jwks",
                                                  [KEY.public_key()]))
    assert config == {"issuer": ISSUER, "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
                      "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                      "id_token_signing_alg_values_supported": ["ES256"]}
