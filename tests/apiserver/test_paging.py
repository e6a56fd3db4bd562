"""Paged lists (`limit`, `continue`) against real etcd: one snapshot across pages, key order,
selectors, expired and malformed tokens."""
from __future__ import annotations

import asyncio
import base64
import json
import random
from urllib.parse import quote

import pytest

from kubecore.api.errors import ApiError
from services.apiserver.storage import paging

NS = "paging"
SVC = f"/api/v1/namespaces/{NS}/services"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"


def service(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"ports": [{"port": 80}]}}


async def make_services(http, n: int = 25) -> list[str]:
    code, body = await http.post("/api/v1/namespaces", {"metadata": {"name": NS}})
    assert code == 201, body
    names = [f"svc-{i:02d}" for i in range(n)]
    for name in random.Random(7).sample(names, n):  # created out of order: pages go by key
        tier = "db" if int(name[-2:]) % 4 == 0 else "web"
        code, body = await http.post(SVC, service(name, tier=tier))
        assert code == 201, body
    return names


async def version_then_change(http, n: int, new: str = "svc-new") -> tuple[list[str], str]:
    """`n` services, the list's resourceVersion, then one more service `new` after it."""
    names = await make_services(http, n)
    code, before = await http.get(SVC)
    assert code == 200
    code, body = await http.post(SVC, service(new))
    assert code == 201, body
    return names, before["metadata"]["resourceVersion"]


def token(**fields) -> str:
    data = {"v": "meta.k8s.io/v1", "rv": 5, "start": "svc-01\x00", **fields}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def pages(http, path: str, cont: str = "", **headers) -> list[dict]:
    """Every page of a list (from the page `cont` names), following `continue`."""
    out = []
    sep = "&" if "?" in path else "?"
    for _ in range(100):
        code, body = await http.get(path + (f"{sep}continue={quote(cont)}" if cont else ""),
                                    headers=headers)
        assert code == 200, body
        out.append(body)
        cont = body["metadata"].get("continue", "")
        if not cont:
            return out
    raise AssertionError("continue never ended")


def names_of(page: dict) -> list[str]:
    return [o["metadata"]["name"] for o in page["items"]]


async def test_limit_pages_in_key_order_with_counts_and_one_resource_version(http):
    names = await make_services(http)
    got = await pages(http, f"{SVC}?limit=10")
    assert [len(p["items"]) for p in got] == [10, 10, 5]
    assert [p["metadata"].get("remainingItemCount") for p in got] == [15, 5, None]
    assert len({p["metadata"]["resourceVersion"] for p in got}) == 1
    assert [n for p in got for n in names_of(p)] == names  # no gaps, no duplicates, key order
    assert all(p["kind"] == "ServiceList" for p in got)
    assert "continue" not in got[-1]["metadata"]

    # all namespaces: keys are namespace/name, so default/kubernetes comes first
    every = await pages(http, "/api/v1/services?limit=10")
    assert [len(p["items"]) for p in every] == [10, 10, 6]
    flat = [(o["metadata"]["namespace"], o["metadata"]["name"]) for p in every for o in p["items"]]
    assert flat == [("default", "kubernetes")] + [(NS, n) for n in names]

    # a limit as large as the list, or larger: one page, no continue
    for limit in (25, 1000):
        code, body = await http.get(f"{SVC}?limit={limit}")
        assert names_of(body) == names and "continue" not in body["metadata"]
        assert "remainingItemCount" not in body["metadata"]


async def test_later_pages_are_the_first_pages_snapshot(http):
    names = await make_services(http)
    code, first = await http.get(f"{SVC}?limit=10")
    rv = first["metadata"]["resourceVersion"]
    # changes after the first page: none of them may show up in the later pages
    assert (await http.post(SVC, service("svc-99")))[0] == 201
    assert (await http.post(SVC, service("svc-155")))[0] == 201  # sorts inside page two
    assert (await http.delete(f"{SVC}/svc-20"))[0] == 200
    code, patched = await http.patch(f"{SVC}/svc-21", {"metadata": {"labels": {"x": "y"}}},
                                     "application/merge-patch+json")
    assert code == 200

    rest = await pages(http, f"{SVC}?limit=10", first["metadata"]["continue"])
    assert [p["metadata"]["resourceVersion"] for p in rest] == [rv, rv]
    seen = names_of(first) + [n for p in rest for n in names_of(p)]
    assert seen == names  # svc-20 still there, no svc-99 or svc-155
    svc21 = next(o for p in rest for o in p["items"] if o["metadata"]["name"] == "svc-21")
    assert "x" not in svc21["metadata"]["labels"]
    assert int(svc21["metadata"]["resourceVersion"]) <= int(rv)

    # a new list sees the changes
    now = [n for p in await pages(http, f"{SVC}?limit=10") for n in names_of(p)]
    assert "svc-99" in now and "svc-155" in now and "svc-20" not in now


