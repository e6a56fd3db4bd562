"""A command run in a container for a streaming exec: over pipes, or on a pseudo-terminal.

The process is started as `nsenter --target=<container pid> --net --uts --mount -- CMD`
(nsenter execs the command, so the PID is the command's own), in a new session of its own
so that ending the exec can signal everything it forked. With a tty the command gets a fresh
pty as stdin, stdout and stderr and as its controlling terminal (`setsid --ctty`, which makes
the session and sets the terminal in the child, between fork and exec of util-linux, not of
this threaded process), so shells run interactively, ^C reaches the foreground job and
resizes reach the program as SIGWINCH.
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Mapping, Sequence

from services.nodeagent import procfs

READ_CHUNK = 32 * 1024
EOT = b"\x04"


class _Fd:
    """Non-blocking reads and writes on a file descriptor (a pty master) with the event loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    async def _wait(self, add, remove) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        add(self.fd, ready)
        try:
            await fut
        finally:
            remove(self.fd)

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                await self._wait(loop.add_reader, loop.remove_reader)
            except OSError as exc:
                if exc.errno == errno.EIO:  # every slave side is closed: the end of the output
                    return b""
                raise

    async def write(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                await self._wait(loop.add_writer, loop.remove_writer)


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's, with a future done when the process ends: Process.wait() waits for its
    pipes to close as well, which a process the command left in the background holds open."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)  # create_subprocess_exec's default
        self.ended: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.ended.done():
            self.ended.set_result(None)


async def _spawn(*argv: str, **kwds) -> tuple[asyncio.subprocess.Process, asyncio.Future[None]]:
    """asyncio.create_subprocess_exec, and the future of the process's end."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(lambda: _Protocol(loop), *argv, **kwds)
    return asyncio.subprocess.Process(transport, protocol, loop), protocol.ended


class ExecProcess:
    """The running command. Output is read with `read_stdout` / `read_stderr` (b"" at the end;
    with a tty everything comes as stdout), input written with `write_stdin`."""

    def __init__(self, proc: asyncio.subprocess.Process, ended: asyncio.Future[None], master: int | None) -> None:
        self.proc = proc
        self._ended = ended
        self.pid = proc.pid
        self._master = _Fd(master) if master is not None else None
        self.tty = master is not None

    @classmethod
    async def start(cls, argv: Sequence[str], *, env: Mapping[str, str], stdin: bool, stdout: bool, stderr: bool,
                    tty: bool, setsid: str) -> ExecProcess:
        if not tty:
            pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
            proc, ended = await _spawn(
                *argv, env=dict(env), stdin=pipe if stdin else null, stdout=pipe if stdout else null,
                stderr=pipe if stderr else null, start_new_session=True)
            return cls(proc, ended, None)
        master, slave = os.openpty()
        try:
            env = {"TERM": "xterm", **env}
            proc, ended = await _spawn(setsid, "--ctty", *argv, env=env, stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(proc, ended, master)

    async def read_stdout(self) -> bytes:
        if self.tty:
            return await self._master.read() if self._master is not None else b""
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(READ_CHUNK)

    async def read_stderr(self) -> bytes:
        assert self.proc.stderr is not None
        return await self.proc.stderr.read(READ_CHUNK)

    async def write_stdin(self, data: bytes) -> None:
        """Write to the command's stdin; what it no longer reads is dropped."""
        try:
            if self._master is not None:
                await self._master.write(data)
            elif self.proc.stdin is not None and not self.proc.stdin.is_closing():
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise

    async def close_stdin(self) -> None:
        """The client's stdin ended: EOF on the pipe; on a terminal, ^D (what a user would type)."""
        if self._master is not None:
            await self.write_stdin(EOT)
        elif self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self._master is not None and width > 0 and height > 0:
            fcntl.ioctl(self._master.fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        """The exit code, as soon as the command has ended (its output may still be open)."""
        await asyncio.shield(self._ended)  # shared by every waiter: a cancelled one leaves it be
        assert self.proc.returncode is not None
        return procfs.exit_code_from_returncode(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL the command's session (its process group: what it forked and did not move)."""
        if self.proc.returncode is None:
            procfs.signal_group(self.pid, signal.SIGKILL)

    def close(self) -> None:
        if self._master is not None:
            try:
                os.close(self._master.fd)
            except OSError:
                pass
            self._master = None
