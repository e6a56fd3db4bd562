"""The puller's small decisions: endpoints, mirrors, challenges, pull-secret keyrings."""
from __future__ import annotations

import base64
import json

import pytest

from services.nodeagent.oci import reference, registry


@pytest.mark.parametrize(("domain", "endpoint"), [
    ("docker.io", "https://registry-1.docker.io"),
    ("registry.k8s.io", "https://registry.k8s.io"),
    ("localhost:5000", "http://localhost:5000"),
    ("127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("ghcr.io", "https://ghcr.io"),
])
def test_endpoint_for(domain, endpoint):
    assert registry.endpoint_for(domain) == endpoint


def test_parse_mirror():
    assert registry.parse_mirror("docker.io=http://127.0.0.1:5000/") == ("docker.io", "http://127.0.0.1:5000")
    for bad in ("docker.io", "=http://x", "docker.io=ftp://x", "docker.io=http://x/path"):
        with pytest.raises(ValueError, match="REGISTRY=http"):
            registry.parse_mirror(bad)


def test_parse_challenge():
    assert registry.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull"'
    ) == ("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                     "scope": "repository:library/x:pull"})
    assert registry.parse_challenge('Basic realm="Registry"') == ("basic", {"realm": "Registry"})


def _secret(kind: str, auths: dict) -> dict:
    key = ".dockerconfigjson" if kind == "json" else ".dockercfg"
    doc = {"auths": auths} if kind == "json" else auths
    return {"data": {key: base64.b64encode(json.dumps(doc).encode()).decode()}}


def test_keyring_from_pull_secrets_and_matching():
    auth = base64.b64encode(b"alice:pw1").decode()
    keyring = registry.keyring_from_secrets([
        _secret("json", {"https://index.docker.io/v1/": {"auth": auth},
                         "registry.example.com/team": {"username": "bob", "password": "pw2"}}),
        _secret("cfg", {"registry.example.com": {"username": "carol", "password": "pw3"}}),
        {"data": {".dockerconfigjson": "not base64 json"}},
    ])
    assert registry.credential_for(keyring, reference.parse("nginx")) == registry.Credential("alice", "pw1")
    assert registry.credential_for(keyring, reference.parse("registry.example.com/team/app:1")) == \
        registry.Credential("bob", "pw2")
    assert registry.credential_for(keyring, reference.parse("registry.example.com/other/app")) == \
        registry.Credential("carol", "pw3")
    assert registry.credential_for(keyring, reference.parse("ghcr.io/x/y")) is None
