"""Reading a container's CRI log for `pods/log` (kubelet's kuberuntime/logs.ReadLogs).

The log holds one record per line, `<RFC 3339 time> <stdout|stderr> <F|P> <text>`
(`containerio`). Options apply in kubelet's order: `tailLines` picks the last lines of the
file, records before `since` are skipped, `timestamps` puts the record's time (nine digits
of fraction, UTC) before its text, `limitBytes` cuts the output (in the middle of a line too).
`follow` goes on reading as the container writes and ends once it no longer runs and its
output is all read. A `P` record is a piece of a longer line: its text goes out without a
line end, as kubelet writes it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubecore.api.podlogs import PodLogOptions

READ_CHUNK = 64 * 1024
FOLLOW_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Record:
    seconds: int
    nanos: int
    stream: str
    partial: bool
    text: bytes  # without the record's line end

    @property
    def time(self) -> float:
        return self.seconds + self.nanos / 1e9

    def stamp(self) -> str:
        return datetime.fromtimestamp(self.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{self.nanos:09d}Z"


def parse_record(line: bytes) -> Record | None:
    """One CRI log line (with or without its line end); None for a line that is not one."""
    line = line.removesuffix(b"\n")
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    stamp, stream, tags = parts[0].decode("ascii", "replace"), parts[1].decode(), parts[2]
    text = parts[3] if len(parts) > 3 else b""
    whole, _, frac = stamp.removesuffix("Z").partition(".")
    if not stamp.endswith("Z") or not (frac.isdigit() or frac == "") or len(frac) > 9:
        return None
    try:
        seconds = int(datetime.fromisoformat(whole + "+00:00").timestamp())
    except ValueError:
        return None
    return Record(seconds, int(frac.ljust(9, "0") or 0), stream, tags.split(b":")[0] == b"P", text)


def render(record: Record, opts: PodLogOptions, since: float | None) -> bytes:
    """What one record shows (b"" when it is before `since`)."""
    if since is not None and record.time < since:
        return b""
    out = record.text if record.partial else record.text + b"\n"
    if opts.timestamps:
        out = record.stamp().encode() + b" " + out
    return out


def tail_start(data: bytes, lines: int | None) -> int:
    """Where the last `lines` lines of `data` begin (all of it for None)."""
    if lines is None:
        return 0
    if lines == 0:
        return len(data)
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    pos = end
    for _ in range(lines):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return 0
    return pos + 1


class Limit:
    """What `limitBytes` leaves to write."""

    def __init__(self, limit: int | None) -> None:
        self.remain = limit if limit is not None else -1

    def cut(self, data: bytes) -> bytes:
        if self.remain < 0:
            return data
        data = data[:self.remain]
        self.remain -= len(data)
        return data

    @property
    def reached(self) -> bool:
        return self.remain == 0


async def read_log(path: str, opts: PodLogOptions, now: float, write: Callable[[bytes], Awaitable[None]],
                   running: Callable[[], bool]) -> None:
    """Write the log at `path` as `opts` ask; with `follow`, until `running()` turns false and
    nothing more comes."""
    since = opts.since(now)
    limit = Limit(opts.limit_bytes)
    try:
        f = await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        return
    with f:
        data = await asyncio.to_thread(f.read)
        start = tail_start(data, opts.tail_lines)
        buf, shown = data[start:], 0
        while True:
            lines = buf.split(b"\n")
            # following, an unfinished line waits for its end; else it is the last one shown
            buf = lines.pop() if opts.follow else b""
            for line in lines:
                if not opts.follow and opts.tail_lines is not None and shown >= opts.tail_lines:
                    return
                record = parse_record(line)
                if record is None:
                    continue
                shown += 1
                out = limit.cut(render(record, opts, since))
                if out:
                    await write(out)
                if limit.reached:
                    return
            if not opts.follow:
                return
            chunk = await asyncio.to_thread(f.read, READ_CHUNK)
            if chunk:
                buf += chunk
                continue
            if not running():
                rest = await asyncio.to_thread(f.read)
                if not rest:
                    return
                buf += rest
                continue
            await asyncio.sleep(FOLLOW_POLL_SECONDS)

