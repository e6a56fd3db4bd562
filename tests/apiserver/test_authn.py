"""The API server speaks HTTPS only and knows who calls: client certificates of the cluster
CA, 401 for everyone else except on the health and version paths."""
from __future__ import annotations

import json
import ssl

import aiohttp
import pytest

from cluster.pki import Pki
from tests.conftest import SessionPki

NAMESPACES = "/api/v1/namespaces"
UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def verified_only(pki: SessionPki) -> ssl.SSLContext:
    """A client that verifies the server but presents no certificate."""
    return ssl.create_default_context(cafile=pki.ca_file)


async def get(url: str, path: str, ctx: ssl.SSLContext | bool, headers: dict | None = None):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        async with s.get(url + path, headers=headers or {}) as r:
            text = await r.text()
            return r.status, json.loads(text) if text.startswith("{") else text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer garbage"},
                                     {"Authorization": "Basic YWRtaW46YWRtaW4="}],
                         ids=["nothing", "bad-bearer", "basic"])
async def test_without_valid_credentials_every_api_path_is_401(apiserver, headers):
    ctx = verified_only(apiserver.pki)
    for path in (NAMESPACES, "/api/v1/namespaces/default/pods", "/apis", "/openapi/v2", "/metrics"):
        status, body = await get(apiserver.url, path, ctx, headers)
        assert (status, body) == (401, UNAUTHORIZED), path


async def test_health_and_version_stay_open(apiserver):
    ctx = verified_only(apiserver.pki)
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        status, _ = await get(apiserver.url, path, ctx)
        assert status == 200, path


async def test_a_client_certificate_of_the_cluster_ca_is_a_user(apiserver):
    async with apiserver.session(apiserver.config_for("jane", ("dev",))) as s:
        # who the server takes the caller for (`kubectl auth whoami`): RBAC lets anyone ask
        async with s.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json={}) as r:
            assert r.status == 201
            assert (await r.json())["status"]["userInfo"] == {
                "username": "jane", "groups": ["dev", "system:authenticated"]}
        async with s.get(NAMESPACES) as r:  # and nothing more until a binding says so
            assert r.status == 403


async def test_a_certificate_of_another_ca_is_refused_in_the_handshake(apiserver, tmp_path):
    other = Pki.create(tmp_path / "other")
    pair = other.client("mallory", "kubernetes-admin", ["system:masters"])
    ctx = verified_only(apiserver.pki)
    ctx.load_cert_chain(pair.cert, pair.key)
    with pytest.raises(aiohttp.ClientError):
        await get(apiserver.url, NAMESPACES, ctx)


async def test_no_plain_http(apiserver):
    with pytest.raises(aiohttp.ClientError):
        await get(apiserver.url.replace("https://", "http://"), "/healthz", False)


async def test_the_server_certificate_verifies_for_its_names(apiserver):
    ctx = verified_only(apiserver.pki)  # checks the hostname 127.0.0.1 against the SANs
    status, _ = await get(apiserver.url, "/version", ctx)
    assert status == 200
