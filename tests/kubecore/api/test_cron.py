"""CronJob schedules: kube's cron parser (robfig/cron v3 ParseStandard) and its next times."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubecore.api import cron


@pytest.mark.parametrize(("spec", "message"), [
    ("foo", "expected exactly 5 fields, found 1: [foo]"),
    ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* 24 * * *", "end of range (24) above maximum (23): 24"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("a * * * *", 'failed to parse int from a: strconv.Atoi: parsing "a": invalid syntax'),
    ("5-2 * * * *", "beginning of range (5) beyond end of range (2): 5-2"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("*/2/3 * * * *", "too many slashes: */2/3"),
    ("@foo", "unrecognized descriptor: @foo"),
    ("@every 1d", 'failed to parse duration @every 1d: time: unknown unit "d" in duration "1d"'),
    ("@every x", 'failed to parse duration @every x: time: invalid duration "x"'),
    ("TZ=Foo/Bar * * * * *", "provided bad location Foo/Bar: unknown time zone Foo/Bar"),
    ("", "empty spec string"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_parser_messages(spec: str, message: str) -> None:
    with pytest.raises(cron.CronError) as err:
        cron.parse(spec)
    assert str(err.value) == message


def _times(spec: str, start: datetime, n: int = 3, zone: str = "") -> list[str]:
    schedule = cron.parse(spec, cron.load_zone(zone))
    out, t = [], start
    for _ in range(n):
        t = schedule.next(t)
        out.append(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out


START = datetime(2024, 3, 9, 23, 59, 30, tzinfo=UTC)  # a Saturday, before a US DST change


@pytest.mark.parametrize(("spec", "zone", "wanted"), [
    ("*/5 * * * *", "", ["2024-03-10T00:00:00Z", "2024-03-10T00:05:00Z", "2024-03-10T00:10:00Z"]),
    ("@hourly", "", ["2024-03-10T00:00:00Z", "2024-03-10T01:00:00Z", "2024-03-10T02:00:00Z"]),
    ("@daily", "", ["2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z", "2024-03-12T00:00:00Z"]),
    ("@weekly", "", ["2024-03-10T00:00:00Z", "2024-03-17T00:00:00Z", "2024-03-24T00:00:00Z"]),
    ("@monthly", "", ["2024-04-01T00:00:00Z", "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"]),
    ("@yearly", "", ["2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
    ("0 9 * * mon-fri", "", ["2024-03-11T09:00:00Z", "2024-03-12T09:00:00Z", "2024-03-13T09:00:00Z"]),
    # day of month and day of week both restricted: either matches (cron's OR)
    ("0 0 13 * fri", "", ["2024-03-13T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-22T00:00:00Z"]),
    ("@every 1h30m", "", ["2024-03-10T01:29:30Z", "2024-03-10T02:59:30Z", "2024-03-10T04:29:30Z"]),
    # 02:30 does not exist in New York on 2024-03-10 (clocks jump 02:00 -> 03:00): skipped
    ("30 2 * * *", "America/New_York", ["2024-03-11T06:30:00Z", "2024-03-12T06:30:00Z",
                                        "2024-03-13T06:30:00Z"]),
    ("0 9 * * *", "Europe/Berlin", ["2024-03-10T08:00:00Z", "2024-03-11T08:00:00Z",
                                    "2024-03-12T08:00:00Z"]),
    ("0 9 * * *", "Asia/Kolkata", ["2024-03-10T03:30:00Z", "2024-03-11T03:30:00Z",
                                   "2024-03-12T03:30:00Z"]),
], ids=["every-5-min", "hourly", "daily", "weekly", "monthly", "yearly", "weekdays", "dom-or-dow",
        "every-duration", "dst-gap-new-york", "berlin", "kolkata-half-hour"])
def test_next_times(spec: str, zone: str, wanted: list[str]) -> None:
    assert _times(spec, START, zone=zone) == wanted


def test_autumn_dst_runs_in_both_repeated_hours() -> None:
    # 01:30 happens twice in New York on 2024-11-03 (EDT, then EST): robfig's Next steps in
    # absolute minutes, so the schedule fires at both, as it does in kube-controller-manager
    start = datetime(2024, 11, 2, 12, 0, tzinfo=UTC)
    assert _times("30 1 * * *", start, zone="America/New_York") == [
        "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"]


def test_an_impossible_date_never_comes() -> None:
    assert cron.parse("0 0 31 2 *").next(START).year == 1


@pytest.mark.parametrize(("name", "ok"), [("UTC", True), ("Europe/Berlin", True),
                                          ("Mars/Olympus", False), ("../etc/passwd", False)],
                         ids=["utc", "berlin", "unknown", "path"])
def test_zones(name: str, ok: bool) -> None:
    if ok:
        cron.load_zone(name)
    else:
        with pytest.raises(cron.CronError, match=f"unknown time zone {name}"):
            cron.load_zone(name)
