"""The CRI log, both ways: records as the agent writes them (`containerio.CriLineWriter`) and
as `pods/log` reads them (`podlog`), as tables."""
from __future__ import annotations

import pytest

from kubecore.api.podlogs import PodLogOptions
from services.nodeagent.containerio import MAX_LINE, CriLineWriter, timestamp
from services.nodeagent.podlog import Limit, Record, parse_record, render, tail_start

T = 1_700_000_000.5  # 2023-11-14T22:13:20.5Z
STAMP = "2023-11-14T22:13:20.500000000Z"


@pytest.mark.parametrize("chunks,records,rest", [
    ([b"a\nb\n"], [b"F a", b"F b"], b""),
    ([b"par", b"tial\n"], [b"F partial"], b""),
    ([b"no end"], [], b"F no end"),
    ([b"\n"], [b"F "], b""),
    ([b"x" * (MAX_LINE + 3) + b"\n"], [b"P " + b"x" * MAX_LINE, b"F xxx"], b""),
], ids=["lines", "split-line", "unended-line-flushed", "empty-line", "long-line-in-pieces"])
def test_cri_line_writer(chunks, records, rest):
    w = CriLineWriter("stdout")
    out = b"".join(w.feed(c, T) for c in chunks)
    prefix = f"{STAMP} stdout ".encode()
    assert out == b"".join(prefix + r + b"\n" for r in records)
    assert w.flush(T) == (prefix + rest + b"\n" if rest else b"")


@pytest.mark.parametrize("line,record", [
    (f"{STAMP} stdout F hello\n".encode(), Record(1_700_000_000, 500_000_000, "stdout", False, b"hello")),
    (b"2023-11-14T22:13:20.5Z stderr P a b c", Record(1_700_000_000, 500_000_000, "stderr", True, b"a b c")),
    (b"2023-11-14T22:13:20Z stdout F:x ", Record(1_700_000_000, 0, "stdout", False, b"")),  # tags may grow
    (b"2023-11-14T22:13:20.5Z stdin F x", None),
    (b"yesterday stdout F x", None),
    (b"2023-11-14T22:13:20.5+01:00 stdout F x", None),
    (b"plain text", None),
], ids=["full", "partial-lenient-stamp", "tags-and-empty", "bad-stream", "bad-time", "not-utc", "not-cri"])
def test_parse_record(line, record):
    assert parse_record(line) == record


REC = Record(1_700_000_000, 500_000_000, "stdout", False, b"hi")


@pytest.mark.parametrize("opts,since,out", [
    (PodLogOptions(), None, b"hi\n"),
    (PodLogOptions(timestamps=True), None, f"{STAMP} hi\n".encode()),
    (PodLogOptions(), T + 1, b""),
    (PodLogOptions(), T, b"hi\n"),
], ids=["plain", "timestamps", "before-since", "at-since"])
def test_render(opts, since, out):
    assert render(REC, opts, since) == out
    assert render(Record(1, 0, "stdout", True, b"piece"), PodLogOptions(), None) == b"piece"


@pytest.mark.parametrize("data,lines,start", [
    (b"a\nb\nc\n", None, 0), (b"a\nb\nc\n", 2, 2), (b"a\nb\nc\n", 5, 0), (b"a\nb\nc\n", 0, 6),
    (b"a\nb\nc", 1, 4), (b"", 3, 0),
], ids=["all", "two", "more-than-there", "none", "unended-last", "empty"])
def test_tail_start(data, lines, start):
    assert tail_start(data, lines) == start


def test_limit_cuts_in_the_middle_of_a_line():
    limit = Limit(5)
    assert (limit.cut(b"abc\n"), limit.cut(b"defg\n"), limit.reached) == (b"abc\n", b"d", True)
    assert Limit(None).cut(b"x" * 10) == b"x" * 10


def test_timestamp_has_nine_digits_and_rounds_up_into_the_next_second():
    assert timestamp(T) == STAMP
    assert timestamp(1_700_000_000.9999999999) == "2023-11-14T22:13:21.000000000Z"
