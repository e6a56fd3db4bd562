"""Serving `?watch=true`: newline-delimited JSON events from the watch cache.

In three parts: `WatchOptions` reads and checks the request's options; `start_point` decides
where the stream starts (a watch list's initial state, a resourceVersion, or now);
`WatchStream` sends what the cache's subscription hands it, asking the pure `next_step`
what to do after each batch (stop, take queued events, send a bookmark, wait).
What the stream needs besides the cache (etcd's newest state, the watch counters) comes
through the narrow `WatchSource`."""
from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from aiohttp import web

from kubecore.api import jsonwire
from kubecore.api.errors import Cause, bad_request, gone, invalid
from kubecore.api.types import Obj
from services.apiserver.endpoints.requests import (
    CLIENT_CHECK_SECONDS,
    Selectors,
    Target,
    client_gone,
    flag,
    int_param,
)
from services.apiserver.storage.paging import NOT_OLDER_THAN, too_large
from services.apiserver.storage.watchcache import Event, Subscriber, WatchCache

MAX_BATCH = 512
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def visible(ev: Event, sel: Selectors) -> tuple[str, Obj] | None:
    """The event as this watcher sees it: an object that stops matching is DELETED, one
    that starts matching is ADDED (kube-apiserver's cacheWatcher does the same)."""
    cur_ok = sel.match(ev.obj)
    if ev.type != "MODIFIED":
        return (ev.type, ev.obj) if cur_ok else None
    prev_ok = sel.match(ev.prev)
    if cur_ok and prev_ok:
        return "MODIFIED", ev.obj
    if cur_ok:
        return "ADDED", ev.obj
    if prev_ok and ev.prev is not None:
        old = dict(ev.prev)
        old["metadata"] = {**ev.prev.get("metadata", {}), "resourceVersion": str(ev.revision)}
        return "DELETED", old
    return None


def _line(etype: str, obj: Any) -> bytes:
    return jsonwire.dumps({"type": etype, "object": obj}) + b"\n"


def _drain(sub: Subscriber, pending: list[Event]) -> tuple[list[Event], Event | None]:
    """Take what is queued, about MAX_BATCH events but never part of a revision: the
    first event past the limit that starts a new revision is handed back as the carry."""
    while not sub.queue.empty():
        nxt = sub.queue.get_nowait()
        if nxt is None:
            sub.closed = True
            break
        if len(pending) >= MAX_BATCH and nxt.revision != pending[-1].revision:
            return pending, nxt
        pending.append(nxt)
    return pending, None