async def test_a_first_page_at_a_resource_version_reads_that_revision(http):
    names, rv = await version_then_change(http, 6, "svc-000")
    code, first = await http.get(f"{SVC}?limit=4&resourceVersion={rv}")
    assert names_of(first) == names[:4] and first["metadata"]["resourceVersion"] == rv
    # later pages send no resourceVersion (client-go's pager clears it): the token holds it
    got = [first] + await pages(http, f"{SVC}?limit=4", first["metadata"]["continue"])
    assert [n for p in got for n in names_of(p)] == names
    assert {p["metadata"]["resourceVersion"] for p in got} == {rv}


async def test_label_selector_pages_fill_up_to_the_limit(http):
    names = await make_services(http)
    db = [n for n in names if int(n[-2:]) % 4 == 0]  # 7 of 25, spread through the keys
    got = await pages(http, f"{SVC}?limit=2&labelSelector=tier%3Ddb")
    assert [len(p["items"]) for p in got] == [2, 2, 2, 1]
    assert [n for p in got for n in names_of(p)] == db
    assert len({p["metadata"]["resourceVersion"] for p in got}) == 1
    # etcd's count includes objects the selector drops: no remainingItemCount, as kube-apiserver
    assert all("remainingItemCount" not in p["metadata"] for p in got)

    web = await pages(http, f"{SVC}?limit=5&labelSelector=tier%21%3Ddb")
    assert [n for p in web for n in names_of(p)] == [n for n in names if n not in db]
    assert all(len(p["items"]) == 5 for p in web[:-1])

    # nothing matches: the server reads on to the end rather than return empty pages
    code, none = await http.get(f"{SVC}?limit=3&labelSelector=tier%3Dcache")
    assert code == 200 and none["items"] == [] and "continue" not in none["metadata"]

    code, one = await http.get(f"{SVC}?limit=3&fieldSelector=metadata.name%3Dsvc-13")
    assert names_of(one) == ["svc-13"] and "continue" not in one["metadata"]


async def test_tables_page_too(http):
    names = await make_services(http, 5)
    got = await pages(http, f"{SVC}?limit=2", Accept=TABLE)
    assert all(p["kind"] == "Table" for p in got)
    assert [len(p["rows"]) for p in got] == [2, 2, 1]
    assert [p["metadata"].get("remainingItemCount") for p in got] == [3, 1, None]
    assert [r["cells"][0] for p in got for r in p["rows"]] == names
    assert len({p["metadata"]["resourceVersion"] for p in got}) == 1


async def test_resource_version_0_comes_whole_from_the_watch_cache(http):
    names = await make_services(http, 5)
    for _ in range(200):  # the cache follows etcd a moment behind
        code, body = await http.get(f"{SVC}?limit=2&resourceVersion=0")
        if len(body["items"]) == len(names):
            break
        await asyncio.sleep(0.02)
    # kube-apiserver ignores `limit` for lists served from its watch cache
    assert code == 200 and names_of(body) == names and "continue" not in body["metadata"]
    # but a continue token with resourceVersion=0 is allowed and read from etcd
    code, first = await http.get(f"{SVC}?limit=2")
    code, second = await http.get(f"{SVC}?limit=2&resourceVersion=0&continue="
                                  f"{quote(first['metadata']['continue'])}")
    assert code == 200 and names_of(second) == names[2:4]


