"""Every discovery and version path in the forms kube-apiserver serves (with and without the
trailing slash), and its two kinds of 404: a JSON Status under the API roots go-restful
claims (/api, /apis, an installed group, /version), Go's plain-text one elsewhere."""
from __future__ import annotations

import json

import pytest

PLAIN_404 = "404 page not found\n"
NO_SUCH_PATH = ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
                '"the server could not find the requested resource","reason":"NotFound",'
                '"details":{},"code":404}\n')

SERVED = [
    ("/version", "gitVersion"), ("/version/", "gitVersion"),
    ("/api", "APIVersions"), ("/api/", "APIVersions"),
    ("/apis", "APIGroupList"), ("/apis/", "APIGroupList"),
    ("/api/v1", "APIResourceList"), ("/api/v1/", "APIResourceList"),
    ("/apis/apps", "APIGroup"), ("/apis/apps/", "APIGroup"),
    ("/apis/apps/v1", "APIResourceList"), ("/apis/apps/v1/", "APIResourceList"),
]


@pytest.mark.parametrize("path,marker", SERVED, ids=[p for p, _ in SERVED])
async def test_discovery_and_version_paths(apiserver, path, marker):
    async with apiserver.session() as s:
        async with s.get(path) as r:
            body = await r.json()
            assert r.status == 200
    assert marker in (body.get("kind"), *body)


NOT_FOUND = [
    ("/api/v1/widgets", NO_SUCH_PATH), ("/api/v2", NO_SUCH_PATH), ("/apis/apps/v9", NO_SUCH_PATH),
    ("/apis/apps/v1/widgets", NO_SUCH_PATH), ("/version/x", NO_SUCH_PATH),
    ("/api/v1/namespaces/default/services/kubernetes/scale", NO_SUCH_PATH),
    ("/api/v1/namespaces/default/pods/x/widgets", NO_SUCH_PATH),
    ("/apis/widgets.example.com", PLAIN_404), ("/apis/widgets.example.com/", PLAIN_404),
    ("/apis/widgets.example.com/v1/widgets", PLAIN_404), ("/foo", PLAIN_404),
    ("/healthz/", PLAIN_404), ("/openapi/v3/", PLAIN_404), ("/openapi/v3/apis/nope/v1", PLAIN_404),
]


@pytest.mark.parametrize("path,body", NOT_FOUND, ids=[p for p, _ in NOT_FOUND])
async def test_unknown_paths_get_kube_apiservers_404(apiserver, path, body):
    async with apiserver.session() as s:
        async with s.get(path) as r:
            assert r.status == 404
            assert await r.text() == body
            wanted = "application/json" if body.startswith("{") else "text/plain"
            assert r.content_type == wanted


async def test_a_missing_object_is_a_status_with_details(apiserver):
    async with apiserver.session() as s:
        async with s.get("/apis/apps/v1/namespaces/default/deployments/x") as r:
            assert r.status == 404
            assert json.loads(await r.read())["details"] == {"name": "x", "group": "apps",
                                                              "kind": "deployments"}


HEALTH = [
    ("/livez?verbose", "[+]ping ok\n[+]log ok\n[+]etcd ok\nlivez check passed\n"),
    ("/healthz?verbose", "[+]ping ok\n[+]log ok\n[+]etcd ok\nhealthz check passed\n"),
    ("/readyz?verbose", "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]informer-sync ok\nreadyz check passed\n"),
    ("/readyz", "ok"), ("/readyz/etcd", "ok"), ("/readyz/informer-sync", "ok"), ("/livez/ping", "ok"),
    ("/healthz/log", "ok"),
]


@pytest.mark.parametrize("path,body", HEALTH, ids=[p for p, _ in HEALTH])
async def test_health_paths_list_kube_apiservers_checks(apiserver, path, body):
    async with apiserver.session() as s:
        async with s.get(path) as r:
            assert (r.status, await r.text()) == (200, body)
