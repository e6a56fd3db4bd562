"""The OCI runtime binary (runc, or crun: same command line), driven as containerd's shim drives it.

One call starts a container: `runc run --detach` creates and starts it from its bundle and
exits, leaving the container's first process behind with the stdio runc was given (runc's
"pass-through" mode: the FIFOs or the terminal of `containerio`). The caller is a child
subreaper (`become_subreaper`), so that process becomes its child when runc exits and its
exit status can be read, as the shim reads it.

Each node agent keeps its runtime's state under a root of its own (`--root`), so two nodes on
one machine, or a Docker engine's runc, never see each other's containers. runc writes its
errors to a log file (`--log`, JSON) whose last error is the message a pod's status shows.
"""
from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36


class RuncError(Exception):
    """The runtime refused: the message is its own last error."""


def become_subreaper() -> None:
    """Orphaned descendants (a container's first process once runc exits) become our children."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def last_error(log_text: str) -> str:
    """The last error-level message of runc's JSON log (its final words), else the last line."""
    message = ""
    for raw in log_text.splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            message = line
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "fatal"):
            message = str(record.get("msg", ""))
    return message


@contextmanager
def _removed_after(path: Path) -> Iterator[None]:
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Runc:
    """`binary` (runc or crun) with its state kept under `root`."""

    root: Path
    binary: str = "runc"

    def __post_init__(self) -> None:
        if shutil.which(self.binary) is None:
            raise RuncError(f"OCI runtime {self.binary!r} not found")

    def _argv(self, *args: str, log: Path | None = None) -> list[str]:
        argv = [self.binary, "--root", str(self.root)]
        if log is not None:
            argv += ["--log", str(log), "--log-format", "json"]
        return [*argv, *args]

    async def run_detached(self, container_id: str, bundle: Path, *, stdio: tuple[int, int, int]) -> int:
        """Create and start the container with `stdio` as its own; its first process's PID."""
        return await self._run(container_id, bundle, stdio=stdio)

    async def _run(self, container_id: str, bundle: Path, *, stdio: tuple[int, int, int] | None = None,
                   console_socket: Path | None = None) -> int:
        pid_file = bundle / "pid"
        log = bundle / "runtime.log"
        extra = ["--console-socket", str(console_socket)] if console_socket is not None else []
        proc = await asyncio.create_subprocess_exec(
            *self._argv("run", "--detach", "--bundle", str(bundle), "--pid-file", str(pid_file), *extra,
                        container_id, log=log),
            stdin=stdio[0] if stdio else asyncio.subprocess.DEVNULL,
            stdout=stdio[1] if stdio else asyncio.subprocess.DEVNULL,
            stderr=stdio[2] if stdio else asyncio.subprocess.DEVNULL, start_new_session=True)
        if await proc.wait() != 0:
            raise RuncError(self._failure(log, f"{self.binary} run exited with {proc.returncode}"))
        return int(pid_file.read_text().strip())

    async def run_with_terminal(self, container_id: str, bundle: Path) -> tuple[int, int]:
        """Create and start a container whose config asks for a terminal: runc makes the pty
        inside the container (its controlling terminal) and hands the master over a unix
        socket, as containerd's shim receives it. (PID, the master's fd, which the caller owns)."""
        # a unix socket's path must fit in 108 bytes: not in the bundle, whose path can be long
        path = Path(tempfile.gettempdir()) / f"mc-console-{uuid.uuid4().hex[:16]}.sock"
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server, _removed_after(path):
            server.bind(str(path))
            server.listen(1)
            server.setblocking(False)
            run = asyncio.ensure_future(self._run(container_id, bundle, console_socket=path))
            accept = asyncio.ensure_future(loop.sock_accept(server))
            await asyncio.wait([run, accept], return_when=asyncio.FIRST_COMPLETED)
            if not accept.done():
                accept.cancel()
                await run  # it failed without connecting: raises RuncError
                raise RuncError(f"{self.binary} never sent the container's terminal")
            conn, _ = accept.result()
            with conn:
                conn.setblocking(True)
                conn.settimeout(10)
                _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            try:
                pid = await run
            except BaseException:
                for fd in fds:
                    os.close(fd)
                raise
        if not fds:
            raise RuncError(f"{self.binary} sent no terminal")
        return pid, fds[0]

    @staticmethod
    def _failure(log: Path, fallback: str) -> str:
        try:
            return last_error(log.read_text(errors="replace")) or fallback
        except FileNotFoundError:
            return fallback

    async def _call(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *self._argv(*args), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace")

    async def delete(self, container_id: str) -> None:
        """Forget a container (force: killed first if it still runs). Idempotent."""
        code, out = await self._call("delete", "--force", container_id)
        if code != 0 and "does not exist" not in out and "not exist" not in out:
            raise RuncError(out.strip() or f"{self.binary} delete exited with {code}")

    async def state(self, container_id: str) -> dict[str, Any] | None:
        code, out = await self._call("state", container_id)
        if code != 0:
            return None
        data = json.loads(out)
        return data if isinstance(data, dict) else None

    async def list_ids(self) -> list[str]:
        code, out = await self._call("list", "--format", "json")
        if code != 0:
            raise RuncError(out.strip())
        return [str(c["id"]) for c in json.loads(out or "null") or []]

    def exec_argv(self, container_id: str, cmd: Sequence[str], *, cwd: str = "") -> list[str]:
        """The command line that runs `cmd` in a running container (its namespaces, cgroup, user,
        capabilities and environment: runc takes them from the container's config)."""
        argv = self._argv("exec")
        if cwd:
            argv += ["--cwd", cwd]
        return [*argv, container_id, *cmd]
