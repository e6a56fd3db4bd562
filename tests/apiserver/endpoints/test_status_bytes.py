"""Failures in kube-apiserver's exact bytes: metav1.Status as Go's encoder writes it (struct
field order, omitempty, a nil Details left out but an empty one written as `{}`, HTML
characters escaped, a closing newline), for the errors the server answers most."""
from __future__ import annotations

import pytest

from kubecore.api import errors
from kubecore.api.errors import Cause
from services.apiserver.authn import UserInfo
from services.apiserver.authz import Attributes
from services.apiserver.endpoints.filters import forbidden
from services.apiserver.endpoints.limits import too_many_requests
from services.apiserver.endpoints.requests import error_response

HEAD = b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
BOB = UserInfo(name="bob", groups=["system:authenticated"])

CASES = [
    ("404-not-found", errors.not_found("pods", "x"),
     b'"message":"pods \\"x\\" not found","reason":"NotFound",'
     b'"details":{"name":"x","kind":"pods"},"code":404}\n'),
    ("404-not-found-in-group", errors.not_found("deployments", "x", "apps"),
     b'"message":"deployments.apps \\"x\\" not found","reason":"NotFound",'
     b'"details":{"name":"x","group":"apps","kind":"deployments"},"code":404}\n'),
    ("404-no-such-path", errors.no_such_path(),
     b'"message":"the server could not find the requested resource","reason":"NotFound",'
     b'"details":{},"code":404}\n'),
    ("405", errors.method_not_allowed(),
     b'"message":"the server does not allow this method on the requested resource",'
     b'"reason":"MethodNotAllowed","details":{},"code":405}\n'),
    ("409-already-exists", errors.already_exists("configmaps", "x"),
     b'"message":"configmaps \\"x\\" already exists","reason":"AlreadyExists",'
     b'"details":{"name":"x","kind":"configmaps"},"code":409}\n'),
    ("409-conflict", errors.conflict("deployments", "x", "the object has been modified; please "
                                     "apply your changes to the latest version and try again", "apps"),
     b'"message":"Operation cannot be fulfilled on deployments.apps \\"x\\": the object has been '
     b'modified; please apply your changes to the latest version and try again","reason":"Conflict",'
     b'"details":{"name":"x","group":"apps","kind":"deployments"},"code":409}\n'),
    ("422-invalid", errors.invalid("Service", "web", [
        Cause("spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")]),
     b'"message":"Service \\"web\\" is invalid: spec.ports[0].port: Invalid value: 0: must be '
     b'between 1 and 65535, inclusive","reason":"Invalid","details":{"name":"web","kind":"Service",'
     b'"causes":[{"reason":"FieldValueInvalid","message":"Invalid value: 0: must be between 1 and '
     b'65535, inclusive","field":"spec.ports[0].port"}]},"code":422}\n'),
    ("422-cause-without-field", errors.invalid("Deployment", "web", [
        Cause("", "may not be empty", "FieldValueRequired")], "apps"),
     b'"message":"Deployment.apps \\"web\\" is invalid: may not be empty","reason":"Invalid",'
     b'"details":{"name":"web","group":"apps","kind":"Deployment","causes":[{"reason":'
     b'"FieldValueRequired","message":"may not be empty"}]},"code":422}\n'),
    ("403-resource", forbidden(Attributes(user=BOB, verb="get", namespace="default",
                                          resource="pods", name="x"), ""),
     b'"message":"pods \\"x\\" is forbidden: User \\"bob\\" cannot get resource \\"pods\\" in API '
     b'group \\"\\" in the namespace \\"default\\"","reason":"Forbidden",'
     b'"details":{"name":"x","kind":"pods"},"code":403}\n'),
    ("403-path", forbidden(Attributes(user=BOB, verb="get", resource_request=False, path="/foo"), ""),
     b'"message":"forbidden: User \\"bob\\" cannot get path \\"/foo\\"","reason":"Forbidden",'
     b'"details":{},"code":403}\n'),
    ("410-expired", errors.gone("too old resource version: 1 (5)"),
     b'"message":"too old resource version: 1 (5)","reason":"Expired","code":410}\n'),
    ("429", too_many_requests(),
     b'"message":"Too many requests, please try again later.","reason":"TooManyRequests",'
     b'"details":{"retryAfterSeconds":1},"code":429}\n'),
    ("500-html-escaped", errors.internal("etcd said <no> & left"),
     b'"message":"Internal error occurred: etcd said \\u003cno\\u003e \\u0026 left",'
     b'"reason":"InternalError","details":{"causes":[{"message":"etcd said \\u003cno\\u003e '
     b'\\u0026 left"}]},"code":500}\n'),
    ("400-no-details", errors.bad_request("the request body is empty"),
     b'"message":"the request body is empty","reason":"BadRequest","code":400}\n'),
]


@pytest.mark.parametrize("err,tail", [(e, t) for _, e, t in CASES], ids=[i for i, _, _ in CASES])
def test_status_bytes_are_kube_apiservers(err, tail):
    resp = error_response(err)
    assert resp.body == HEAD + tail
    assert resp.status == err.code
    assert resp.content_type == "application/json"
