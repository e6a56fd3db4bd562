"""The request attributes the authorizer sees, and kube's 401/403 Statuses, as tables."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.authn import ANONYMOUS, Chain, Credentials
from services.apiserver.authn.x509 import ClientCertificates
from services.apiserver.authz import Attributes, Decision, Verdict
from services.apiserver.endpoints import filters
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


# --- impersonation (kube's WithImpersonation) and named lists ---------------------------------

ADMIN = UserInfo("admin", groups=("system:masters",))


class Allows:
    """An authorizer that allows what its list holds and records what it was asked."""

    def __init__(self, *allowed: tuple[str, str, str, str]) -> None:
        self.allowed = set(allowed)
        self.asked: list[tuple[str, str, str, str, str]] = []

    def authorize(self, attrs: Attributes) -> Decision:
        key = (attrs.api_group, attrs.resource, attrs.namespace, attrs.name)
        self.asked.append((attrs.verb, *key))
        return Decision(Verdict.ALLOW if key in self.allowed else Verdict.NO_OPINION)


def request(*headers: tuple[str, str]):
    return make_mocked_request("GET", "/api/v1/pods", headers=CIMultiDict(headers))


def test_no_headers_no_change() -> None:
    assert filters.impersonate(Allows(), request(), ADMIN) is ADMIN


def test_a_user_with_groups_and_extra() -> None:
    authorizer = Allows(("", "users", "", "jane"), ("", "groups", "", "devs"),
                        ("authentication.k8s.io", "userextras", "", "a"))
    req = request(("Impersonate-User", "jane"), ("Impersonate-Group", "devs"), ("Impersonate-Extra-Scopes", "a"))
    acting = filters.impersonate(authorizer, req, ADMIN)
    assert acting == UserInfo("jane", "", ("devs", "system:authenticated"), (("scopes", ("a",)),))
    assert req[filters.USER] == acting
    assert {a[0] for a in authorizer.asked} == {"impersonate"}


def test_a_service_account_is_checked_as_one_and_gets_its_groups() -> None:
    authorizer = Allows(("", "serviceaccounts", "ci", "builder"))
    acting = filters.impersonate(authorizer, request(("Impersonate-User", "system:serviceaccount:ci:builder")),
                                 ADMIN)
    assert acting.groups == ("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated")


def test_anonymous_is_unauthenticated() -> None:
    acting = filters.impersonate(Allows(("", "users", "", "system:anonymous")),
                                 request(("Impersonate-User", "system:anonymous")), ADMIN)
    assert acting.groups == ("system:unauthenticated",)


def test_a_part_not_allowed_is_kube_s_403() -> None:
    with pytest.raises(ApiError) as err:
        filters.impersonate(Allows(("", "users", "", "jane")),
                            request(("Impersonate-User", "jane"), ("Impersonate-Group", "system:masters")),
                            UserInfo("bob"))
    assert err.value.code == 403
    assert err.value.message == ('groups "system:masters" is forbidden: User "bob" cannot impersonate '
                                 'resource "groups" in API group "" at the cluster scope')


def test_groups_without_a_user_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        filters.impersonate(Allows(), request(("Impersonate-Group", "devs")), ADMIN)
    assert err.value.code == 400


@pytest.mark.parametrize("selector, name", [
    ("metadata.name=kube-root-ca.crt", "kube-root-ca.crt"), ("metadata.name==x", "x"),
    ("metadata.namespace=a,metadata.name=x", "x"), ("metadata.name!=x", ""), ("spec.nodeName=n1", ""),
    ("", ""), ("metadata.name=a/b", ""),
], ids=["=", "==", "among others", "!=", "another field", "none", "not a path segment"])
def test_a_list_or_watch_of_one_name_is_named(selector: str, name: str) -> None:
    assert filters.selected_name(selector) == name


def test_a_connections_certificate_is_decoded_once():
    from services.apiserver.endpoints.filters import peer_certificate

    class Session:
        calls = 0

        def getpeercert(self):
            self.calls += 1
            return PEER

    one, other = Session(), Session()
    assert [peer_certificate(one) for _ in range(3)] == [PEER] * 3
    assert peer_certificate(other) == PEER
    assert (one.calls, other.calls) == (1, 1)
