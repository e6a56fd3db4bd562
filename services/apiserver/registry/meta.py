"""Metadata the server writes itself: timestamps, uids, generated names."""
from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # as apimachinery's rand.String: no vowels


class _Stamp:
    """The last second now_rfc3339 formatted, and its text."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: tuple[int, str] = (-1, "")


_stamp = _Stamp()


def format_rfc3339(t: datetime) -> str:
    """A time in whole seconds, as Kubernetes writes it (`2024-01-01T12:00:00Z`)."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    """The time now, formatted once per second."""
    second = int(time.time())
    if _stamp.value[0] != second:
        _stamp.value = (second, format_rfc3339(datetime.fromtimestamp(second, UTC)))
    return _stamp.value[1]


def new_uid() -> str:
    """A random (version 4) UUID in its text form; what str(uuid.uuid4()) gives, cheaper."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_rfc3339(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_NAME_CHARS) for _ in range(n))
