"""Serving `?watch=true`: newline-delimited JSON events from the watch cache."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kubecore.api import jsonwire
from kubecore.api.errors import Cause, bad_request, gone, invalid
from kubecore.api.types import Obj
from services.apiserver.paging import NOT_OLDER_THAN, too_large
from services.apiserver.requests import CLIENT_CHECK_SECONDS, Target, client_gone, flag, int_param
from services.apiserver.watchcache import Event, Subscriber, WatchCache

if TYPE_CHECKING:
    from services.apiserver.handlers import Selectors

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


async def serve_watch(request: web.Request, t: Target, sel: Selectors, cache: WatchCache,
                      *, bookmark_interval: float, render: Callable[[str, Obj], Any] | None,
                      on_open: Callable[[], None], on_close: Callable[[], None],
                      count: Callable[[int], None],
                      list_now: Callable[[], Awaitable[tuple[list[Obj], int]]],
                      revision_now: Callable[[], Awaitable[int]]) -> web.StreamResponse:
    """A watch. With sendInitialEvents=true (a "watch list", client-go's WatchListClient)
    the stream starts with the state at the requested version as ADDED events, then a
    BOOKMARK annotated k8s.io/initial-events-end at that state's resourceVersion, then
    the changes after it; `list_now` reads the newest state from etcd for that, and
    `revision_now` etcd's newest revision, where a watch starts "now"."""
    rv_raw = request.query.get("resourceVersion", "")
    since: int | None = None
    if rv_raw not in ("", "0"):
        try:
            since = int(rv_raw)
        except ValueError:
            raise bad_request(f'invalid resourceVersion "{rv_raw}": must be an integer') from None
    timeout = int_param(request, "timeoutSeconds")
    bookmarks = flag(request, "allowWatchBookmarks")
    send_initial = send_initial_events(request.query.get("sendInitialEvents"))
    causes = watch_option_causes(send_initial, request.query.get("resourceVersionMatch", ""),
                                 bookmarks, request.query.get("continue", ""))
    if causes:
        raise invalid("ListOptions", "", causes, "meta.k8s.io")
    await asyncio.wait_for(cache.ready.wait(), timeout=30)

    prefix = t.rt.key_prefix(t.namespace)
    initial: list[Event] | None = None  # a watch list's initial state, then its bookmark
    if send_initial and rv_raw != "0":
        # the newest state (resourceVersion unset), or one not older than the one asked for
        items, at = await list_now()
        if since is not None and at < since:
            raise too_large(since, at)
        initial = [Event(at, "ADDED", "", obj, None) for obj in items]
        since = at
    elif send_initial:  # resourceVersion=0: any state will do, the cache's
        initial, since = cache.snapshot(prefix)
    elif send_initial is False and since is None:  # no initial events: from now on
        # "now" is etcd's newest revision, which the cache may not have applied yet
        since = cache.revision if rv_raw == "0" else max(cache.revision, await revision_now())

    resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                       "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)

    def encode(etype: str, obj: Obj, ev: Event | None = None) -> bytes:
        if render is not None:
            return _line(etype, render(etype, obj))
        if ev is not None and etype == ev.type and obj is ev.obj:
            return ev.json_line()
        return _line(etype, obj)

    if since is not None and cache.too_old(since):
        status = gone(f"too old resource version: {since} ({cache.floor})").to_status()
        await resp.write(_line("ERROR", status))
        await resp.write_eof()
        return resp

    if since is None:
        current, _ = cache.snapshot(prefix)
        sub, backlog = cache.subscribe(prefix, None)
        backlog = current
    else:
        sub, backlog = cache.subscribe(prefix, since)
    on_open()
    deadline = time.monotonic() + timeout if timeout else None
    next_bookmark = time.monotonic() + bookmark_interval
    carry: Event | None = None  # the first event of a revision not yet in a batch
    try:
        if initial is not None:
            out = [encode("ADDED", ev.obj, ev) for ev in initial if sel.match(ev.obj)]
            out.append(_bookmark(t, since or 0, initial_events_end=True))
            await resp.write(b"".join(out))
            count(len(out) - 1)
        pending: list[Event] = list(backlog)
        while True:
            if sub.cut_revision is not None:
                pending = [ev for ev in pending if ev.revision < sub.cut_revision]
            if pending:
                out = []
                for ev in pending:
                    seen = visible(ev, sel)
                    if seen is not None:
                        out.append(encode(seen[0], seen[1], ev))
                if out:
                    await resp.write(b"".join(out))
                    count(len(out))
                pending = []
            if sub.closed and sub.queue.empty() and carry is None:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break  # `carry` starts a revision this stream has sent nothing of
            if carry is not None:
                pending, carry = _drain(sub, [carry])
                continue
            if not sub.queue.empty():
                # events came in while the last batch was written: send them before any
                # bookmark (and never wait with a zero timeout, which takes nothing)
                pending, carry = _drain(sub, [])
                continue
            if bookmarks and now >= next_bookmark:
                # only with nothing queued: the bookmark's version must not pass an event
                # this stream has yet to send
                await resp.write(_bookmark(t, cache.revision))
                next_bookmark = now + bookmark_interval
            wait = CLIENT_CHECK_SECONDS
            if deadline is not None:
                wait = min(wait, max(deadline - now, 0))
            if bookmarks:
                wait = min(wait, max(next_bookmark - now, 0))
            try:
                first = await asyncio.wait_for(sub.queue.get(), timeout=wait)
            except TimeoutError:
                if client_gone(request):
                    break
                continue
            if first is None:
                break
            pending, carry = _drain(sub, [first])
    except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        cache.unsubscribe(sub)
        on_close()
    try:
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError, RuntimeError):
        pass
    return resp
