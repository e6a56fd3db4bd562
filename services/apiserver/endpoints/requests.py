"""Turning HTTP requests into API operations: path parsing, bodies, query flags."""
from __future__ import annotations

import asyncio
import logging
import unicodedata
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from kubecore.api import jsonwire, protowire, yamlwire
from kubecore.api import resources as R
from kubecore.api.errors import ApiError, bad_request, request_entity_too_large, unsupported_media_type
from kubecore.api.selectors import SelectorError, fields_match, labels_match, parse_field_selector, parse_label_selector
from kubecore.api.types import Obj
from services.apiserver.registry.validation import FieldValidation

FIELD_VALIDATION = web.RequestKey("field_validation", FieldValidation)
log = logging.getLogger("apiserver")


@dataclass(frozen=True)
class Target:
    rt: R.ResourceType
    namespace: str | None
    name: str | None
    sub: str | None
    tail: str = ""  # nodes/<name>/proxy/<tail>: the path on the node agent



class Selectors:
    """The request's labelSelector and fieldSelector (400 if they do not parse)."""

    def __init__(self, request: web.Request, rt: R.ResourceType) -> None:
        try:
            self.labels = parse_label_selector(request.query.get("labelSelector"))
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        try:
            self.fields = parse_field_selector(request.query.get("fieldSelector"),
                                               rt.field_getters, rt.plural)
        except SelectorError as exc:
            raise bad_request(f"unable to parse requirement: {exc}") from exc
        self.rt = rt
        self.empty = not self.labels and not self.fields

    def match(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.empty:
            return True
        return (labels_match(self.labels, (obj.get("metadata") or {}).get("labels"))
                and fields_match(self.fields, obj, self.rt.field_getters))


class NoSuchPath(Exception):
    pass


def parse_path(path: str) -> tuple[str, str, list[str]]:
    """-> (group, version, rest) for /api/v1/... and /apis/<group>/<version>/..."""
    segs = [s for s in path.split("/") if s]
    if segs and segs[0] == "api" and len(segs) >= 2:
        return "", segs[1], segs[2:]
    if segs and segs[0] == "apis" and len(segs) >= 3:
        return segs[1], segs[2], segs[3:]
    raise NoSuchPath(path)


def resolve(group: str, version: str, rest: list[str]) -> Target:
    if not rest:
        raise NoSuchPath("/".join(rest))
    if rest[0] == "namespaces" and len(rest) >= 3:
        rt = R.by_path(group, version, rest[2])
        if rt is not None and rt.namespaced and len(rest) <= 5:
            return Target(rt, rest[1], rest[3] if len(rest) > 3 else None,
                          rest[4] if len(rest) > 4 else None)
    rt = R.by_path(group, version, rest[0])
    if rt is R.NODES and len(rest) > 3 and rest[2] == "proxy":
        return Target(rt, None, rest[1], "proxy", "/".join(rest[3:]))
    if rt is None or len(rest) > 3:
        raise NoSuchPath("/".join(rest))
    return Target(rt, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)


JSON_TYPES = {"application/json", "", "application/octet-stream", "text/plain"}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml"}
PATCH_TYPES = {"application/merge-patch+json", "application/json-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"}


# How long a request body may take to arrive, as a whole: kube-apiserver's request timeout
# (--request-timeout, 1m) covers the body of every request that is not long-running.
BODY_TIMEOUT_SECONDS = 60.0
DEFAULT_BODY_LIMIT = 3 * 1024 * 1024


def body_timed_out(timeout: float) -> ApiError:
    """kube-apiserver's timeout filter answers 504 "Timeout: request did not complete within
    the allotted timeout" for a whole request; a body that does not arrive is the client's
    doing, so here it is a 408 (Request Timeout), with the same reason and words."""
    return ApiError(408, "Timeout", "Timeout: request did not complete within the allotted "
                    f"timeout (the request body took longer than {timeout:g}s)")


async def read_body(request: web.Request, limit: int = DEFAULT_BODY_LIMIT,
                    timeout: float = BODY_TIMEOUT_SECONDS) -> bytes:
    """The whole body, at most `limit` bytes, within `timeout` seconds (a client trickling a
    body byte by byte would otherwise hold its connection and its handler for ever). A
    client that leaves mid-body is one line in the log and a 400 nobody reads."""
    if request.content_length is not None and request.content_length > limit:
        raise request_entity_too_large(limit)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await request.content.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise request_entity_too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise body_timed_out(timeout) from None
    except (ConnectionResetError, HttpProcessingError) as exc:
        log.info("%s %s from %s: the request body ended early: %s", request.method,
                 request.path, request.remote, exc)
        raise bad_request("the request body ended before it was complete") from None
    return b"".join(chunks)


# Answers that leave a body unread because it comes too slowly: aiohttp would go on reading
# the rest for up to 10 s (its lingering time) before it closes, so the connection is closed
# at once instead. (A 413 keeps the lingering: a client still sending its large body then
# gets to read the answer.)
UNREAD_BODY_CODES = frozenset({408})


async def answer_and_close(request: web.Request, resp: web.Response) -> None:
    resp.force_close()
    await resp.prepare(request)
    await resp.write_eof()
    request.protocol.force_close()  # after the answer: the transport sends it, then closes


def content_type(request: web.Request) -> str:
    if "Content-Type" not in request.headers:
        return "application/json"
    return request.content_type.lower()


def decode_body(raw: bytes, ctype: str, limit: int) -> Any:
    """A request body as JSON values: nested at most `jsonwire.MAX_DEPTH` levels, and (for
    YAML, whose aliases expand) no larger decoded than `limit` bytes of JSON, whatever the
    request goes on to do (a dry run stores nothing, so etcd's own limit would not apply)."""
    if "protobuf" in ctype:
        return _decode_protobuf(raw, ctype)
    if not raw.strip():
        raise bad_request("the request body is empty")
    if ctype in YAML_TYPES:
        try:
            value = yamlwire.loads(raw)
        except yaml.YAMLError as exc:
            raise bad_request(f"error converting YAML to JSON: {str(exc).splitlines()[0]}") from exc
        _check_decoded_size(value, limit)
        return value
    if ctype in JSON_TYPES or ctype.endswith("+json"):
        try:
            return jsonwire.loads_request(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
    raise unsupported_media_type(ctype)


def _check_decoded_size(value: Any, limit: int) -> None:
    try:
        size = len(jsonwire.dumps(value))
    except (TypeError, ValueError):
        return  # not JSON at all: refused later, as the object is checked
    if size > limit:
        raise request_entity_too_large(limit)


def _decode_protobuf(raw: bytes, ctype: str) -> Any:
    """The kinds kubectl posts only as protobuf (`kubecore.api.protowire`); others stay 415."""
    try:
        obj = protowire.decode(raw)
    except (protowire.ProtobufError, UnicodeDecodeError) as exc:
        raise bad_request(f"unable to decode the protobuf body: {exc}") from exc
    if obj is None:
        raise unsupported_media_type(ctype)
    return obj


def decode_object(raw: bytes, ctype: str, limit: int) -> dict[str, Any]:
    body = decode_body(raw, ctype, limit)
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object (a Kubernetes object)")
    return body


# A long response that is quiet (a watch with no events, a followed log with no output)
# writes nothing, and only a write would notice that its client left (aiohttp does not
# cancel the handler then): such a response looks at the connection this often.
CLIENT_CHECK_SECONDS = 1.0


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1", "yes")


def int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{raw}" is not an integer') from None


def json_response(obj: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=jsonwire.dumps(obj), status=status,
                        content_type=content_type)


def error_response(err: ApiError) -> web.Response:
    """The Status of a failure, in kube-apiserver's exact bytes (`jsonwire.dumps_go`)."""
    return web.Response(body=jsonwire.dumps_go(err.to_status()), status=err.code,
                        content_type="application/json")


def field_validation(request: web.Request) -> FieldValidation:
    """The request's `fieldValidation` (checked when a body is), whose warnings become
    `Warning` headers of the response."""
    fields = request.get(FIELD_VALIDATION)
    if fields is None:
        fields = request[FIELD_VALIDATION] = FieldValidation(request.query.get("fieldValidation"))
    return fields


def warning_headers(request: web.Request) -> list[str]:
    """`Warning` header values (RFC 7234 code 299) for what this request produced, as
    apimachinery's NewWarningHeader writes them: a text with a control character is left
    out (the header could not carry it, and the write it warns about is done), quotes and
    backslashes escaped."""
    fields = request.get(FIELD_VALIDATION)
    out: list[str] = []
    for text in fields.warnings if fields is not None else []:
        if any(unicodedata.category(ch) == "Cc" for ch in text):
            continue
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        if f'299 - "{quoted}"' not in out:  # a retried write may say the same thing twice
            out.append(f'299 - "{quoted}"')
    return out


def dry_run(request: web.Request) -> bool:
    """`dryRun=All`: the write is checked and answered, not stored."""
    return request.query.get("dryRun") == "All"
