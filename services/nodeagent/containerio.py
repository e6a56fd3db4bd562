"""A container's stdio, kept as containerd's shim and CRI logger keep it.

The container does not write its log file itself: its stdout and stderr are named pipes (FIFOs)
in the container's directory, which the agent reads and writes to the log in kubelet's CRI
format, one record per line (`2016-10-06T00:17:09.669794202Z stdout F text`, `P` for a piece
of a line longer than 16 KiB), so `kubectl logs` can offer --timestamps, --since and
--limit-bytes as on a real node. What it reads also goes, as it comes, to the clients attached
to the container (`kubectl attach`, `kubectl run -i`).

The container holds its FIFO ends open for reading and writing, so it never gets SIGPIPE: while
no agent reads (an agent restart), output waits in the pipe (and a container that fills it
waits too, as one whose shim is stuck); the next agent reopens the FIFOs (`adopt`) and goes on.

`stdin: true` gives the container a FIFO to read; the agent keeps its writing end, so the
container waits for input instead of reading EOF, until an attached client sends some. With
`stdinOnce` the container holds only a reading end, and the agent closes its end when the
first attached client leaves: the container reads EOF, as with kubelet. Without it the
container holds a writing end as well, so its stdin never ends (also across agent restarts).

`tty: true` gives the container a pseudo-terminal as stdin, stdout and stderr and as its
controlling terminal; the agent holds the master. A terminal cannot be handed to a new agent:
a container with a tty does not survive its agent (it gets SIGHUP), a known limit.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import struct
import termios
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("nodeagent.containerio")

STDOUT, STDERR = "stdout", "stderr"
MAX_LINE = 16 * 1024  # containerd's maxContainerLogLineSize
READ_CHUNK = 32 * 1024
ATTACH_QUEUE = 1024  # chunks an attached client may lag behind before it is let go
# the container's own script that takes the terminal as its controlling one: a session leader
# (the runtime starts every container in a session of its own) opening a tty acquires it
TTY_WRAPPER = ("/bin/sh", "-c", 'exec 0<>"$1" 1>&0 2>&0; shift; exec "$@"', "mc-tty")


def timestamp(t: float) -> str:
    """RFC 3339 with nanoseconds, UTC (what containerd writes, kubelet's RFC3339NanoFixed)."""
    whole = int(t)
    nanos = int(round((t - whole) * 1e9))
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@dataclass
class CriLineWriter:
    """Bytes of one stream in, CRI log records out; a line without its end waits for it."""

    stream: str
    pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes, now: float) -> bytes:
        self.pending += data
        out = []
        stamp = timestamp(now)
        while True:
            end = self.pending.find(b"\n")
            if end < 0 or end > MAX_LINE:
                if len(self.pending) < MAX_LINE:
                    break
                out.append(self._record(stamp, "P", bytes(self.pending[:MAX_LINE])))
                del self.pending[:MAX_LINE]
                continue
            out.append(self._record(stamp, "F", bytes(self.pending[:end])))
            del self.pending[:end + 1]
        return b"".join(out)

    def flush(self, now: float) -> bytes:
        """At the stream's end: what is left, as a whole line (as containerd's logger does)."""
        if not self.pending:
            return b""
        rest, self.pending = bytes(self.pending), bytearray()
        return self._record(timestamp(now), "F", rest)

    def _record(self, stamp: str, tag: str, text: bytes) -> bytes:
        return f"{stamp} {self.stream} {tag} ".encode() + text + b"\n"