def send_initial_events(raw: str | None) -> bool | None:
    """`sendInitialEvents`: unset, true or false (as Go's ParseBool spells them); 400 else."""
    if raw is None:
        return None
    value = raw.lower()
    if value in ("1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise bad_request(f'invalid value for sendInitialEvents: "{raw}": must be true or false')


def watch_option_causes(send_initial: bool | None, match: str, bookmarks: bool,
                        token: str) -> list[Cause]:
    """kube-apiserver's validation of a watch's options (the WatchList feature enabled)."""
    field, causes = "resourceVersionMatch", []
    if send_initial is not None:
        if match != NOT_OLDER_THAN:
            causes.append(Cause(field, f"Forbidden: sendInitialEvents requires setting "
                                f"resourceVersionMatch to {NOT_OLDER_THAN}", "FieldValueForbidden"))
        if not bookmarks:
            causes.append(Cause("allowWatchBookmarks", "Forbidden: sendInitialEvents requires "
                                "setting allowWatchBookmarks to true", "FieldValueForbidden"))
    if match:
        if send_initial is None:
            causes.append(Cause(field, "Forbidden: resourceVersionMatch is forbidden for watch "
                                "unless sendInitialEvents is provided", "FieldValueForbidden"))
        if match != NOT_OLDER_THAN:
            causes.append(Cause(field, f'Unsupported value: "{match}": supported values: '
                                f'"{NOT_OLDER_THAN}"', "FieldValueNotSupported"))
        if token:
            causes.append(Cause(field, "Forbidden: resourceVersionMatch is forbidden when "
                                "continue is provided", "FieldValueForbidden"))
    return causes


def _bookmark(t: Target, revision: int, initial_events_end: bool = False) -> bytes:
    meta: Obj = {"resourceVersion": str(revision)}
    if initial_events_end:  # only this one: a client takes it as "your cache is complete"
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return _line("BOOKMARK", {"kind": t.rt.kind, "apiVersion": t.rt.api_version,
                              "metadata": meta})


class WatchSource(Protocol):
    """What a watch reads besides the watch cache, and whom it tells what it does."""

    async def list_now(self) -> tuple[list[Obj], int]:
        """The newest state of the watched collection, read from etcd, and its revision."""

    async def revision_now(self) -> int:
        """etcd's newest revision: where a watch starts "now"."""

    def opened(self) -> None: ...

    def closed(self) -> None: ...

    def sent(self, events: int) -> None: ...


@dataclass(frozen=True)
class WatchOptions:
    rv: str  # resourceVersion as given ("" unset, "0" any)
    since: int | None  # resourceVersion as a revision (None: unset or 0)
    timeout: int | None  # timeoutSeconds
    bookmarks: bool  # allowWatchBookmarks
    send_initial: bool | None  # sendInitialEvents

    @classmethod
    def from_request(cls, request: web.Request) -> WatchOptions:
        """The options, checked as kube-apiserver does: 400 for what does not parse, 422 for
        combinations it refuses."""
        rv = request.query.get("resourceVersion", "")
        since: int | None = None
        if rv not in ("", "0"):
            try:
                since = int(rv)
            except ValueError:
                raise bad_request(f'invalid resourceVersion "{rv}": must be an integer') from None
        timeout = int_param(request, "timeoutSeconds")
        bookmarks = flag(request, "allowWatchBookmarks")
        send_initial = send_initial_events(request.query.get("sendInitialEvents"))
        causes = watch_option_causes(send_initial, request.query.get("resourceVersionMatch", ""),
                                     bookmarks, request.query.get("continue", ""))
        if causes:
            raise invalid("ListOptions", "", causes, "meta.k8s.io")
        return cls(rv, since, timeout, bookmarks, send_initial)


async def start_point(opts: WatchOptions, cache: WatchCache, prefix: str,
                      source: WatchSource) -> tuple[list[Event] | None, int | None]:
    """-> (a watch list's initial state or None, the revision the changes start after; None:
    the cache's current state as ADDED events, then its changes)."""
    since = opts.since
    if opts.send_initial and opts.rv != "0":
        # the newest state (resourceVersion unset), or one not older than the one asked for
        items, at = await source.list_now()
        if since is not None and at < since:
            raise too_large(since, at)
        return [Event(at, "ADDED", "", obj, None) for obj in items], at
    if opts.send_initial:  # resourceVersion=0: any state will do, the cache's
        return cache.snapshot(prefix)
    if opts.send_initial is False and since is None:  # no initial events: from now on
        # "now" is etcd's newest revision, which the cache may not have applied yet
        since = cache.revision if opts.rv == "0" else max(cache.revision, await source.revision_now())
    return None, since


class Step(enum.Enum):
    STOP = "stop"
    TAKE_CARRY = "take-carry"    # the event held back from the last batch starts the next
    TAKE_QUEUED = "take-queued"  # events came in while the last batch was written
    WAIT = "wait"                # for the next event, at most `wait` seconds


class Next(NamedTuple):
    """A tuple, not a dataclass: a stream asks once per batch, and this is its cheapest form."""
    step: Step
    bookmark: bool = False  # send a BOOKMARK before waiting
    wait: float = 0.0
    next_bookmark: float = 0.0  # when the one after is due


_STOP, _TAKE_CARRY, _TAKE_QUEUED = Next(Step.STOP), Next(Step.TAKE_CARRY), Next(Step.TAKE_QUEUED)


def next_step(*, closed: bool, queued: bool, carry: bool, now: float, deadline: float | None,
              bookmarks: bool, next_bookmark: float, bookmark_interval: float,
              check_every: float = CLIENT_CHECK_SECONDS) -> Next:
    """What a watch stream does after sending a batch (pure)."""
    if closed and not queued and not carry:
        return _STOP
    if deadline is not None and now >= deadline:
        return _STOP  # a carried event starts a revision this stream sent nothing of
    if carry:
        return _TAKE_CARRY
    if queued:
        # send them before any bookmark (and never wait with a zero timeout, which takes nothing)
        return _TAKE_QUEUED
    # a bookmark only with nothing queued: its version must not pass an event this stream
    # has yet to send
    bookmark = bookmarks and now >= next_bookmark
    if bookmark:
        next_bookmark = now + bookmark_interval
    wait = check_every
    if deadline is not None:
        wait = min(wait, max(deadline - now, 0))
    if bookmarks:
        wait = min(wait, max(next_bookmark - now, 0))
    return Next(Step.WAIT, bookmark, wait, next_bookmark)


class WatchStream:
    """One open watch: the subscription's events, filtered and encoded, onto the response."""

    def __init__(self, request: web.Request, resp: web.StreamResponse, t: Target, sel: Selectors,
                 cache: WatchCache, sub: Subscriber, source: WatchSource, *,
                 render: Callable[[str, Obj], Any] | None, opts: WatchOptions,
                 bookmark_interval: float) -> None:
        self.request, self.resp, self.t, self.sel = request, resp, t, sel
        self.cache, self.sub, self.source = cache, sub, source
        self.render = render
        self.bookmarks = opts.bookmarks
        self.bookmark_interval = bookmark_interval
        now = time.monotonic()
        self.deadline = now + opts.timeout if opts.timeout else None
        self.next_bookmark = now + bookmark_interval
        self.carry: Event | None = None  # the first event of a revision not yet in a batch

    def encode(self, etype: str, obj: Obj, ev: Event | None = None) -> bytes:
        if self.render is not None:
            return _line(etype, self.render(etype, obj))
        if ev is not None and etype == ev.type and obj is ev.obj:
            return ev.json_line()
        return _line(etype, obj)

    async def send_initial(self, initial: list[Event], since: int | None) -> None:
        """A watch list's initial state, then the bookmark that ends it."""
        out = [self.encode("ADDED", ev.obj, ev) for ev in initial if self.sel.match(ev.obj)]
        out.append(_bookmark(self.t, since or 0, initial_events_end=True))
        await self.resp.write(b"".join(out))
        self.source.sent(len(out) - 1)

    async def send(self, pending: list[Event]) -> None:
        if self.sub.cut_revision is not None:
            pending = [ev for ev in pending if ev.revision < self.sub.cut_revision]
        out = []
        for ev in pending:
            seen = visible(ev, self.sel)
            if seen is not None:
                out.append(self.encode(seen[0], seen[1], ev))
        if out:
            await self.resp.write(b"".join(out))
            self.source.sent(len(out))

    async def run(self, backlog: list[Event]) -> None:
        pending: list[Event] | None = backlog
        while pending is not None:
            await self.send(pending)
            pending = await self._next_batch()

    async def _next_batch(self) -> list[Event] | None:
        """The events to send next, or None when the stream ends."""
        while True:
            nxt = next_step(closed=self.sub.closed, queued=not self.sub.queue.empty(),
                            carry=self.carry is not None, now=time.monotonic(),
                            deadline=self.deadline, bookmarks=self.bookmarks,
                            next_bookmark=self.next_bookmark,
                            bookmark_interval=self.bookmark_interval)
            if nxt.step is Step.STOP:
                return None
            if nxt.step is Step.TAKE_CARRY and self.carry is not None:
                pending, self.carry = _drain(self.sub, [self.carry])
                return pending
            if nxt.step is Step.TAKE_QUEUED:
                pending, self.carry = _drain(self.sub, [])
                return pending
            if nxt.bookmark:
                await self.resp.write(_bookmark(self.t, self.cache.revision))
            self.next_bookmark = nxt.next_bookmark
            try:
                first = await asyncio.wait_for(self.sub.queue.get(), timeout=nxt.wait)
            except TimeoutError:
                if client_gone(self.request):
                    return None
                continue
            if first is None:
                return None
            pending, self.carry = _drain(self.sub, [first])
            return pending


def _subscribe(cache: WatchCache, prefix: str, since: int | None) -> tuple[Subscriber, list[Event]]:
    """A subscription to the cache's changes after `since`, and the events before them to
    send first (the current state as ADDED events when `since` is None)."""
    if since is None:
        current, _ = cache.snapshot(prefix)
        sub, _ = cache.subscribe(prefix, None)
        return sub, current
    sub, backlog = cache.subscribe(prefix, since)
    return sub, list(backlog)


async def serve_watch(request: web.Request, t: Target, sel: Selectors, cache: WatchCache,
                      source: WatchSource, *, bookmark_interval: float,
                      render: Callable[[str, Obj], Any] | None) -> web.StreamResponse:
    """A watch. With sendInitialEvents=true (a "watch list", client-go's WatchListClient)
    the stream starts with the state at the requested version as ADDED events, then a
    BOOKMARK annotated k8s.io/initial-events-end at that state's resourceVersion, then
    the changes after it."""
    opts = WatchOptions.from_request(request)
    await asyncio.wait_for(cache.ready.wait(), timeout=30)
    prefix = t.rt.key_prefix(t.namespace)
    initial, since = await start_point(opts, cache, prefix, source)

    resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                       "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if since is not None and cache.too_old(since):
        status = gone(f"too old resource version: {since} ({cache.floor})").to_status()
        await resp.write(jsonwire.dumps_go({"type": "ERROR", "object": status}))
        await resp.write_eof()
        return resp

    sub, backlog = _subscribe(cache, prefix, since)
    source.opened()
    stream = WatchStream(request, resp, t, sel, cache, sub, source, render=render, opts=opts,
                         bookmark_interval=bookmark_interval)
    try:
        if initial is not None:
            await stream.send_initial(initial, since)
        await stream.run(backlog)
    except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        cache.unsubscribe(sub)
        source.closed()
    try:
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError, RuntimeError):
        pass
    return resp
