"""What a Secret's wire form means before it is validated (kube's v1 -> internal conversion of
core/v1 Secret): `data` values are base64 in JSON, decoded as Go's `encoding/json` decodes a
`[]byte` (base64.StdEncoding, line breaks skipped), and `stringData` is merged into `data`,
each entry overriding, and never stored. The values are kept re-encoded in canonical base64,
so an object reads back exactly as kube-apiserver would print it.

The Secret types and the data keys each requires (`k8s.io/api/core/v1/types.go`) are here
too, for validation and for the clients that make Secrets.
"""
from __future__ import annotations

import base64
import binascii

from kubecore.api.errors import bad_request
from kubecore.api.types import Obj

OPAQUE = "Opaque"
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
DOCKERCFG = "kubernetes.io/dockercfg"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
BASIC_AUTH = "kubernetes.io/basic-auth"
SSH_AUTH = "kubernetes.io/ssh-auth"
TLS = "kubernetes.io/tls"
BOOTSTRAP_TOKEN = "bootstrap.kubernetes.io/token"

SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name"
DOCKERCFG_KEY = ".dockercfg"
DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
BASIC_AUTH_USERNAME_KEY = "username"
BASIC_AUTH_PASSWORD_KEY = "password"
SSH_AUTH_PRIVATE_KEY = "ssh-privatekey"
TLS_CERT_KEY = "tls.crt"
TLS_PRIVATE_KEY_KEY = "tls.key"

MAX_SECRET_SIZE = 1024 * 1024

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NEWLINES = frozenset(b"\r\n")
_PAD = ord("=")


def _skip_newlines(src: bytes, i: int) -> int:
    while i < len(src) and src[i] in _NEWLINES:
        i += 1
    return i


def _after_padding(src: bytes, si: int, j: int) -> int | None:
    """Go's decodeQuantum once it met '=' as the j-th symbol of a quantum (`si` is past it)."""
    if j in (0, 1):
        return si - 1  # incorrect padding
    if j == 2:  # "==" expected, the first one consumed
        si = _skip_newlines(src, si)
        if si == len(src):
            return len(src)  # not enough padding
        if src[si] != _PAD:
            return si - 1
        si += 1
    si = _skip_newlines(src, si)
    return si if si < len(src) else None  # trailing garbage


def base64_error_offset(src: bytes) -> int | None:
    """Where Go's `base64.StdEncoding.DecodeString(src)` fails (its CorruptInputError, the
    byte offset in "illegal base64 data at input byte N"), or None if it decodes."""
    si = 0
    while True:
        j = 0
        while j < 4:
            if si == len(src):
                return None if j == 0 else si - j
            c = src[si]
            si += 1
            if c in _ALPHABET:
                j += 1
            elif c in _NEWLINES:
                continue
            elif c != _PAD:
                return si - 1
            else:
                return _after_padding(src, si, j)
        if si == len(src):
            return None


def decode_value(text: str) -> bytes | None:
    """The bytes a `data` value holds, or None when Go would refuse it."""
    raw = text.encode()
    if base64_error_offset(raw) is not None:
        return None
    try:
        return base64.b64decode(bytes(b for b in raw if b not in _NEWLINES))
    except binascii.Error:
        return None


def convert_secret(obj: Obj) -> None:
    """The Secret as kube-apiserver keeps it (in place): `data` decoded (a 400 naming the
    offending byte as Go's decoder does) and re-encoded canonically, `stringData` merged in
    and dropped, an empty `data` dropped (Go's omitempty)."""
    data = obj.get("data") or {}
    decoded: dict[str, bytes] = {}
    for key, value in data.items():
        offset = base64_error_offset(value.encode())
        raw = decode_value(value) if offset is None else None
        if raw is None:
            raise bad_request(f'Secret in version "v1" cannot be handled as a Secret: illegal '
                              f'base64 data at input byte {offset or 0}')
        decoded[key] = raw
    for key, text in (obj.pop("stringData", None) or {}).items():
        decoded[key] = text.encode()
    if decoded:
        obj["data"] = {k: base64.b64encode(v).decode() for k, v in decoded.items()}
    else:
        obj.pop("data", None)


def data_bytes(obj: Obj) -> dict[str, bytes]:
    """A converted Secret's data as bytes."""
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
