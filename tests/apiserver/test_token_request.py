"""TokenRequest (POST serviceaccounts/<name>/token) against a real API server over etcd: the
defaults, kube's refusals, the bound objects, and the token it answers authenticating as the
ServiceAccount until what it is bound to is gone; the OIDC discovery documents."""
from __future__ import annotations

import base64
import json

import pytest

from kubecore.client.config import ClientConfig
from services.apiserver.authn import Credentials, tokens
from tests.conftest import Http

NS = "/api/v1/namespaces/default"


async def get_with_token(apiserver, path: str, token: str) -> tuple[int, dict]:
    """A GET presenting only the bearer token (no client certificate, which would win)."""
    config = ClientConfig(server=apiserver.url, ca_file=apiserver.pki.ca_file, token=token)
    async with apiserver.session(config) as session:
        return await Http(session).get(path)


def claims_of(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def make_sa(http, name: str = "robot") -> dict:
    status, sa = await http.post(f"{NS}/serviceaccounts", {"metadata": {"name": name}})
    assert status == 201, sa
    return sa


async def make_pod(http, name: str = "p", sa: str = "robot", node: str | None = None) -> dict:
    spec: dict = {"serviceAccountName": sa, "containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    status, pod = await http.post(f"{NS}/pods", {"metadata": {"name": name}, "spec": spec})
    assert status == 201, pod
    return pod


async def test_a_token_request_defaults_to_an_hour_for_the_servers_audiences(http, apiserver) -> None:
    sa = await make_sa(http)
    status, tr = await http.post(f"{NS}/serviceaccounts/robot/token", {"apiVersion": "authentication.k8s.io/v1",
                                                                       "kind": "TokenRequest", "spec": {}})
    assert status == 201, tr
    assert tr["kind"] == "TokenRequest" and tr["apiVersion"] == "authentication.k8s.io/v1"
    assert tr["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    assert tr["spec"]["expirationSeconds"] == 3600
    claims = claims_of(tr["status"]["token"])
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"] == {"namespace": "default",
                                       "serviceaccount": {"name": "robot", "uid": sa["metadata"]["uid"]}}
    user = await apiserver.state.authenticator.authenticate(
        Credentials(peer_cert=None, bearer=tr["status"]["token"], path="/api/v1/pods"))
    assert user.name == "system:serviceaccount:default:robot"
    assert user.uid == sa["metadata"]["uid"]


@pytest.mark.parametrize(("body", "code", "message"), [
    ({"spec": {"expirationSeconds": 599}}, 422,
     'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: '
     "may not specify a duration less than 10 minutes"),
    ({"spec": {"expirationSeconds": "600"}}, 400, None),
    ({"metadata": {"name": "other"}, "spec": {}}, 422,
     'TokenRequest.authentication.k8s.io "robot" is invalid: metadata.name: Invalid value: "other": '
     "must match the service account name if specified"),
    ({"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}}, 400,
     "cannot bind token to object of type /v1, Kind=ConfigMap"),
    ({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "nope"}}}, 404,
     'pods "nope" not found'),
    ({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "other-sa"}}}, 400,
     'cannot bind token for serviceaccount "robot" to pod running with different serviceaccount name.'),
    ({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "stale"}}}, 409,
     'Operation cannot be fulfilled on Pod "p": the UID in the bound object reference (stale) does not '
     "match the UID in record. The object might have been deleted and then recreated"),
    ({"spec": "x"}, 400, None),
], ids=["too-short", "not-an-integer", "other-name", "unbindable-kind", "missing-pod", "pod-of-another-sa",
        "stale-uid", "spec-not-an-object"])
async def test_refusals_are_kubes(http, body: dict, code: int, message: str | None) -> None:
    await make_sa(http)
    await make_sa(http, "other")
    await make_pod(http)
    await make_pod(http, "other-sa", sa="other")
    status, answer = await http.post(f"{NS}/serviceaccounts/robot/token", body)
    assert status == code, answer
    assert answer["kind"] == "Status"
    if message is not None:
        assert answer["message"] == message


async def test_a_missing_service_account_is_404(http) -> None:
    status, answer = await http.post(f"{NS}/serviceaccounts/ghost/token", {"spec": {}})
    assert (status, answer["message"]) == (404, 'serviceaccounts "ghost" not found')


async def test_a_pod_bound_token_names_the_pod_and_its_node_and_dies_with_the_pod(http, apiserver) -> None:
    await make_sa(http)
    status, node = await http.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert status == 201, node
    pod = await make_pod(http, node="n1")
    status, tr = await http.post(f"{NS}/serviceaccounts/robot/token", {"spec": {
        "expirationSeconds": 3607, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p",
                                                      "uid": pod["metadata"]["uid"]}}})
    assert status == 201, tr
    token = tr["status"]["token"]
    claims = claims_of(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
    assert claims["kubernetes.io"]["node"] == {"name": "n1", "uid": node["metadata"]["uid"]}
    # kube's extension of the projected volume's 3607 s: valid for a year, a warning after 3607 s
    assert claims["exp"] - claims["iat"] == 365 * 24 * 3600
    assert claims["kubernetes.io"]["warnafter"] == claims["iat"] + 3607
    assert tr["spec"]["expirationSeconds"] == 3607
    creds = Credentials(peer_cert=None, bearer=token, path="/api/v1/pods")
    user = await apiserver.state.authenticator.authenticate(creds)
    assert dict(user.extra)["authentication.kubernetes.io/pod-name"] == ("p",)
    assert dict(user.extra)["authentication.kubernetes.io/node-name"] == ("n1",)

    status, _ = await http.delete(f"{NS}/pods/p", {"gracePeriodSeconds": 0})
    assert status == 200
    status, answer = await get_with_token(apiserver, f"{NS}/pods", token)
    assert (status, answer["reason"]) == (401, "Unauthorized")


async def test_a_token_of_a_recreated_service_account_is_refused(http, apiserver) -> None:
    await make_sa(http)
    status, tr = await http.post(f"{NS}/serviceaccounts/robot/token", {"spec": {}})
    assert status == 201
    token = tr["status"]["token"]
    status, _ = await get_with_token(apiserver, "/api/v1", token)  # discovery: any authenticated user
    assert status == 200
    await http.delete(f"{NS}/serviceaccounts/robot")
    await make_sa(http)
    status, answer = await get_with_token(apiserver, "/api/v1", token)
    assert (status, answer["code"]) == (401, 401)


async def test_discovery_documents_are_served_as_kube_serves_them(http, apiserver) -> None:
    async with http.session.get("/.well-known/openid-configuration") as r:
        assert r.status == 200
        assert r.headers["Cache-Control"] == "public, max-age=3600"
        config = json.loads(await r.text())
    assert config["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert config["jwks_uri"] == f"https://127.0.0.1:{apiserver.settings.port}/openid/v1/jwks"
    async with http.session.get("/openid/v1/jwks") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/jwk-set+json")
        keys = json.loads(await r.text())["keys"]
    signer = apiserver.state.service_accounts.signer
    assert [k["kid"] for k in keys] == [signer.kid]
    assert tokens.key_id(signer.key.public_key()) == signer.kid


async def test_discovery_lists_the_token_subresource(http) -> None:
    status, doc = await http.get("/api/v1")
    entry = next(r for r in doc["resources"] if r["name"] == "serviceaccounts/token")
    assert entry["kind"] == "TokenRequest" and entry["verbs"] == ["create"]
    assert entry["group"] == "authentication.k8s.io"
