"""The proxy's command runner: a command that hangs is killed, not waited for for ever,
and a cancelled caller takes its command down with it (real processes, no netns)."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from services.proxy.iptables import CommandError, run_command


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def pid_of(pidfile: str) -> int:
    for _ in range(200):
        if os.path.exists(pidfile) and open(pidfile).read().strip():
            return int(open(pidfile).read())
        await asyncio.sleep(0.01)
    raise AssertionError("the command never started")


async def test_a_hanging_command_is_killed_after_its_timeout(tmp_path):
    pidfile = str(tmp_path / "pid")
    started = time.monotonic()
    with pytest.raises(CommandError) as failed:
        await run_command(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 5
    assert "no answer in 0.5s" in str(failed.value)
    assert not alive(int(open(pidfile).read()))


async def test_a_cancelled_caller_takes_its_command_down(tmp_path):
    pidfile = str(tmp_path / "pid")
    task = asyncio.create_task(run_command(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"]))
    pid = await pid_of(pidfile)
    assert alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pid)


async def test_output_and_status_as_before():
    result = await run_command(["sh", "-c", "cat; echo err >&2; exit 3"], stdin="in\n",
                               ok_codes=(3,))
    assert (result.returncode, result.stdout, result.stderr) == (3, "in\n", "err\n")
    with pytest.raises(CommandError):
        await run_command(["false"])
