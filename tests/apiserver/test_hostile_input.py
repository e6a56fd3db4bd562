"""What an attacker sends the API server gets a clear 4xx Status (or an answer within limits),
and leaves nothing broken behind: the object, its namespace, the server's other clients."""
from __future__ import annotations

import aiohttp
import pytest

pytestmark = pytest.mark.etcd

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str = "p", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


@pytest.fixture
async def session(apiserver):
    async with aiohttp.ClientSession(apiserver.url) as s:
        yield s


# --- a control character in an unknown field's name -----------------------------------------

async def test_unknown_field_with_a_newline_is_answered_with_a_quoted_warning(session):
    body = {**pod(), "x\ny": 1, "caf\u00e9": 2}
    async with session.post(PODS, json=body) as r:
        assert r.status == 201, await r.text()
        assert sorted(r.headers.getall("Warning")) == [
            '299 - "unknown field \\"caf\u00e9\\""', '299 - "unknown field \\"x\\\\ny\\""']
    # every later merge patch of the object carries the stored field along: answered too
    async with session.patch(f"{PODS}/p", json={"metadata": {"labels": {"a": "b"}}},
                             headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["metadata"]["labels"] == {"a": "b"}
    async with session.post(PODS + "?fieldValidation=Strict", json={**pod("q"), "x\ny": 1}) as r:
        assert r.status == 400
        assert (await r.json())["message"] == 'strict decoding error: unknown field "x\\ny"'
