"""Paged lists (`limit`, `continue`) as kube-apiserver's etcd3 store does them.

A continue token is unpadded URL-safe base64 of the same JSON kube-apiserver uses,
{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<key>"}: the etcd revision of the first
page, at which every later page is read too (so the pages together are one snapshot),
and the key the next page starts from, relative to the list's key prefix. Clients treat
it as opaque and pass it back unchanged, so tokens from either server work on the other.
"""
from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from dataclasses import dataclass

from kubecore.api.errors import ApiError, Cause, bad_request, gone, invalid
from kubecore.api.types import Obj

VERSION = "meta.k8s.io/v1"
# A short page of a filtered list is topped up by reads of twice the size, up to this many
# keys per etcd read (kube-apiserver's maxLimit).
MAX_LIMIT = 10_000
_INT64_MAX = 2**63 - 1
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# What Go's strconv.ParseInt / ParseUint take in base 10 (Python's int() also takes spaces,
# underscores and any script's digits)
_INT = re.compile(r"[+-]?[0-9]+")
_UINT = re.compile(r"[0-9]+")

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")
EXPIRED_LIST = "The resourceVersion for the provided list is too old."


@dataclass(frozen=True)
class Continue:
    start: str  # the next page's first key, relative to the list's key prefix
    revision: int  # > 0: read at this revision; < 0: at the newest (the token a 410 offers)


@dataclass
class Page:
    items: list[Obj]
    revision: int
    continue_: str = ""  # empty: this is the last page
    remaining: int | None = None  # objects after this page, when known (no selector)


def encode(start: str, revision: int) -> str:
    raw = json.dumps({"v": VERSION, "rv": revision, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _invalid(why: str) -> ApiError:
    return bad_request(f"invalid continue token: continue key is not valid: {why}")


def decode(token: str) -> Continue:
    """The token, or a 400 BadRequest as kube-apiserver answers a token it cannot use."""
    if not _BASE64URL.fullmatch(token) or len(token) % 4 == 1:
        raise _invalid("illegal base64 data")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise _invalid(str(exc)) from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise _invalid("server does not recognize this encoded version")
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0 or abs(rv) > _INT64_MAX:
        raise _invalid(f"incorrect encoded start resourceVersion (version {VERSION})")
    if not isinstance(start, str) or not start:
        raise _invalid(f"encoded start key empty (version {VERSION})")
    # As kube-apiserver: a start key that does not path-clean to itself (.., //, a trailing /)
    # is refused, so a token cannot be made to name keys outside the list's prefix.
    key = start if start.startswith("/") else "/" + start
    if posixpath.normpath(key) != key or key.startswith("//"):
        raise _invalid(start)
    try:
        key.encode()
    except UnicodeEncodeError:
        raise _invalid("the start key is not UTF-8") from None
    return Continue(key[1:], rv)


def expired(token: Continue | None) -> ApiError:
    """410 Expired for a revision etcd has compacted. For a continue token the Status offers a
    token for the rest of the list at the newest revision, as kube-apiserver's does."""
    if token is None:
        return gone(EXPIRED_LIST)
    return ApiError(410, "Expired", EXPIRED_CONTINUE, metadata={"continue": encode(token.start, -1)})


def too_large(revision: int, current: int) -> ApiError:
    """504 for a revision etcd has not reached, as kube-apiserver's TooLargeResourceVersion."""
    return ApiError(504, "Timeout", f"Timeout: Too large resource version: {revision}, current: "
                    f"{current}", causes=[Cause("", "Too large resource version",
                                                "ResourceVersionTooLarge")])


def limit_param(raw: str | None) -> int:
    """`limit` as kube-apiserver reads it: not an integer is a 400, 0 or less means no limit."""
    if raw is None or raw == "":
        return 0
    if not _INT.fullmatch(raw):
        raise bad_request(f'invalid value for limit: "{raw}" is not an integer')
    limit = int(raw)
    if limit > _INT64_MAX:
        raise bad_request(f'invalid value for limit: "{raw}" is out of range')
    return max(limit, 0)


def revision_param(raw: str) -> int:
    """An exact `resourceVersion` to read a first page at (kube-apiserver's legacy paging:
    `limit` with resourceVersion N reads at N)."""
    rev = int(raw) if _UINT.fullmatch(raw) else -1
    if not 0 <= rev <= _INT64_MAX:
        raise bad_request(f'invalid resource version: "{raw}"')
    return rev


# --- which state a list reads (resourceVersion, resourceVersionMatch) -----------------------

EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"


@dataclass(frozen=True)
class ListRead:
    """How a list is served: `cached` from the watch cache (any version); otherwise from
    etcd at `revision` (0: the newest), which must be at least `not_older_than`."""
    cached: bool = False
    revision: int = 0
    not_older_than: int = 0


def list_read(rv: str, match: str, token: str, limit: int) -> ListRead:
    """kube-apiserver's rules for a list's `resourceVersion` and `resourceVersionMatch`:
    unset: the newest state (a read from etcd); "0": any state (the watch cache);
    N: not older than N, or exactly N with `limit` (legacy paging) or match=Exact.
    Option errors are the 422 on ListOptions that kube-apiserver gives, word for word."""
    causes = []
    if match:
        field = "resourceVersionMatch"
        if not rv:
            causes.append(Cause(field, "Forbidden: resourceVersionMatch is forbidden unless "
                                "resourceVersion is provided", "FieldValueForbidden"))
        if token:
            causes.append(Cause(field, "Forbidden: resourceVersionMatch is forbidden when "
                                "continue is provided", "FieldValueForbidden"))
        if match not in (EXACT, NOT_OLDER_THAN):
            causes.append(Cause(field, f'Unsupported value: "{match}": supported values: '
                                f'"{EXACT}", "{NOT_OLDER_THAN}", ""', "FieldValueNotSupported"))
        if match == EXACT and rv == "0":
            causes.append(Cause(field, 'Forbidden: resourceVersionMatch "exact" is forbidden '
                                'for resourceVersion "0"', "FieldValueForbidden"))
    if causes:
        raise invalid("ListOptions", "", causes, "meta.k8s.io")
    if token:
        if rv not in ("", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")
        return ListRead()
    if rv == "":
        return ListRead()
    if rv == "0":
        return ListRead(cached=True)
    revision = revision_param(rv)
    if match == EXACT or (limit and not match):
        return ListRead(revision=revision)
    return ListRead(not_older_than=revision)
