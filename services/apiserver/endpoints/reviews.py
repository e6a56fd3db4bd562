"""HTTP for the reviews (`authz/reviews.py`): POST only, answered 201 with the review and its
status, nothing stored; any other method is 405 as kube-apiserver answers for a create-only
resource."""
from __future__ import annotations

from aiohttp import web

from kubecore.api import resources as R
from kubecore.api.errors import method_not_allowed
from services.apiserver.authz.reviews import whoami
from services.apiserver.endpoints.context import ApiState
from services.apiserver.endpoints.filters import USER
from services.apiserver.endpoints.requests import Target, content_type, decode_object, json_response, read_body
from services.apiserver.registry.validation import check_shape, check_type


async def create_review(state: ApiState, request: web.Request, t: Target) -> web.Response:
    if request.method != "POST" or t.name is not None:
        raise method_not_allowed()
    raw = await read_body(request, state.settings.max_body_bytes)
    body = decode_object(raw, content_type(request), state.settings.max_body_bytes)
    check_type(t.rt, body)
    check_shape(t.rt, body, "")
    user = request[USER]
    if t.rt is R.SELFSUBJECTREVIEWS:
        return json_response(whoami(user), 201)
    if t.rt is R.SELFSUBJECTRULESREVIEWS:
        return json_response(state.reviewer.rules_review(body, user), 201)
    return json_response(state.reviewer.access_review(t.rt, body, user, t.namespace), 201)
