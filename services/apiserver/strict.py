"""Server-side field validation: the `fieldValidation` query parameter.

kubectl validates nothing itself once the OpenAPI document says the server takes
`fieldValidation`; it sends `Strict` (the default of `--validate`), `Warn` or
`Ignore` and expects kube-apiserver's answers: a 400 `strict decoding error: unknown
field "spec.x"`, or a `Warning: 299 - "unknown field \\"spec.x\\""` header. Without
the parameter the server warns, as kube-apiserver does.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, bad_request
from kubecore.api.models import unknown_fields

WARNINGS_KEY = web.RequestKey("warnings", list)
DIRECTIVES = ("Strict", "Warn", "Ignore")


def directive(request: web.Request) -> str:
    value = request.query.get("fieldValidation") or "Warn"
    if value not in DIRECTIVES:
        raise bad_request(f'fieldValidation: Unsupported value: "{value}": supported values: '
                          '"Ignore", "Strict", "Warn"')
    return value


def add_warning(request: web.Request, text: str) -> None:
    request.setdefault(WARNINGS_KEY, []).append(text)


def warning_headers(request: web.Request) -> list[str]:
    """`Warning` header values (RFC 7234 code 299) for what this request produced."""
    out = []
    for text in request.get(WARNINGS_KEY, []):
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'299 - "{quoted}"')
    return out


def check(request: web.Request, rt: R.ResourceType, body: Any) -> None:
    mode = directive(request)
    if mode == "Ignore":
        return
    unknown = unknown_fields(rt.model, body)
    if not unknown:
        return
    messages = [f'unknown field "{path}"' for path in unknown]
    if mode == "Strict":
        raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(messages))
    for m in messages:
        if m not in request.get(WARNINGS_KEY, []):
            add_warning(request, m)