class _Reader:
    """Non-blocking reads of a FIFO or pty master with the event loop; b"" at the end."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                fut: asyncio.Future[None] = loop.create_future()
                loop.add_reader(self.fd, _wake, fut)
                try:
                    await fut
                finally:
                    loop.remove_reader(self.fd)
            except OSError as exc:
                if exc.errno == errno.EIO:  # a pty whose other side is all closed
                    return b""
                raise


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            time.sleep(0.01)


Chunk = tuple[str, bytes]


class ContainerIO:
    """One container's stdio on the agent's side: pumps to the log, attached clients, stdin."""

    def __init__(self, directory: Path, log_path: str, *, stdin: bool, stdin_once: bool, tty: bool) -> None:
        self.directory, self.log_path = directory, log_path
        self.stdin, self.stdin_once, self.tty = stdin, stdin_once, tty
        self._child_fds: list[int] = []
        self._sources: list[tuple[str, int]] = []  # (stream, fd) the agent reads
        self._stdin_fd: int | None = None  # the agent's writing end (FIFO) or the pty master
        self._master: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.attached: set[asyncio.Queue[Chunk | None]] = set()
        self.done = asyncio.Event()
        self.attach_count = 0

    # ----------------------------------------------------------------- before the start

    def child_stdio(self) -> tuple[int, int, int]:
        """The fds the container gets as 0, 1, 2 (the caller closes none: `started` does)."""
        if self.tty:
            master, slave = os.openpty()
            self._master = self._stdin_fd = master
            self._sources = [(STDOUT, os.dup(master))]
            self._child_fds = [slave]
            return slave, slave, slave
        out = self._fifo(STDOUT, os.O_RDWR)
        err = self._fifo(STDERR, os.O_RDWR)
        self._sources = [(STDOUT, os.open(self.directory / STDOUT, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)),
                         (STDERR, os.open(self.directory / STDERR, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))]
        if self.stdin:
            path = self.directory / "stdin"
            os.mkfifo(path, 0o600)
            self._stdin_fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            mode = os.O_RDONLY if self.stdin_once else os.O_RDWR
            child_in = os.open(path, mode | os.O_NONBLOCK | os.O_CLOEXEC)
            os.set_blocking(child_in, True)
            self._child_fds.append(child_in)
        else:
            child_in = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            self._child_fds.append(child_in)
        return child_in, out, err

    def terminal_from_runtime(self, master: int) -> None:
        """The terminal an OCI runtime made inside the container (runc's console socket): the
        agent holds its master, as it holds the one `child_stdio` opens."""
        self._master = self._stdin_fd = master
        self._sources = [(STDOUT, os.dup(master))]
        self._child_fds = []

    def wrap(self, argv: list[str]) -> list[str]:
        """The command line, taking the terminal as controlling terminal first when there is one."""
        if not self.tty:
            return argv
        return [*TTY_WRAPPER, os.ttyname(self._child_fds[0]), *argv]

    def _fifo(self, name: str, mode: int) -> int:
        path = self.directory / name
        os.mkfifo(path, 0o600)
        fd = os.open(path, mode | os.O_CLOEXEC)
        self._child_fds.append(fd)
        return fd

    def started(self) -> None:
        """The container runs (or failed to start): drop its ends, pump what it writes."""
        for fd in self._child_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._child_fds = []
        self._start_pumps()

    def abandon(self) -> None:
        """The container never started: close everything."""
        for fd in self._child_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._child_fds = []
        self.close()

    @classmethod
    def adopt(cls, directory: Path, log_path: str, *, stdin: bool, stdin_once: bool) -> ContainerIO | None:
        """The FIFOs of a container another agent started; None when it has none (a tty, or older)."""
        if not (directory / STDOUT).exists():
            return None
        io = cls(directory, log_path, stdin=stdin, stdin_once=stdin_once, tty=False)
        try:
            io._sources = [(s, os.open(directory / s, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
                           for s in (STDOUT, STDERR)]
            if stdin and (directory / "stdin").exists():
                io._stdin_fd = os.open(directory / "stdin", os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot adopt the stdio of %s: %s", directory, exc)
            io.close()
            return None
        io._start_pumps()
        return io

    # ----------------------------------------------------------------- running

    def _start_pumps(self) -> None:
        writers = {s: CriLineWriter(s) for s, _ in self._sources}
        logfile = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

        async def pump(stream: str, fd: int) -> None:
            reader = _Reader(fd)
            try:
                while data := await reader.read():
                    _write_all(logfile, writers[stream].feed(data, time.time()))
                    self._fan_out((stream, data))
            except OSError as exc:
                log.warning("reading the %s of %s: %s", stream, self.directory.name[:12], exc)
            finally:
                _write_all(logfile, writers[stream].flush(time.time()))
                os.close(fd)

        async def all_pumps() -> None:
            try:
                await asyncio.gather(*(pump(s, fd) for s, fd in self._sources))
            finally:
                os.close(logfile)
                self.done.set()
                self._fan_out(None)

        self._tasks.append(asyncio.get_running_loop().create_task(all_pumps()))

    def _fan_out(self, chunk: Chunk | None) -> None:
        for queue in list(self.attached):
            if chunk is not None and queue.qsize() >= ATTACH_QUEUE:
                log.info("an attached client of %s fell behind and was let go", self.directory.name[:12])
                self.attached.discard(queue)
                queue.put_nowait(None)
                continue
            queue.put_nowait(chunk)

    def attach(self) -> asyncio.Queue[Chunk | None]:
        """Output from now on, as (stream, bytes); None at the end (the container's or ours)."""
        queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self.attach_count += 1
        if self.done.is_set():
            queue.put_nowait(None)
        else:
            self.attached.add(queue)
        return queue

    def detach(self, queue: asyncio.Queue[Chunk | None]) -> None:
        """A client left: with stdinOnce its stdin ends for good."""
        self.attached.discard(queue)
        if self.stdin_once and not self.tty:
            self.close_stdin()

    async def write_stdin(self, data: bytes) -> None:
        fd = self._stdin_fd
        if fd is None:
            return
        try:
            await asyncio.to_thread(_write_all, fd, data)
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EPIPE, errno.EBADF):
                raise

    def close_stdin(self) -> None:
        """EOF for the container's stdin; on a terminal ^D, what a user would type."""
        if self.tty and self._master is not None:
            with contextlib.suppress(OSError):
                os.write(self._master, b"\x04")
            return
        fd, self._stdin_fd = self._stdin_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def resize(self, width: int, height: int) -> None:
        if self._master is not None and width > 0 and height > 0:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def close(self) -> None:
        """Stop pumping (the agent stops, or the container is removed)."""
        for task in self._tasks:
            task.cancel()
        if not self._tasks:
            for _, fd in self._sources:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._tasks = []
        if self._stdin_fd is not None and self._stdin_fd != self._master:
            with contextlib.suppress(OSError):
                os.close(self._stdin_fd)
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
        self._stdin_fd = self._master = None

