"""AGE columns: apimachinery's HumanDuration, so ages read as kubectl's do."""
from __future__ import annotations

from datetime import datetime, timezone


def human_duration(seconds: float) -> str:
    """`5s`, `119s`, `3m2s`, `15m`, `3h10m`, `20h`, `2d4h`, `30d`, `2y10d`, `9y`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def parse_timestamp(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def age(timestamp: str | None, now: datetime) -> str:
    """The age of an RFC 3339 timestamp at `now`; `<unknown>` when there is none."""
    when = parse_timestamp(timestamp or "")
    if when is None:
        return "<unknown>"
    return human_duration((now - when).total_seconds())
