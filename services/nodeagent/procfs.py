"""Process and namespace facts read from /proc, and the few commands that change them.

A PID alone does not name a process across an agent restart: PIDs are reused. A process is
named by (pid, start time in clock ticks since boot, field 22 of /proc/<pid>/stat), which the
kernel never repeats for a PID while the machine is up.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    pgrp: int
    start_ticks: int


def parse_stat(text: str) -> ProcStat:
    """Parse /proc/<pid>/stat. The command name may hold spaces and ')', so split at the last ')'."""
    head, _, tail = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = tail.split()
    # fields[0] is field 3 (state); pgrp is field 5, starttime field 22.
    return ProcStat(pid=pid, state=fields[0], pgrp=int(fields[2]), start_ticks=int(fields[19]))


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read())
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def start_ticks(pid: int) -> int | None:
    st = read_stat(pid)
    return st.start_ticks if st else None


def is_alive(pid: int, ticks: int | None) -> bool:
    """True when `pid` is still the process that started at `ticks` and has not exited (zombie)."""
    if pid <= 0:
        return False
    st = read_stat(pid)
    if st is None or st.state in ("Z", "X", "x"):
        return False
    return ticks is None or st.start_ticks == ticks


def group_members(pgrp: int, *, not_before_ticks: int) -> list[int]:
    """Live processes of process group `pgrp` that started no earlier than its leader did."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = read_stat(int(entry))
        if st and st.pgrp == pgrp and st.start_ticks >= not_before_ticks and st.state not in ("Z", "X", "x"):
            out.append(st.pid)
    return out


def netns_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of a network namespace file; equal ids are the same namespace."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def pids_in_netns(path: str) -> list[int]:
    """The processes whose network namespace is the one bound at `path` (what `ip netns pids` does)."""
    target = netns_id(path)
    if target is None:
        return []
    own = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        if netns_id(f"/proc/{entry}/ns/net") == target:
            st = read_stat(int(entry))
            if st and st.state not in ("Z", "X", "x"):
                out.append(int(entry))
    return out


def signal_pid(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def signal_group(pgrp: int, sig: int) -> bool:
    try:
        os.killpg(pgrp, sig)
        return True
    except ProcessLookupError:
        return False


def exit_code_from_returncode(returncode: int) -> int:
    """Popen's -N for "killed by signal N" becomes 128+N, as container runtimes report it."""
    return 128 - returncode if returncode < 0 else returncode


async def run(*argv: str, check: bool = True, timeout: float = 30.0) -> tuple[int, str, str]:
    """Run a short helper command (ip, nsenter) and return (status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, err.decode(errors="replace").strip())
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class CommandError(Exception):
    def __init__(self, argv: tuple[str, ...], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)}: exit {returncode}: {stderr}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


__all__ = [
    "ProcStat", "parse_stat", "read_stat", "start_ticks", "is_alive", "group_members", "netns_id",
    "pids_in_netns", "signal_pid", "signal_group", "exit_code_from_returncode", "run", "CommandError",
]
