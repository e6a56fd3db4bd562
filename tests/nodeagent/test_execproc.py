"""ExecProcess on this host (no container, no root): the output of a command as execstream reads it."""
from __future__ import annotations

import asyncio
import os
import shutil

from services.nodeagent.execproc import STDERR, STDOUT, ExecProcess


async def start(script: str) -> ExecProcess:
    return await ExecProcess.start(["sh", "-c", script], env=dict(os.environ), stdin=False, stdout=True,
                                   stderr=True, tty=False, setsid=shutil.which("setsid") or "setsid")


async def read_all(proc: ExecProcess) -> list[tuple[int, bytes]]:
    pieces = []
    while (piece := await proc.read_output()) is not None:
        pieces.append(piece)
    return pieces


async def test_output_read_after_the_command_ended_keeps_the_order_it_was_written_in():
    # tar of a missing path: its error on stderr, then an empty archive on stdout, then exit.
    # (What a pipe took in between two reads comes as one piece: the order is the pieces'.)
    for _ in range(10):
        proc = await start("echo 'Cannot stat' >&2; printf '\\0\\0'")
        try:
            await proc.wait()
            await asyncio.sleep(0.05)  # an agent busy elsewhere: both pipes hold output by now
            assert await read_all(proc) == [(STDERR, b"Cannot stat\n"), (STDOUT, b"\0\0")]
        finally:
            proc.close()


async def test_output_larger_than_what_is_read_ahead_arrives_whole():
    # 3 MB on stdout and 1 MB on stderr, read slowly: reading pauses and resumes, nothing is lost
    proc = await start("head -c 3000000 /dev/zero; head -c 1000000 /dev/zero | tr '\\0' e >&2")
    try:
        got = {STDOUT: 0, STDERR: 0}
        while (piece := await proc.read_output()) is not None:
            got[piece[0]] += len(piece[1])
            await asyncio.sleep(0)
        assert got == {STDOUT: 3_000_000, STDERR: 1_000_000}
        assert await proc.wait() == 0
    finally:
        proc.close()