async def test_compacted_continue_token_is_410_expired_with_a_fresh_token(http, apiserver):
    names = await make_services(http, 6)
    code, first = await http.get(f"{SVC}?limit=2")
    cont, rv = first["metadata"]["continue"], int(first["metadata"]["resourceVersion"])
    code, created = await http.post(SVC, service("svc-03a"))
    assert code == 201
    await apiserver.state.etcd.compact(int(created["metadata"]["resourceVersion"]))

    code, status = await http.get(f"{SVC}?limit=2&continue={quote(cont)}")
    assert code == 410, status
    assert status["kind"] == "Status" and status["reason"] == "Expired" and status["code"] == 410
    assert status["message"].startswith("The provided continue parameter is too old to display a "
                                        "consistent list result.")
    # the offered token continues where the old one would have, at the newest revision
    fresh = status["metadata"]["continue"]
    assert json.loads(base64.urlsafe_b64decode(fresh + "=" * (-len(fresh) % 4)))["rv"] == -1
    rest = await pages(http, f"{SVC}?limit=2", fresh)
    assert [n for p in rest for n in names_of(p)] == ["svc-02", "svc-03", "svc-03a", "svc-04",
                                                      "svc-05"]
    assert all(int(p["metadata"]["resourceVersion"]) > rv for p in rest)

    # a first page at a compacted resourceVersion is 410 too
    code, status = await http.get(f"{SVC}?limit=2&resourceVersion={rv}")
    assert code == 410 and status["reason"] == "Expired"
    assert status["message"] == "The resourceVersion for the provided list is too old."
    assert names[:2] == names_of(first)


@pytest.mark.parametrize("bad", [
    "garbage!", "abc", "x" * 5, base64.urlsafe_b64encode(b"not json").decode(),
    base64.urlsafe_b64encode(b"[" * 5000).decode(), base64.urlsafe_b64encode(b"[1]").decode(),
    token(v="meta.k8s.io/v2"), token(rv=0), token(rv="5"), token(rv=1.5), token(rv=True),
    token(rv=2**70), token(start=""), token(start=None), token(start="../secrets/x"),
    token(start="default/"), token(start="//x"), token(start="a/./b"), token(start="\ud800"),
])
async def test_malformed_continue_tokens_are_400(http, bad):
    code, status = await http.get(f"{SVC}?limit=2&continue={quote(bad)}")
    assert code == 400, status
    assert status["reason"] == "BadRequest"
    assert status["message"].startswith("invalid continue token:")


async def test_continue_with_a_resource_version_is_400(http):
    await make_services(http, 3)
    code, first = await http.get(f"{SVC}?limit=1")
    cont = quote(first["metadata"]["continue"])
    code, status = await http.get(f"{SVC}?limit=1&continue={cont}&resourceVersion=1")
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == "specifying resource version is not allowed when using continue"


async def test_a_token_from_the_future_is_504_too_large_resource_version(http):
    await make_services(http, 3)
    code, status = await http.get(f"{SVC}?limit=1&continue={token(rv=10**9)}")
    assert code == 504 and status["reason"] == "Timeout"
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


@pytest.mark.parametrize("query,expected", [
    ("limit=-1", 200), ("limit=0", 200), ("limit=", 200), ("limit=abc", 400), ("limit=1.5", 400),
    ("limit=99999999999999999999999", 400), ("limit=%00", 400), ("limit=9223372036854775807", 200),
    ("limit=1&resourceVersion=abc", 400), ("limit=1&resourceVersion=-3", 400),
    ("limit=1&resourceVersion=99999999999999999999999", 400), ("continue=", 200),
    # decimal digits only, as Go's strconv reads them (limit may have a sign, a version not)
    ("limit=%2B5", 200), ("limit=1_0", 400), ("limit=%205", 400), ("limit=%EF%BC%95", 400),
    ("limit=1&resourceVersion=1_0", 400), ("limit=1&resourceVersion=%2B5", 400),
    ("limit=1&resourceVersion=%D9%A5", 400),
])
async def test_odd_limits_are_ignored_or_400_never_500(http, query, expected):
    code, body = await http.get(f"/api/v1/namespaces/default/services?{query}")
    assert code == expected, body
    if code == 200:  # limit <= 0 means no limit, as in kube-apiserver
        assert names_of(body) == ["kubernetes"] and "continue" not in body["metadata"]
    else:
        assert body["reason"] == "BadRequest"


def test_token_round_trip_matches_kube_apiservers_encoding():
    tok = paging.encode("default/web\x00", 42)
    assert "=" not in tok
    assert base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)) == \
        b'{"v":"meta.k8s.io/v1","rv":42,"start":"default/web\\u0000"}'
    assert paging.decode(tok) == paging.Continue("default/web\x00", 42)
    assert paging.decode(paging.encode("/x", -1)) == paging.Continue("x", -1)


# --- resourceVersionMatch -------------------------------------------------------------------

