"""A Lease's MicroTimes (acquireTime, renewTime) as kube-apiserver decodes and stores them.

metav1.MicroTime is read with Go's `time.Parse(RFC3339Micro, text)` and written back as
`t.UTC().Format(RFC3339Micro)`: exactly six fractional digits on the way in, UTC with a `Z`
on the way out. Text Go would not parse is a 400 whose message is Go's ParseError, which
names the first element of the layout the text fails to match (`cannot parse "x" as
"2006"`), or the field out of range (`month out of range`). `parse` walks the layout's
elements the way time.Parse does, so the messages agree.
"""
from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

from kubecore.api.errors import bad_request
from kubecore.api.formats import go_quote
from kubecore.api.types import Obj

LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
MICROTIME_FIELDS = ("acquireTime", "renewTime")


class ParseError(ValueError):
    """Go's time.ParseError, worded as its Error()."""

    def __init__(self, value: str, layout_elem: str = "", value_elem: str = "", message: str = "") -> None:
        if message:
            text = f"parsing time {go_quote(value)}{message}"
        else:
            text = (f"parsing time {go_quote(value)} as {go_quote(LAYOUT)}: cannot parse "
                    f"{go_quote(value_elem)} as {go_quote(layout_elem)}")
        super().__init__(text)


def _digits(text: str, count: int) -> int | None:
    head = text[:count]
    return int(head) if len(head) == count and head.isascii() and head.isdigit() else None


def _number(text: str, fixed: bool) -> tuple[int, str] | None:
    """Go's getnum: two digits, or (when not fixed) one."""
    if not text[:1].isdigit() or not text[:1].isascii():
        return None
    if text[1:2].isdigit() and text[1:2].isascii():
        return int(text[:2]), text[2:]
    return (None if fixed else (int(text[0]), text[1:]))


# The layout's elements up to the seconds: (the literal before it, the element).
_ELEMENTS = (("", "2006"), ("-", "01"), ("-", "02"), ("T", "15"), (":", "04"), (":", "05"))
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_BOUNDS = {"01": (1, 12, "month"), "15": (0, 23, "hour"), "04": (0, 59, "minute"),
           "05": (0, 59, "second")}


def _date_parts(value: str) -> tuple[list[int], str]:
    """year, month, day, hour, minute, second and the text after them."""
    rest, parts = value, []
    for literal, elem in _ELEMENTS:
        if literal:
            if not rest.startswith(literal):
                raise ParseError(value, literal, rest)
            rest = rest[len(literal):]
        if elem == "2006":
            year = _digits(rest, 4)
            if year is None:
                raise ParseError(value, elem, rest)
            parts.append(year)
            rest = rest[4:]
            continue
        got = _number(rest, fixed=elem != "15")
        if got is None:
            raise ParseError(value, elem, rest)
        number, after = got
        low, high, name = _BOUNDS.get(elem, (0, 99, ""))
        if name and not low <= number <= high:
            raise ParseError(value, message=f": {name} out of range")
        parts.append(number)
        rest = after
    return parts, rest


def _fraction_and_zone(value: str, rest: str) -> tuple[int, timezone, str]:
    micro = _digits(rest[1:], 6) if rest[:1] in (".", ",") else None
    if micro is None:
        raise ParseError(value, ".000000", rest)
    rest = rest[7:]
    if rest.startswith("Z"):
        return micro, UTC, rest[1:]
    hours, minutes = _digits(rest[1:], 2), _digits(rest[4:], 2)
    if rest[:1] not in ("+", "-") or rest[3:4] != ":" or hours is None or minutes is None:
        raise ParseError(value, "Z07:00", rest)
    if hours > 24:
        raise ParseError(value, message=": time zone offset hour out of range")
    if minutes > 60:
        raise ParseError(value, message=": time zone offset minute out of range")
    offset = timedelta(hours=hours, minutes=minutes) * (-1 if rest[0] == "-" else 1)
    return micro, timezone(offset), rest[6:]


def parse(value: str) -> datetime:
    """A MicroTime's text as a UTC datetime; ParseError as Go's time.Parse reports it."""
    (year, month, day, hour, minute, second), rest = _date_parts(value)
    micro, zone, extra = _fraction_and_zone(value, rest)
    if extra:
        raise ParseError(value, message=f": extra text: {go_quote(extra)}")
    days_in_month = 29 if month == 2 and calendar.isleap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= days_in_month:
        raise ParseError(value, message=": day out of range")
    return datetime(year, month, day, hour, minute, second, micro, zone).astimezone(UTC)


def format_microtime(moment: datetime) -> str:
    """RFC3339Micro in UTC, as metav1.MicroTime is written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def convert_lease(obj: Obj) -> None:
    """The Lease as kube-apiserver keeps it (in place): each MicroTime parsed and written back
    in UTC, a null one dropped; a 400 for text Go would not parse."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for name in MICROTIME_FIELDS:
        value = spec.get(name)
        if value is None:
            spec.pop(name, None)
            continue
        try:
            spec[name] = format_microtime(parse(value))
        except ParseError as exc:
            raise bad_request(f'Lease in version "v1" cannot be handled as a Lease: {exc}') from None
        except ValueError:  # a year Python's datetime cannot hold (0000)
            raise bad_request(f'Lease in version "v1" cannot be handled as a Lease: parsing time '
                              f'{go_quote(value)}: year out of range') from None
