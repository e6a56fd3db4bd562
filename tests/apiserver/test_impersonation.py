"""Impersonation (kube's WithImpersonation filter) as a table: who the request goes on as,
and what the caller must be allowed to `impersonate` for it."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from kubecore.api.errors import ApiError
from services.apiserver.authz import Attributes, Decision, Verdict
from services.apiserver.endpoints import filters
from services.apiserver.registry.interfaces import UserInfo

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
