"""Every check of an object the API server makes, in one module, in the order a write runs
them (the order decides which error a client sees when a body is wrong in several ways):

1. the request's `fieldValidation` on the body as sent: unknown fields are a 400 (`Strict`)
   or a warning (`Warn`, the default) or nothing (`Ignore`);
2. `apiVersion`/`kind` as the URL names them, then the model's shape (a string where a string
   belongs, ...), both on the body before the server adds or defaults anything;
3. after defaults: metadata (`kubecore.api.resources.metadata_causes`) and the kind's own
   rules (`ResourceType.validate`, from `kubecore.api.validation`), one 422 with every cause.

`strategy.py` calls 2 and 3 from `prepare_create`/`prepare_update`; the generic store calls 1
before them. kubectl validates nothing itself once the OpenAPI document says the server takes
`fieldValidation`; it sends `Strict` (the default of `--validate`), `Warn` or `Ignore` and
expects kube-apiserver's answers: a 400 `strict decoding error: unknown field "spec.x"`, or a
`Warning: 299 - "unknown field \\"spec.x\\""` header.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, Cause, bad_request, go_quote, invalid
from kubecore.api.models import shape_causes, unknown_fields
from kubecore.api.types import Obj

DIRECTIVES = ("Strict", "Warn", "Ignore")


@dataclass
class FieldValidation:
    """A request's `fieldValidation` (unset: Warn), and the warnings it produced. The
    directive is checked when a body is first checked against it, not before."""
    raw: str | None = None
    warnings: list[str] = field(default_factory=list)

    def directive(self) -> str:
        value = self.raw or "Warn"
        if value not in DIRECTIVES:
            raise bad_request(f'fieldValidation: Unsupported value: "{value}": supported values: '
                              '"Ignore", "Strict", "Warn"')
        return value

    def check(self, rt: R.ResourceType, body: Any) -> None:
        """Unknown fields of `body`: a 400 under Strict, warnings under Warn."""
        mode = self.directive()
        if mode == "Ignore":
            return
        unknown = unknown_fields(rt.model, body)
        if not unknown:
            return
        messages = [f"unknown field {go_quote(path)}" for path in unknown]
        if mode == "Strict":
            raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(messages))
        for m in messages:
            if m not in self.warnings:
                self.warnings.append(m)


def body_metadata(body: Any) -> Obj:
    """The metadata of a request body, or a 400 when it is not an object."""
    meta = body.get("metadata") if isinstance(body, dict) else None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be a JSON object")
    return meta


def body_resource_version(body: Any) -> str | None:
    rv = body_metadata(body).get("resourceVersion")
    if rv is not None and not isinstance(rv, str):
        raise bad_request("metadata.resourceVersion must be a string")
    return rv


def check_type(rt: R.ResourceType, obj: Obj) -> None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version is not None and api_version != rt.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match the "
                          f"expected API version ({rt.api_version})")
    if kind is not None and kind != rt.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                          f"({rt.kind})")


def check_shape(rt: R.ResourceType, obj: Obj, name: str) -> None:
    causes = [Cause(f, m, "FieldValueTypeInvalid") for f, m in shape_causes(rt.model, obj)]
    if causes:
        raise invalid(rt.kind, name, causes, rt.group)


def check_object(rt: R.ResourceType, obj: Obj, old: Obj | None, name: str, *,
                 status_only: bool = False) -> None:
    """Metadata and the kind's rules, one 422 with every cause. A status write keeps the
    stored spec, so its rules are not checked again (kube-apiserver's status strategies
    validate the status only): an object stored before a rule existed can still have its
    status written by its controller. The status's own rules (`validate_status`) hold on a
    create and on a status write."""
    causes = R.metadata_causes(obj, rt)
    if not status_only:
        causes += rt.validate(obj, old)
    if status_only or old is None:
        causes += rt.validate_status(obj, old)
    if causes:
        raise invalid(rt.kind, name, causes, rt.group)
