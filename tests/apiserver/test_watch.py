"""Watch streams: resume without gaps, 410 when too old, selectors, bookmarks, fan-out."""
from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp
import pytest

from tests.conftest import ApiServer, SessionPki, api_settings

SVC = "/api/v1/namespaces/default/services"


def service(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"ports": [{"port": 80}]}}


class Stream:
    """Reads a watch stream into a list of events in the background."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.events: list[dict] = []
        self.ended = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async with self.session.get(self.url) as r:
                assert r.status == 200
                async for line in r.content:
                    if line.strip():
                        self.events.append(json.loads(line))
        finally:
            self.ended.set()

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[dict]:
        async def poll():
            while len(self.events) < n:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(poll(), timeout)
        return self.events

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass


def summary(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


async def test_watch_from_list_version_sees_every_change_once(apiserver, http):
    _, lst = await http.get(SVC)
    rv = lst["metadata"]["resourceVersion"]
    async with apiserver.session() as s:
        w = Stream(s, f"{SVC}?watch=true&resourceVersion={rv}")
        _, a = await http.post(SVC, service("a"))
        a["metadata"]["labels"] = {"x": "y"}
        await http.put(f"{SVC}/a", a)
        await http.post(SVC, service("b"))
        await http.delete(f"{SVC}/a")
        events = await w.wait_for(4)
        await asyncio.sleep(0.2)
        await w.close()
    assert summary(w.events) == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 4


async def test_resume_from_middle_has_no_gap_and_no_duplicate(apiserver, http):
    created = []
    for i in range(5):
        _, obj = await http.post(SVC, service(f"s{i}"))
        created.append(obj)
    middle = created[1]["metadata"]["resourceVersion"]
    async with apiserver.session() as s:
        w = Stream(s, f"{SVC}?watch=1&resourceVersion={middle}")
        await w.wait_for(3)
        await http.post(SVC, service("s5"))
        await w.wait_for(4)
        await asyncio.sleep(0.2)
        await w.close()
    assert summary(w.events) == [("ADDED", "s2"), ("ADDED", "s3"), ("ADDED", "s4"), ("ADDED", "s5")]


async def test_watch_without_version_starts_with_current_objects(apiserver, http):
    await http.post(SVC, service("a"))
    async with apiserver.session() as s:
        for rv in ("", "&resourceVersion=0"):
            w = Stream(s, f"{SVC}?watch=True{rv}")
            events = await w.wait_for(2)
            await w.close()
            assert sorted(summary(events)) == [("ADDED", "a"), ("ADDED", "kubernetes")]


async def test_too_old_version_gets_410_error_event(etcd):
    server = await ApiServer(api_settings(etcd, watch_window=3)).start()
    try:
        async with server.session() as s:
            first = None
            for i in range(6):
                async with s.post(SVC, json=service(f"s{i}")) as r:
                    body = await r.json()
                    first = first or body["metadata"]["resourceVersion"]
            await asyncio.sleep(0.3)
            async with s.get(f"{SVC}?watch=true&resourceVersion={first}") as r:
                assert r.status == 200
                lines = [json.loads(line) async for line in r.content if line.strip()]
    finally:
        await server.stop()
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    status = lines[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"


async def test_selector_transitions_become_added_and_deleted(apiserver, http):
    _, lst = await http.get(SVC)
    rv = lst["metadata"]["resourceVersion"]
    async with apiserver.session() as s:
        w = Stream(s, f"{SVC}?watch=true&resourceVersion={rv}&labelSelector=tier=web")
        _, a = await http.post(SVC, service("a", {"tier": "db"}))
        a["metadata"]["labels"] = {"tier": "web"}
        _, a = await http.put(f"{SVC}/a", a)
        a["metadata"]["labels"] = {"tier": "db"}
        await http.put(f"{SVC}/a", a)
        await http.delete(f"{SVC}/a")
        await w.wait_for(2)
        await asyncio.sleep(0.3)
        await w.close()
    assert summary(w.events) == [("ADDED", "a"), ("DELETED", "a")]


async def test_single_object_watch_and_timeout(apiserver, http):
    await http.post(SVC, service("a"))
    await http.post(SVC, service("b"))
    async with apiserver.session() as s:
        w = Stream(s, f"{SVC}?watch=true&fieldSelector=metadata.name%3Db&timeoutSeconds=1")
        await asyncio.wait_for(w.ended.wait(), 5)
    assert summary(w.events) == [("ADDED", "b")]


async def test_bookmarks_carry_a_resource_version(etcd):
    server = await ApiServer(api_settings(etcd, bookmark_interval=0.2)).start()
    try:
        async with server.session() as s:
            async with s.get(SVC) as r:
                rv = int((await r.json())["metadata"]["resourceVersion"])
            async with s.get(f"{SVC}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1") as r:
                lines = [json.loads(line) async for line in r.content if line.strip()]
    finally:
        await server.stop()
    marks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert len(marks) >= 2 and all(int(m["object"]["metadata"]["resourceVersion"]) > 0 for m in marks)
    assert marks[0]["object"]["kind"] == "Service"
    # only a watch list's bookmark after its initial events says they have ended
    assert not any("annotations" in m["object"]["metadata"] for m in marks)


def etcd_watchers(endpoint: str) -> int:
    with urllib.request.urlopen(f"http://{endpoint}/metrics") as r:
        for line in r.read().decode().splitlines():
            if line.startswith("etcd_debugging_mvcc_watcher_total "):
                return int(float(line.split()[1]))
    raise AssertionError("etcd did not report its watcher count")


async def test_a_thousand_watchers_share_one_etcd_watch_per_resource(etcd, apiserver, http):
    caches = len(apiserver.state.caches)
    for _ in range(100):  # the caches' etcd watches are set up one after another
        if etcd_watchers(etcd.endpoint) == caches:
            break
        await asyncio.sleep(0.02)
    base = etcd_watchers(etcd.endpoint)
    assert base == caches
    _, lst = await http.get(SVC)
    rv = lst["metadata"]["resourceVersion"]
    async with apiserver.session(limit=0) as s:
        streams = [Stream(s, f"{SVC}?watch=true&resourceVersion={rv}") for _ in range(1000)]
        gauge = apiserver.state.metrics.watchers.labels("services")
        for _ in range(500):
            if gauge._value.get() >= 1000:
                break
            await asyncio.sleep(0.02)
        assert gauge._value.get() == 1000
        assert etcd_watchers(etcd.endpoint) == base
        await http.post(SVC, service("fanout"))
        for st in streams:
            await st.wait_for(1)
        for st in streams:
            await st.close()
    assert all(summary(st.events) == [("ADDED", "fanout")] for st in streams)


async def test_slow_watcher_is_ended_and_others_continue(etcd):
    server = await ApiServer(api_settings(etcd, watcher_buffer=5)).start()
    try:
        cache = server.state.caches["services"]
        slow, _ = cache.subscribe("/registry/services/", None)  # never read
        async with server.session() as s:
            rv = str(cache.revision)
            fast = Stream(s, f"{SVC}?watch=true&resourceVersion={rv}")
            await asyncio.sleep(0.2)
            for i in range(20):
                async with s.post(SVC, json=service(f"s{i}")) as r:
                    assert r.status == 201
            await fast.wait_for(20)
            await fast.close()
        assert slow.closed and slow.overflowed
        assert slow not in cache.subscribers
    finally:
        await server.stop()


async def test_events_queued_when_a_bookmark_is_due_are_still_sent(etcd):
    """A bookmark falls due while events wait in the watcher's queue: the bookmark waits
    (its version must not pass them) and the events go out; the stream must not spin on
    the due bookmark without taking them (it did: every event after that was held back)."""
    server = await ApiServer(api_settings(etcd, bookmark_interval=0.001)).start()
    try:
        async with server.session() as s:
            async with s.get(SVC) as r:
                rv = (await r.json())["metadata"]["resourceVersion"]
            streams = [Stream(s, f"{SVC}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true")
                       for _ in range(4)]
            await asyncio.sleep(0.2)

            async def create(i: int) -> None:
                async with s.post(SVC, json=service(f"due-{i}")) as r:
                    assert r.status == 201
            for round_ in range(5):
                await asyncio.gather(*(create(round_ * 40 + i) for i in range(40)))
            names = {f"due-{i}" for i in range(200)}

            def added(st: Stream) -> list[tuple[str, str]]:
                return summary([e for e in st.events if e["type"] != "BOOKMARK"])

            async def all_seen(st: Stream) -> None:
                while {n for t, n in added(st) if t == "ADDED"} != names:
                    await asyncio.sleep(0.02)
            await asyncio.wait_for(asyncio.gather(*(all_seen(st) for st in streams)), 10)
            for st in streams:
                await st.close()
    finally:
        await server.stop()
    for st in streams:
        assert sorted(n for _, n in added(st)) == sorted(names)  # each once, nothing else
        assert any(e["type"] == "BOOKMARK" for e in st.events)


def test_bookmark_interval_flag_must_be_positive():
    from services.apiserver.settings import parse_args
    assert parse_args([*SessionPki.get().apiserver_flags(), "--bookmark-interval", "0.5"]).bookmark_interval == 0.5
    for bad in ("0", "-1", "nan"):
        with pytest.raises(SystemExit):
            parse_args([*SessionPki.get().apiserver_flags(), "--bookmark-interval", bad])


WATCH_LIST = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"


async def read_until(resp: aiohttp.ClientResponse, done) -> list[dict]:
    events: list[dict] = []
    async for line in resp.content:
        if line.strip():
            events.append(json.loads(line))
            if done(events):
                return events
    return events


def initial_end(event: dict) -> bool:
    return event["type"] == "BOOKMARK" and (
        event["object"]["metadata"].get("annotations") or {}).get("k8s.io/initial-events-end") == "true"


async def test_watch_list_sends_the_state_then_the_initial_events_end_bookmark_then_changes(http, apiserver):
    created = [(await http.post(SVC, service(f"wl-{i}", {"tier": "a" if i % 2 else "b"})))[1]
               for i in range(5)]
    newest = max(int(c["metadata"]["resourceVersion"]) for c in created)
    expected = ["wl-1", "wl-3"]
    async with apiserver.session() as s:
        for query, rv_ok in ((WATCH_LIST, lambda rv: rv >= newest),  # the newest state
                             (WATCH_LIST + f"&resourceVersion={newest}", lambda rv: rv >= newest),
                             (WATCH_LIST + "&resourceVersion=0", lambda rv: rv > 0)):  # any
            async with s.get(f"{SVC}?{query}&labelSelector=tier%3Da") as r:
                assert r.status == 200
                events = await read_until(r, lambda ev: initial_end(ev[-1]))
                *added, mark = events
                assert sorted(e["object"]["metadata"]["name"] for e in added) == sorted(expected)
                assert {e["type"] for e in added} == {"ADDED"}
                rv = int(mark["object"]["metadata"]["resourceVersion"])
                assert rv_ok(rv), (query, rv)
                assert mark["object"]["kind"] == "Service"
                # then the changes after that state, and only those
                await http.post(SVC, service(f"wl-late-{len(query)}", {"tier": "a"}))
                later = await read_until(r, lambda ev: ev[-1]["type"] != "BOOKMARK")
                assert later[-1]["type"] == "ADDED"
                assert later[-1]["object"]["metadata"]["name"] == f"wl-late-{len(query)}"
                assert not any(initial_end(e) for e in later)
                expected.append(f"wl-late-{len(query)}")


async def test_watch_list_from_a_version_not_reached_is_504(http):
    code, status = await http.get(f"{SVC}?{WATCH_LIST}&resourceVersion=999999999")
    assert code == 504 and status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


async def test_send_initial_events_false_starts_from_now(http, apiserver):
    await http.post(SVC, service("before"))
    query = "watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    async with apiserver.session() as s:
        async with s.get(f"{SVC}?{query}") as r:
            assert r.status == 200
            await asyncio.sleep(0.2)
            await http.post(SVC, service("after"))
            events = await read_until(r, lambda ev: ev[-1]["type"] == "ADDED")
    assert [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"] == ["after"]


@pytest.mark.parametrize("query,code,message", [
    ("watch=true&sendInitialEvents=true", 422,
     'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents '
     'requires setting resourceVersionMatch to NotOlderThan, allowWatchBookmarks: Forbidden: '
     'sendInitialEvents requires setting allowWatchBookmarks to true]'),
    ("watch=true&resourceVersionMatch=NotOlderThan", 422,
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch '
     'is forbidden for watch unless sendInitialEvents is provided'),
    ("watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=Exact", 422,
     'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents '
     'requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported '
     'value: "Exact": supported values: "NotOlderThan"]'),
    ("watch=true&sendInitialEvents=maybe", 400,
     'invalid value for sendInitialEvents: "maybe": must be true or false'),
])
async def test_bad_watch_list_options_are_kube_apiservers_errors(http, query, code, message):
    got, status = await http.get(f"{SVC}?{query}")
    assert got == code and status["kind"] == "Status", status
    assert status["message"] == message
