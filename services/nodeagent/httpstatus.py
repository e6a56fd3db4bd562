"""The node agent's HTTP errors: a metav1.Status body, as the kubelet's server writes them."""
from __future__ import annotations

from aiohttp import web

from kubecore.api.errors import ApiError


def status_response(code: int, reason: str, message: str) -> web.Response:
    """A Failure Status with `code` as both its field and the HTTP status."""
    return web.json_response(ApiError(code, reason, message).to_status(), status=code)
