"""The request attributes the authorizer sees, and kube's 401/403 Statuses, as tables."""
from __future__ import annotations

import pytest

from kubecore.api import resources as R
from services.apiserver.authn import ANONYMOUS, Chain, Credentials
from services.apiserver.authn.x509 import ClientCertificates
from services.apiserver.authz import Attributes
from services.apiserver.endpoints.filters import forbidden, resource_verb
from services.apiserver.endpoints.requests import Target
from services.apiserver.registry.interfaces import UserInfo

JANE = UserInfo("jane", groups=("dev", "system:authenticated"))


@pytest.mark.parametrize("method,name,sub,watch,verb", [
    ("GET", None, None, False, "list"),
    ("GET", None, None, True, "watch"),
    ("GET", "web", None, False, "get"),
    ("GET", "web", None, True, "watch"),
    ("POST", None, None, False, "create"),
    ("PUT", "web", None, False, "update"),
    ("PATCH", "web", "status", False, "patch"),
    ("DELETE", "web", None, False, "delete"),
    ("DELETE", None, None, False, "deletecollection"),
    ("GET", "web", "exec", False, "create"),  # a WebSocket upgrade is a GET; exec is create
    ("POST", "web", "exec", False, "create"),
    ("GET", "web", "log", False, "get"),
], ids=str)
def test_verbs_as_kube_request_info_names_them(method, name, sub, watch, verb):
    t = Target(R.PODS, "default", name, sub)
    assert resource_verb(method, t, watch=watch) == verb


@pytest.mark.parametrize("attrs,message,details", [
    (Attributes(JANE, "list", namespace="default", api_version="v1", resource="pods"),
     'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default"',
     {"group": "", "kind": "pods"}),
    (Attributes(JANE, "get", api_group="apps", api_version="v1", resource="deployments",
                namespace="team", name="web"),
     'deployments.apps "web" is forbidden: User "jane" cannot get resource "deployments" in API group '
     '"apps" in the namespace "team"',
     {"name": "web", "group": "apps", "kind": "deployments"}),
    (Attributes(JANE, "create", api_version="v1", resource="pods", subresource="exec",
                namespace="default", name="web"),
     'pods "web" is forbidden: User "jane" cannot create resource "pods/exec" in API group "" in the '
     'namespace "default"',
     {"name": "web", "group": "", "kind": "pods"}),
    (Attributes(JANE, "list", api_version="v1", resource="nodes"),
     'nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope',
     {"group": "", "kind": "nodes"}),
    (Attributes(JANE, "get", resource_request=False, path="/metrics"),
     'forbidden: User "jane" cannot get path "/metrics"', {}),
], ids=["namespaced-list", "named-in-group", "subresource", "cluster-scope", "non-resource"])
def test_forbidden_is_kubes_message(attrs, message, details):
    err = forbidden(attrs, "")
    assert (err.code, err.reason, err.message, err.details) == (403, "Forbidden", message, details)
    assert forbidden(attrs, "no RBAC policy matched").message == message + ": no RBAC policy matched"


PEER = {"subject": ((("organizationName", "dev"),), (("organizationName", "ops"),),
                    (("commonName", "jane"),))}


@pytest.mark.parametrize("creds,user", [
    (Credentials(PEER, None, "/api/v1/pods"), UserInfo("jane", groups=("dev", "ops", "system:authenticated"))),
    (Credentials(None, None, "/api/v1/pods"), None),
    (Credentials(None, None, "/healthz"), ANONYMOUS),
    (Credentials(None, None, "/readyz/etcd"), ANONYMOUS),
    (Credentials(None, None, "/version"), ANONYMOUS),
    (Credentials(None, None, "/metrics"), None),
    (Credentials(None, "garbage", "/healthz"), None),  # a token that does not verify is never anonymous
    (Credentials({"subject": ((("organizationName", "dev"),),)}, None, "/api"), None),  # no CN
], ids=["cert", "nothing", "healthz", "readyz-sub", "version", "metrics", "bad-token", "no-cn"])
async def test_the_chain_finds_the_user_or_none_for_401(creds, user):
    assert await Chain([ClientCertificates()]).authenticate(creds) == user


async def test_anonymous_can_be_turned_off():
    assert await Chain([ClientCertificates()], anonymous=False).authenticate(
        Credentials(None, None, "/healthz")) is None
