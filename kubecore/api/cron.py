"""Cron schedules as CronJobs write them: the standard five fields or a descriptor, read and
stepped forward exactly as kube's vendored parser (robfig/cron v3, `ParseStandard` and
`SpecSchedule.Next`) does, so validation refuses what kube-apiserver refuses, in its words,
and the controller starts Jobs at the times kube-controller-manager would.

- `parse(spec, zone)`: a `Schedule`, or `CronError` with the parser's message
  (`expected exactly 5 fields, found 1: [foo]`, `end of range (61) above maximum (59): 61`).
  A `TZ=`/`CRON_TZ=` prefix names the zone, as the parser allows (validation forbids it in
  new objects; the controller passes `timeZone` that way).
- `Schedule.next(t)`: the first activation strictly after `t`, in the schedule's zone
  (wall-clock fields, DST as Go's time package resolves it), as an aware datetime in `t`'s zone.
- `load_zone(name)`: a zone as Go's `time.LoadLocation` finds it, or `CronError` with its
  message (`unknown time zone Foo/Bar`).

Without a zone a schedule runs in UTC: kube-controller-manager uses its host's local time,
which in a container is UTC.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STAR_BIT = 1 << 63
_MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DOW_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}


class CronError(ValueError):
    """A schedule the parser refuses; the message is the parser's."""


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


SECONDS = _Bounds(0, 59)
MINUTES = _Bounds(0, 59)
HOURS = _Bounds(0, 23)
DOM = _Bounds(1, 31)
MONTHS = _Bounds(1, 12, _MONTH_NAMES)
DOW = _Bounds(0, 6, _DOW_NAMES)


def load_zone(name: str) -> tzinfo:
    """Go's time.LoadLocation: "" and "UTC" are UTC, "Local" the process's (UTC here)."""
    if name in ("", "UTC", "Local"):
        return UTC
    try:
        if name.startswith("/") or ".." in name.split("/"):
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CronError(f"unknown time zone {name}") from exc


# --- Go's strconv.Atoi and time.ParseDuration, for the parser's messages --------------------

