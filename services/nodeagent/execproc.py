"""A command run in a container for a streaming exec: over pipes, or on a pseudo-terminal.

The process is started as `nsenter --target=<container pid> --net --uts --mount -- CMD`
(nsenter execs the command, so the PID is the command's own), in a new session of its own
so that ending the exec can signal everything it forked. With a tty the command gets a fresh
pty as stdin, stdout and stderr and as its controlling terminal (`setsid --ctty`, which makes
the session and sets the terminal in the child, between fork and exec of util-linux, not of
this threaded process), so shells run interactively, ^C reaches the foreground job and
resizes reach the program as SIGWINCH.

Without a tty, stdout and stderr are pipes the event loop watches before the command starts,
read as one sequence in the order the pieces came (`_PipeOutput`), as the kubelet's runtime
forwards each pipe as it is written: what a short command writes to both before anyone
reads -- tar's "Cannot stat" on stderr, then its empty archive on stdout -- keeps its order.
(asyncio's subprocess pipes are only watched once the command runs, one after the other, and
two readers would send whichever they were scheduled first.)
"""
from __future__ import annotations

import asyncio
import collections
import errno
import fcntl
import functools
import os
import signal
import struct
import termios
from collections.abc import Mapping, Sequence

from services.nodeagent import procfs

READ_CHUNK = 32 * 1024
EOT = b"\x04"
STDOUT, STDERR = 1, 2
OUTPUT_LIMIT = 2**17  # bytes read ahead of the sender: reading pauses beyond this


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


class _PipeOutput:
    """The command's stdout and stderr as one sequence of (STDOUT or STDERR, bytes) in the order
    the pieces were read. The pipes are made and watched before the command starts (`open`,
    then `started` once it has), so the loop sees each piece when it is written."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self._pieces: collections.deque[tuple[int, bytes]] = collections.deque()
        self._size = 0
        self._limit = limit
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._transports: dict[int, asyncio.ReadTransport] = {}
        self._open: set[int] = set()
        self.write_ends: dict[int, int] = {}  # the command's stdout/stderr until it has started

    @classmethod
    async def open(cls, streams: Sequence[int]) -> _PipeOutput:
        """A pipe for each of `streams` (STDOUT, STDERR), watched by the event loop."""
        output = cls()
        loop = asyncio.get_running_loop()
        try:
            for stream in streams:
                read_end, output.write_ends[stream] = os.pipe()
                transport, _ = await loop.connect_read_pipe(functools.partial(_OutputPipe, output, stream),
                                                            os.fdopen(read_end, "rb", buffering=0))
                output._transports[stream] = transport
                output._open.add(stream)
        except BaseException:
            output.close()
            raise
        return output

    def started(self) -> None:
        """The command has its copies of the write ends: close ours, so its exit is the end."""
        for fd in self.write_ends.values():
            os.close(fd)
        self.write_ends.clear()

    def close(self) -> None:
        self.started()
        for transport in self._transports.values():
            transport.close()

    async def read(self) -> tuple[int, bytes] | None:
        """The next (STDOUT or STDERR, bytes); None once every pipe has ended."""
        while not self._pieces:
            if not self._open:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        stream, data = self._pieces.popleft()
        self._size -= len(data)
        if self._paused and self._size <= self._limit:
            self._paused = False
            for transport in self._transports.values():
                if not transport.is_closing():
                    transport.resume_reading()
        return stream, data

    def _received(self, stream: int, data: bytes) -> None:
        self._pieces.append((stream, data))
        self._size += len(data)
        if self._size > self._limit and not self._paused:
            self._paused = True
            for transport in self._transports.values():
                if not transport.is_closing():
                    transport.pause_reading()
        self._wake()

    def _ended(self, stream: int) -> None:
        self._open.discard(stream)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _OutputPipe(asyncio.Protocol):
    def __init__(self, output: _PipeOutput, stream: int) -> None:
        self.output, self.stream = output, stream

    def data_received(self, data: bytes) -> None:
        self.output._received(self.stream, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.output._ended(self.stream)


async def _spawn(*argv: str, **kwds) -> tuple[asyncio.subprocess.Process, asyncio.Future[None]]:
    """asyncio.create_subprocess_exec, and the future of the process's end."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(lambda: _Protocol(loop), *argv, **kwds)
    return asyncio.subprocess.Process(transport, protocol, loop), protocol.ended


class ExecProcess:
    """The running command. Its output is read with `read_output`: (STDOUT or STDERR, bytes) in
    the order it came, None at the end; with a tty everything comes as stdout. Input is written
    with `write_stdin`."""

    def __init__(self, proc: asyncio.subprocess.Process, ended: asyncio.Future[None], *,
                 output: _PipeOutput | None = None, master: int | None = None) -> None:
        self.proc = proc
        self._ended = ended
        self.pid = proc.pid
        self._output = output
        self._master = _Fd(master) if master is not None else None
        self.tty = master is not None

    @classmethod
    async def start(cls, argv: Sequence[str], *, env: Mapping[str, str], stdin: bool, stdout: bool, stderr: bool,
                    tty: bool, setsid: str) -> ExecProcess:
        if not tty:
            null = asyncio.subprocess.DEVNULL
            output = await _PipeOutput.open([s for s, wanted in ((STDOUT, stdout), (STDERR, stderr)) if wanted])
            try:
                proc, ended = await _spawn(
                    *argv, env=dict(env), stdin=asyncio.subprocess.PIPE if stdin else null,
                    stdout=output.write_ends.get(STDOUT, null), stderr=output.write_ends.get(STDERR, null),
                    start_new_session=True)
            except BaseException:
                output.close()
                raise
            output.started()
            return cls(proc, ended, output=output)
        master, slave = os.openpty()
        try:
            env = {"TERM": "xterm", **env}
            proc, ended = await _spawn(setsid, "--ctty", *argv, env=env, stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(proc, ended, master=master)

    async def read_output(self) -> tuple[int, bytes] | None:
        """The next piece of output, (STDOUT or STDERR, bytes); None once all of it has ended."""
        if self._master is not None:
            data = await self._master.read()
            return (STDOUT, data) if data else None
        return await self._output.read() if self._output is not None else None

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
        if self._output is not None:
            self._output.close()
        if self._master is not None:
            try:
                os.close(self._master.fd)
            except OSError:
                pass
            self._master = None