async def test_resource_version_match_exact_reads_that_revision_whole_or_paged(http):
    names, rv = await version_then_change(http, 4)
    code, exact = await http.get(f"{SVC}?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert code == 200 and names_of(exact) == names and exact["metadata"]["resourceVersion"] == rv
    code, first = await http.get(f"{SVC}?limit=3&resourceVersion={rv}&resourceVersionMatch=Exact")
    assert code == 200 and first["metadata"]["resourceVersion"] == rv
    assert names_of(first) == names[:3]
    # the pages after the first carry the token only; together they are the old state
    rest = await pages(http, f"{SVC}?limit=3", first["metadata"]["continue"])
    assert [n for p in [first, *rest] for n in names_of(p)] == names


async def test_resource_version_match_not_older_than_reads_the_newest_state(http):
    names, rv = await version_then_change(http, 3)
    for query, limit in ((f"resourceVersion={rv}&resourceVersionMatch=NotOlderThan", 0),
                         (f"resourceVersion={rv}&resourceVersionMatch=NotOlderThan&limit=2", 2),
                         (f"resourceVersion={rv}", 0)):
        code, got = await http.get(f"{SVC}?{query}")
        assert code == 200 and int(got["metadata"]["resourceVersion"]) > int(rv), query
        assert names_of(got) == (names + ["svc-new"])[:limit or None], query
    # a version the store has not reached: kube-apiserver's 504 Too large resource version
    for query in ("resourceVersion=999999999&resourceVersionMatch=NotOlderThan",
                  "resourceVersion=999999999", "resourceVersion=999999999&resourceVersionMatch=Exact"):
        code, status = await http.get(f"{SVC}?{query}")
        assert code == 504 and status["reason"] == "Timeout", (query, status)
        assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
        assert status["message"].startswith("Timeout: Too large resource version: 999999999, current: ")


async def test_resource_version_match_exact_at_a_compacted_revision_is_410(http, apiserver):
    await make_services(http, 2)
    code, before = await http.get(SVC)
    rv = before["metadata"]["resourceVersion"]
    code, created = await http.post(SVC, service("svc-new"))
    await apiserver.state.etcd.compact(int(created["metadata"]["resourceVersion"]))
    code, status = await http.get(f"{SVC}?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert code == 410 and status["reason"] == "Expired"
    assert status["message"] == "The resourceVersion for the provided list is too old."


@pytest.mark.parametrize("query,message", [
    ("resourceVersionMatch=Exact",
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
     'resourceVersionMatch is forbidden unless resourceVersion is provided'),
    ("resourceVersion=0&resourceVersionMatch=Exact",
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
     'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
    ("resourceVersion=5&resourceVersionMatch=exact",
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "exact": '
     'supported values: "Exact", "NotOlderThan", ""'),
    ("continue=abc&resourceVersionMatch=Bogus",
     'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: '
     'resourceVersionMatch is forbidden unless resourceVersion is provided, '
     'resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is '
     'provided, resourceVersionMatch: Unsupported value: "Bogus": supported values: "Exact", '
     '"NotOlderThan", ""]'),
])
async def test_bad_resource_version_match_is_kube_apiservers_422(http, query, message):
    code, status = await http.get(f"{SVC}?{query}")
    assert code == 422 and status["reason"] == "Invalid", status
    assert status["message"] == message
    assert status["details"]["kind"] == "ListOptions" and status["details"]["group"] == "meta.k8s.io"
    assert all(c["field"] == "resourceVersionMatch" for c in status["details"]["causes"])


@pytest.mark.parametrize("rv,match,token,limit,expected", [
    ("", "", "", 0, paging.ListRead()),
    ("", "", "", 5, paging.ListRead()),
    ("0", "", "", 5, paging.ListRead(cached=True)),
    ("0", "NotOlderThan", "", 0, paging.ListRead(cached=True)),
    ("7", "", "", 0, paging.ListRead(not_older_than=7)),
    ("7", "", "", 5, paging.ListRead(revision=7)),  # legacy paging: limit makes it exact
    ("7", "NotOlderThan", "", 5, paging.ListRead(not_older_than=7)),
    ("7", "Exact", "", 0, paging.ListRead(revision=7)),
    ("0", "", "tok", 5, paging.ListRead()),
])
def test_which_state_a_list_reads(rv, match, token, limit, expected):
    assert paging.list_read(rv, match, token, limit) == expected


def test_a_list_version_that_is_no_number_is_400():
    for rv in ("abc", "-3", "1.5"):
        with pytest.raises(ApiError) as caught:
            paging.list_read(rv, "", "", 0)
        assert caught.value.code == 400 and caught.value.reason == "BadRequest"
