"""core/v1 Secret validation (kube's ValidateSecret and ValidateSecretUpdate): data keys as
config keys, at most 1 MiB of data in all, the keys each type requires, the type immutable,
and nothing changing once `immutable` is true. It runs on the converted Secret
(`kubecore.api.secrets.convert_secret`): `stringData` is already in `data`."""
from __future__ import annotations

import json

from kubecore.api import secrets as S
from kubecore.api.errors import Cause
from kubecore.api.formats import config_key_errors
from kubecore.api.types import Obj

_IMMUTABLE_SET = "field is immutable when `immutable` is set"


def _required(path: str) -> Cause:
    return Cause(path, "Required value", "FieldValueRequired")


def _json_object_error(raw: bytes) -> str | None:
    """Go's json.Unmarshal into a map[string]interface{}: its error text, or None."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        if not raw.strip():
            return "unexpected end of JSON input"
        pos = min(getattr(exc, "pos", 0), len(raw) - 1)
        return f"invalid character {chr(raw[pos])!r} looking for beginning of value"
    if not isinstance(value, dict) and value is not None:
        kind = {list: "array", str: "string", bool: "bool"}.get(type(value), "number")
        return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    return None


def _docker_causes(data: dict[str, bytes], key: str) -> list[Cause]:
    if key not in data:
        return [_required(f"data[{key}]")]
    err = _json_object_error(data[key])
    if err:
        return [Cause(f"data[{key}]", f'Invalid value: "<secret contents redacted>": {err}')]
    return []


def _type_causes(obj: Obj, data: dict[str, bytes]) -> list[Cause]:
    """The keys (or annotation) each Secret type requires."""
    stype = obj.get("type") or S.OPAQUE
    if stype == S.SERVICE_ACCOUNT_TOKEN:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(S.SERVICE_ACCOUNT_NAME_KEY):
            return [_required(f"metadata.annotations[{S.SERVICE_ACCOUNT_NAME_KEY}]")]
    elif stype == S.DOCKERCFG:
        return _docker_causes(data, S.DOCKERCFG_KEY)
    elif stype == S.DOCKER_CONFIG_JSON:
        return _docker_causes(data, S.DOCKER_CONFIG_JSON_KEY)
    elif stype == S.BASIC_AUTH:
        if S.BASIC_AUTH_USERNAME_KEY not in data and S.BASIC_AUTH_PASSWORD_KEY not in data:
            return [_required(f"data[{S.BASIC_AUTH_USERNAME_KEY}]"),
                    _required(f"data[{S.BASIC_AUTH_PASSWORD_KEY}]")]
    elif stype == S.SSH_AUTH:
        if not data.get(S.SSH_AUTH_PRIVATE_KEY):
            return [_required(f"data[{S.SSH_AUTH_PRIVATE_KEY}]")]
    elif stype == S.TLS:
        return [_required(f"data[{key}]") for key in (S.TLS_CERT_KEY, S.TLS_PRIVATE_KEY_KEY)
                if key not in data]
    # Opaque, bootstrap.kubernetes.io/token and any other type: no required keys (kube
    # checks bootstrap tokens in the bootstrap signer, not here)
    return []


def _immutable_causes(obj: Obj, old: Obj) -> list[Cause]:
    causes = []
    if obj.get("type") != old.get("type"):
        causes.append(Cause("type", f'Invalid value: "{obj.get("type")}": field is immutable'))
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            causes.append(Cause("immutable", f"Forbidden: {_IMMUTABLE_SET}", "FieldValueForbidden"))
        if (obj.get("data") or {}) != (old.get("data") or {}):
            causes.append(Cause("data", f"Forbidden: {_IMMUTABLE_SET}", "FieldValueForbidden"))
    return causes


def validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    data = S.data_bytes(obj)
    causes = _immutable_causes(obj, old) if old is not None else []
    for key in data:
        causes += [Cause(f"data[{key}]", f'Invalid value: "{key}": {msg}')
                   for msg in config_key_errors(key)]
    if sum(len(v) for v in data.values()) > S.MAX_SECRET_SIZE:
        causes.append(Cause("data", f"Too long: must have at most {S.MAX_SECRET_SIZE} bytes",
                            "FieldValueTooLong"))
    return causes + _type_causes(obj, data)
