"""The REST client: the one module in kubecore that talks HTTP to the API server.

Everything above it (reflectors, informers, controllers) speaks in `ResourceType`s,
plain JSON objects and three kinds of failure:

- `kubecore.api.errors.ApiError`: the server answered with a `Status` (404, 409, 422, ...);
- `Expired`: an `ApiError` with code 410, on its own so that a reflector can relist
  without looking at codes;
- `ApiUnavailable`: no answer at all (refused, reset, stream cut short, timed out).
  The caller decides whether to retry; the client never retries by itself, so a
  write is never silently applied twice.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from kubecore.api import jsonwire
from kubecore.api.errors import ApiError
from kubecore.api.resources import PODS, ResourceType
from kubecore.api.types import Obj
from kubecore.client.config import ClientConfig, load_kubeconfig

log = logging.getLogger("kubecore.client.rest")
PatchType = Literal["merge", "strategic", "json", "apply"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
WATCH_EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")


class ApiUnavailable(Exception):
    """The API server could not be reached, or the connection broke mid-answer."""


class Expired(ApiError):
    """410: the resourceVersion asked for is older than the server keeps; relist."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(410, "Expired", message, details)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: Obj

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


def error_from_status(code: int, body: Any, fallback: str = "") -> ApiError:
    """An `ApiError` (or `Expired`) from a `Status` body; `code` wins when the body has none."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        code = int(body.get("code") or code)
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or fallback)
        details = body.get("details")
        if code == 410:
            return Expired(message, details)
        return ApiError(code, reason or _reason_for(code), message, details)
    if code == 410:
        return Expired(fallback or "resource version expired")
    return ApiError(code, _reason_for(code), fallback or f"the server answered {code}")


def _reason_for(code: int) -> str:
    return {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
            415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}.get(code, "Unknown")


def resource_path(rt: ResourceType, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """/api/v1/namespaces/<ns>/pods/<name>/<sub>, or /apis/<group>/<version>/... ."""
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    parts = [base]
    if rt.namespaced and namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(rt.plural)
    if name is not None:
        if not name:
            raise ValueError(f"empty name for {rt.plural}")
        parts.append(name)
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ValueError("the object has no metadata.name")
    return meta


class ApiClient:
    """An asyncio client for one cluster's API server, given as a `ClientConfig` (TLS and
    credentials) or a bare URL. Create it inside the event loop that uses it; `close()` (or
    `async with`) releases the connection pools.

    A config naming several API servers (`more_servers`) fails over between them: a request
    whose connection is refused or times out before anything was sent, and a read whose
    connection broke before an answer, go to the next server at once; a write that broke after
    it was sent, or a request a server answers 503 (its storage not answering), is not sent
    again (it may have taken effect) but raises, and the client's next requests go to the next
    server. The client stays with a server that answers, as client-go stays with its endpoint."""

    def __init__(self, config: ClientConfig | str, *, timeout: float = 30.0,
                 connect_timeout: float = 5.0) -> None:
        self.config = ClientConfig(server=config) if isinstance(config, str) else config
        self.servers = [self.config.server.rstrip("/"), *(s.rstrip("/") for s in self.config.more_servers)]
        self._current = 0
        self._tried = self.servers[0]  # the server the last connection attempt went to
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    @property
    def base_url(self) -> str:
        """The API server requests go to now."""
        return self.servers[self._current]

    # -- session ---------------------------------------------------------------------
    def _http(self) -> aiohttp.ClientSession:
        session = self._sessions.get(self.base_url)
        if session is None or session.closed:
            ctx = self.config.ssl_context()
            session = self._sessions[self.base_url] = aiohttp.ClientSession(
                self.base_url,
                connector=aiohttp.TCPConnector(ssl=ctx if ctx is not None else True),
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout),
                headers={"Accept": "application/json", "User-Agent": "minicluster-kubecore"},
            )
        return session

    def _fail_over(self, failed: str) -> None:
        """The next server takes the requests after `failed` did not answer (unless another
        request has moved on already)."""
        if len(self.servers) > 1 and self.base_url == failed:
            self._current = (self._current + 1) % len(self.servers)
            log.warning("API server %s did not answer: using %s", failed, self.base_url)

    async def _open(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """The response of the first server, in turn, that takes the connection."""
        for attempt in range(len(self.servers)):
            base = self._tried = self.base_url
            try:
                return await self._http().request(method, path, **kwargs)
            except aiohttp.ClientConnectorError:
                # nothing was sent: any request may go to the next server
                self._fail_over(base)
                if attempt == len(self.servers) - 1:
                    raise
            except (TimeoutError, aiohttp.ClientError, OSError):
                # it broke after it was sent (a kept-alive connection to a server that died):
                # only a read may be sent again, as client-go retries reads on a broken connection
                self._fail_over(base)
                if method != "GET" or attempt == len(self.servers) - 1:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one request -----------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        """Send one request; return the decoded JSON answer or raise ApiError/ApiUnavailable."""
        data = None
        headers = self.config.headers()
        if body is not None:
            data = jsonwire.dumps(body)
            headers["Content-Type"] = content_type
        try:
            resp = await self._open(method, path, params=params, data=data, headers=headers)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ApiUnavailable(f"{method} {self._tried}{path}: {_describe(exc)}") from exc
        used = self.base_url
        try:
            async with resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._fail_over(used)
            raise ApiUnavailable(f"{method} {used}{path}: {_describe(exc)}") from exc
        try:
            decoded = jsonwire.loads(raw) if raw else None
        except ValueError:
            decoded = None
        if status >= 400:
            if status == 503:
                self._fail_over(used)
            text = raw.decode(errors="replace").strip()[:500]
            raise error_from_status(status, decoded, text)
        if decoded is None and raw:
            raise ApiError(500, "InternalError", f"{method} {path}: the answer is not JSON")
        return decoded

    async def _object(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Obj:
        """`request` for the verbs, whose answers are API objects (or lists, or a Status)."""
        answer: Obj = await self.request(method, path, params=params, body=body, content_type=content_type)
        return answer

    # -- verbs -----------------------------------------------------------------------
    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        return await self._object("GET", resource_path(rt, namespace, name))

    async def list(self, rt: ResourceType, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   resource_version: str | None = None) -> tuple[list[Obj], str]:
        """-> (items, the list's resourceVersion), the version to watch from."""
        params = _selector_params(label_selector, field_selector)
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        body = await self.request("GET", resource_path(rt, namespace), params=params)
        items = body.get("items") or []
        for item in items:  # list items may come bare; watch objects carry kind: make them alike
            item.setdefault("kind", rt.kind)
            item.setdefault("apiVersion", rt.api_version)
        return items, str((body.get("metadata") or {}).get("resourceVersion") or "")

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        if rt.namespaced and not ns:
            ns = "default"
        return await self._object("POST", resource_path(rt, ns), body=obj)

    async def replace(self, rt: ResourceType, obj: Obj) -> Obj:
        """PUT the whole object; a metadata.resourceVersion in it makes this a compare-and-swap."""
        meta = _meta(obj)
        return await self._object("PUT", resource_path(rt, meta.get("namespace"), meta["name"]),
                                  body=obj)

    async def update_status(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = _meta(obj)
        return await self._object(
            "PUT", resource_path(rt, meta.get("namespace"), meta["name"], "status"), body=obj)

    async def patch(self, rt: ResourceType, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None) -> Obj:
        try:
            ctype = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        params = {"fieldManager": field_manager} if field_manager else None
        if patch_type == "apply" and not field_manager:
            raise ValueError("an apply patch needs a field_manager")
        return await self._object("PATCH", resource_path(rt, namespace, name, subresource),
                                  params=params, body=patch, content_type=ctype)

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None,
                     propagation_policy: str | None = None) -> Obj:
        """Delete (or, for graceful kinds and finalizers, mark for deletion); returns the
        object as the server last had it. `propagation_policy`: Background, Orphan or
        Foreground (`kubecore.api.propagation`)."""
        params: dict[str, str] = {}
        body: Obj | None = None
        if preconditions or propagation_policy:
            # a DeleteOptions body; the server then reads no options from the query
            body = {"kind": "DeleteOptions", "apiVersion": "v1"}
            if preconditions:
                body["preconditions"] = dict(preconditions)
            if propagation_policy:
                body["propagationPolicy"] = propagation_policy
            if grace_period_seconds is not None:
                body["gracePeriodSeconds"] = grace_period_seconds
        elif grace_period_seconds is not None:
            params["gracePeriodSeconds"] = str(grace_period_seconds)
        return await self._object("DELETE", resource_path(rt, namespace, name), params=params,
                                  body=body)

    async def bind(self, pod_namespace: str, pod_name: str, node_name: str) -> Obj:
        """Assign a pod to a node, as the scheduler does: POST pods/<name>/binding."""
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": pod_name, "namespace": pod_namespace},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        return await self._object("POST", resource_path(PODS, pod_namespace, pod_name, "binding"),
                                  body=binding)

    # -- watch -----------------------------------------------------------------------
    async def watch(self, rt: ResourceType, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncGenerator[WatchEvent, None]:
        """Events after `resource_version` (or the current objects as ADDED, then events,
        without one). Ends when the server ends the stream (timeoutSeconds, shutdown);
        raises `Expired` on a 410, `ApiError` on another ERROR event, `ApiUnavailable`
        when the connection breaks. Close it early with `aclose()` (or
        `contextlib.aclosing`)."""
        params = _selector_params(label_selector, field_selector)
        params["watch"] = "true"
        if resource_version:
            params["resourceVersion"] = resource_version
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(int(timeout_seconds))
        # No total timeout on a stream. A read timeout only when the server promised to end
        # it: then silence well past that promise means the connection is dead.
        read_timeout = None if timeout_seconds is None else timeout_seconds + 30
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout,
                                        sock_read=read_timeout)
        path = resource_path(rt, namespace)
        try:
            resp = await self._open("GET", path, params=params, timeout=timeout,
                                    headers=self.config.headers())
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ApiUnavailable(f"watch {self._tried}{path}: {_describe(exc)}") from exc
        used = self.base_url
        try:
            async with resp:
                if resp.status >= 400:
                    if resp.status == 503:
                        self._fail_over(used)
                    raw = await resp.read()
                    try:
                        decoded = jsonwire.loads(raw)
                    except ValueError:
                        decoded = None
                    raise error_from_status(resp.status, decoded,
                                            raw.decode(errors="replace").strip()[:500])
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        event = _decode_event(line)
                        if event is not None:
                            yield event
                if buffer.strip():
                    event = _decode_event(buffer)
                    if event is not None:
                        yield event
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._fail_over(used)
            raise ApiUnavailable(f"watch {used}{path}: {_describe(exc)}") from exc


def _decode_event(line: bytes) -> WatchEvent | None:
    line = line.strip()
    if not line:
        return None
    try:
        raw = jsonwire.loads(line)
    except ValueError as exc:
        raise ApiError(500, "InternalError", f"undecodable watch event: {line[:200]!r}") from exc
    etype, obj = raw.get("type"), raw.get("object")
    if etype == "ERROR":
        raise error_from_status(int((obj or {}).get("code") or 500), obj, "watch error")
    if etype not in WATCH_EVENT_TYPES or not isinstance(obj, dict):
        log.warning("ignoring a watch event of type %r", etype)
        return None
    return WatchEvent(etype, obj)


def _selector_params(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- kubeconfig -----------------------------------------------------------------------

def from_kubeconfig(path: str | Path, *, context: str | None = None,
                    timeout: float = 30.0) -> ApiClient:
    """A client for a kubeconfig's current (or named) context: its server, CA and user."""
    return ApiClient(load_kubeconfig(path, context=context), timeout=timeout)
