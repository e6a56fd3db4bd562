"""Turning HTTP requests into API operations: path parsing, bodies, query flags."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from kubecore.api import jsonwire
from kubecore.api import resources as R
from kubecore.api.errors import ApiError, bad_request, request_entity_too_large, unsupported_media_type
from kubecore.api.selectors import SelectorError, fields_match, labels_match, parse_field_selector, parse_label_selector
from kubecore.api.types import Obj
from services.apiserver.registry.validation import FieldValidation

FIELD_VALIDATION = web.RequestKey("field_validation", FieldValidation)


@dataclass(frozen=True)
class Target:
    rt: R.ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


class Selectors:
    """The request's labelSelector and fieldSelector (400 if they do not parse)."""

    def __init__(self, request: web.Request, rt: R.ResourceType) -> None:
        try:
            self.labels = parse_label_selector(request.query.get("labelSelector"))
            self.fields = parse_field_selector(request.query.get("fieldSelector"),
                                               rt.field_getters, rt.plural)
        except SelectorError as exc:
            raise bad_request(f"unable to parse requirement: {exc}" if "parse" not in str(exc)
                              else str(exc)) from exc
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
    if rt is None or len(rest) > 3:
        raise NoSuchPath("/".join(rest))
    return Target(rt, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)


JSON_TYPES = {"application/json", "", "application/octet-stream", "text/plain"}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml"}
PATCH_TYPES = {"application/merge-patch+json", "application/json-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"}


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise request_entity_too_large(limit)
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise request_entity_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def content_type(request: web.Request) -> str:
    if "Content-Type" not in request.headers:
        return "application/json"
    return request.content_type.lower()


def decode_body(raw: bytes, ctype: str) -> Any:
    if "protobuf" in ctype:
        raise unsupported_media_type(ctype)
    if not raw.strip():
        raise bad_request("the request body is empty")
    if ctype in YAML_TYPES:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise bad_request(f"error converting YAML to JSON: {str(exc).splitlines()[0]}") from exc
    if ctype in JSON_TYPES or ctype.endswith("+json"):
        try:
            return jsonwire.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
    raise unsupported_media_type(ctype)


def decode_object(raw: bytes, ctype: str) -> dict[str, Any]:
    body = decode_body(raw, ctype)
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
    return json_response(err.to_status(), status=err.code)


def field_validation(request: web.Request) -> FieldValidation:
    """The request's `fieldValidation` (checked when a body is), whose warnings become
    `Warning` headers of the response."""
    fields = request.get(FIELD_VALIDATION)
    if fields is None:
        fields = request[FIELD_VALIDATION] = FieldValidation(request.query.get("fieldValidation"))
    return fields


def warning_headers(request: web.Request) -> list[str]:
    """`Warning` header values (RFC 7234 code 299) for what this request produced."""
    fields = request.get(FIELD_VALIDATION)
    out: list[str] = []
    for text in fields.warnings if fields is not None else []:
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        if f'299 - "{quoted}"' not in out:  # a retried write may say the same thing twice
            out.append(f'299 - "{quoted}"')
    return out


def dry_run(request: web.Request) -> bool:
    """`dryRun=All`: the write is checked and answered, not stored."""
    return request.query.get("dryRun") == "All"
