"""Errors the CLI reports, and their one-line rendering in kubectl's words."""
from __future__ import annotations

from typing import Any

from kubecore.api.errors import ApiError


class CliError(Exception):
    """A failure whose message is already the line to print (without `error: `)."""


def api_error_from_status(status: Any, http_code: int) -> ApiError:
    """An ApiError from a server's Status body (or whatever came instead of one)."""
    if isinstance(status, dict) and status.get("kind") == "Status":
        details = status.get("details") or {}
        return ApiError(int(status.get("code") or http_code), str(status.get("reason") or ""),
                        str(status.get("message") or ""), details)
    text = status if isinstance(status, str) else ""
    return ApiError(http_code, "", text.strip() or f"the server responded with HTTP {http_code}")


def format_api_error(err: ApiError, *, context: str = "") -> str:
    """`Error from server (NotFound): services "x" not found`, as kubectl prints it.

    `context` is kubectl's `error when creating "FILE": ` prefix of file operations.
    Invalid objects print as kubectl's `The Service "x" is invalid: ...`, on one line and
    without the context (kubectl builds that message from the details, not the text).
    """
    details = err.details or {}
    causes = details.get("causes") or []
    if err.reason == "Invalid" and causes:
        what = "The request is invalid"
        if details.get("kind") or details.get("name"):
            what = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid'
        parts = [f'{c.get("field")}: {c.get("message")}' if c.get("field") else str(c.get("message"))
                 for c in causes]
        return f"{what}: {'; '.join(parts)}"
    if err.reason:
        return f"Error from server ({err.reason}): {context}{err.message}"
    return f"Error from server: {context}{err.message}"