def _atoi(text: str) -> int:
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": '
                        "invalid syntax")
    value = int(text)
    if not -(1 << 63) <= value < (1 << 63):
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": '
                        "value out of range")
    if value < 0:
        raise CronError(f"negative number ({value}) not allowed: {text}")
    return value


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds (`1h30m`, `90s`, `1.5h`)."""
    quoted = f'"{text}"'
    rest, sign = text, 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise CronError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        m = _DURATION_PART.match(rest)
        number, unit = (m.group(1), m.group(2)) if m else ("", "")
        if number in ("", "."):
            raise CronError(f"time: invalid duration {quoted}")
        if not unit:
            raise CronError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise CronError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _UNITS[unit]
        rest = rest[len(number) + len(unit):]
    return sign * total


# --- the parser --------------------------------------------------------------------------

def _bits(low: int, high: int, step: int) -> int:
    out = 0
    for i in range(low, high + 1, step):
        out |= 1 << i
    return out


def _int_or_name(text: str, names: dict[str, int] | None) -> int:
    if names is not None and text.lower() in names:
        return names[text.lower()]
    return _atoi(text)


def _range_bounds(low_high: list[str], expr: str, r: _Bounds) -> tuple[int, int, int]:
    if low_high[0] in ("*", "?"):
        return r.low, r.high, STAR_BIT
    start = _int_or_name(low_high[0], r.names)
    if len(low_high) == 1:
        return start, start, 0
    if len(low_high) == 2:
        return start, _int_or_name(low_high[1], r.names), 0
    raise CronError(f"too many hyphens: {expr}")


def _range(expr: str, r: _Bounds) -> int:
    """number | number "-" number [ "/" number ], or "*" with an optional step."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    start, end, extra = _range_bounds(low_high, expr, r)
    step = 1
    if len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if len(low_high) == 1:
            end = r.high  # "N/step" means "N-max/step"
        if step > 1:
            extra = 0
    elif len(range_and_step) > 2:
        raise CronError(f"too many slashes: {expr}")
    if start < r.low:
        raise CronError(f"beginning of range ({start}) below minimum ({r.low}): {expr}")
    if end > r.high:
        raise CronError(f"end of range ({end}) above maximum ({r.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return _bits(start, end, step) | extra


def _field(text: str, r: _Bounds) -> int:
    out = 0
    for expr in (part for part in text.split(",") if part):
        out |= _range(expr, r)
    return out


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: bit sets per field (robfig's SpecSchedule), or a constant delay
    (`@every`, `every` seconds)."""
    zone: tzinfo
    second: int = 0
    minute: int = 0
    hour: int = 0
    dom: int = 0
    month: int = 0
    dow: int = 0
    every: float = 0.0

    def next(self, t: datetime) -> datetime:
        if self.every:
            return t.replace(microsecond=0) + timedelta(seconds=self.every)
        return _spec_next(self, t)


def _all(r: _Bounds) -> int:
    return _bits(r.low, r.high, 1) | STAR_BIT


_DESCRIPTORS = {
    "@yearly": dict(dom=1 << 1, month=1 << 1, dow=_all(DOW)),
    "@annually": dict(dom=1 << 1, month=1 << 1, dow=_all(DOW)),
    "@monthly": dict(dom=1 << 1, month=_all(MONTHS), dow=_all(DOW)),
    "@weekly": dict(dom=_all(DOM), month=_all(MONTHS), dow=1 << 0),
    "@daily": dict(dom=_all(DOM), month=_all(MONTHS), dow=_all(DOW)),
    "@midnight": dict(dom=_all(DOM), month=_all(MONTHS), dow=_all(DOW)),
    "@hourly": dict(hour=_all(HOURS), dom=_all(DOM), month=_all(MONTHS), dow=_all(DOW)),
}


def _descriptor(spec: str, zone: tzinfo) -> Schedule:
    fields = _DESCRIPTORS.get(spec)
    if fields is not None:
        base = {"second": 1, "minute": 1, "hour": 1}
        base.update(fields)
        return Schedule(zone, **base)
    if spec.startswith("@every "):
        try:
            seconds = parse_duration(spec[len("@every "):])
        except CronError as exc:
            raise CronError(f"failed to parse duration {spec}: {exc}") from exc
        return Schedule(zone, every=float(max(1, int(seconds))))
    raise CronError(f"unrecognized descriptor: {spec}")


def _go_fields(fields: list[str]) -> str:
    return "[" + " ".join(fields) + "]"


def parse(spec: str, zone: tzinfo = UTC) -> Schedule:
    """robfig/cron's ParseStandard: minute hour dom month dow, or a descriptor."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        name = spec[spec.index("=") + 1: space if space >= 0 else len(spec)]
        try:
            zone = load_zone(name)
        except CronError as exc:
            raise CronError(f"provided bad location {name}: {exc}") from exc
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        return _descriptor(spec, zone)
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {_go_fields(fields)}")
    return Schedule(zone, second=1, minute=_field(fields[0], MINUTES), hour=_field(fields[1], HOURS),
                    dom=_field(fields[2], DOM), month=_field(fields[3], MONTHS),
                    dow=_field(fields[4], DOW))


# --- stepping forward (SpecSchedule.Next) ----------------------------------------------------

def _wall(zone: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Go's time.Date in `zone`: out-of-range fields roll over, a wall time in a DST gap moves
    forward by the gap."""
    extra_years, month0 = divmod(month - 1, 12)
    first = datetime(year + extra_years, month0 + 1, 1, tzinfo=zone)
    naive = first.replace(tzinfo=None) + timedelta(days=day - 1, hours=hour, minutes=minute)
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _plus(t: datetime, seconds: int) -> datetime:
    """Absolute time arithmetic (Go's Time.Add), not wall-clock."""
    zone = t.tzinfo
    return (t.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(zone)


def _day_matches(s: Schedule, t: datetime) -> bool:
    dom_match = bool(1 << t.day & s.dom)
    dow_match = bool(1 << ((t.weekday() + 1) % 7) & s.dow)
    if s.dom & STAR_BIT or s.dow & STAR_BIT:
        return dom_match and dow_match
    return dom_match or dow_match


class _Stepper:
    """The state of one Next: the time, whether it was truncated yet, the year limit."""

    def __init__(self, s: Schedule, t: datetime) -> None:
        self.s = s
        self.zone = s.zone
        self.t = _plus(t.astimezone(self.zone).replace(microsecond=0), 1)
        self.added = False
        self.year_limit = self.t.year + 5

    def month(self) -> bool:
        """Step to a matching month; True when the year wrapped (start over)."""
        while not 1 << self.t.month & self.s.month:
            if not self.added:
                self.added = True
                self.t = _wall(self.zone, self.t.year, self.t.month, 1)
            self.t = _wall(self.zone, self.t.year, self.t.month + 1, self.t.day, self.t.hour,
                           self.t.minute)
            if self.t.month == 1:
                return True
        return False

    def day(self) -> bool:
        while not _day_matches(self.s, self.t):
            if not self.added:
                self.added = True
                self.t = _wall(self.zone, self.t.year, self.t.month, self.t.day)
            self.t = _wall(self.zone, self.t.year, self.t.month, self.t.day + 1, self.t.hour,
                           self.t.minute)
            if self.t.hour != 0:  # DST moved midnight
                self.t = _plus(self.t, (24 - self.t.hour if self.t.hour > 12 else -self.t.hour) * 3600)
            if self.t.day == 1:
                return True
        return False

    def hour(self) -> bool:
        while not 1 << self.t.hour & self.s.hour:
            if not self.added:
                self.added = True
                self.t = _wall(self.zone, self.t.year, self.t.month, self.t.day, self.t.hour)
            self.t = _plus(self.t, 3600)
            if self.t.hour == 0:
                return True
        return False

    def minute(self) -> bool:
        while not 1 << self.t.minute & self.s.minute:
            if not self.added:
                self.added = True
                self.t = self.t.replace(second=0)
            self.t = _plus(self.t, 60)
            if self.t.minute == 0:
                return True
        return False

    def second(self) -> bool:
        while not 1 << self.t.second & self.s.second:
            if not self.added:
                self.added = True
            self.t = _plus(self.t, 1)
            if self.t.second == 0:
                return True
        return False


def _spec_next(s: Schedule, t: datetime) -> datetime:
    step = _Stepper(s, t)
    while step.t.year <= step.year_limit:
        if step.month() or step.day() or step.hour() or step.minute() or step.second():
            continue
        return step.t.astimezone(t.tzinfo)
    return datetime.min.replace(tzinfo=UTC)  # no activation within five years (Go's zero time)
