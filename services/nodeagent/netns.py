"""Doing network work in another network namespace from this process.

The agent can run in the node's network namespace (started under `nsenter --net=...`), or stay
where the API server is reachable and be told the node's namespace (`--host-netns`). In the
second case everything that touches the node's network -- the kernel routes, the sockets of
probes and of the agent's own HTTP server -- is created inside that namespace.

A network namespace belongs to a thread, not to a process, and a socket stays in the namespace
it was created in. So a short-lived thread enters the namespace with setns(2), creates what is
needed (a socket, a netlink handle) or does the work, and ends; the event loop's threads never
switch. The CNI plugins and container processes need none of this: util-linux's nsenter puts
them there.

A pod's namespaces are made the same way (`new_namespaces`): a short-lived thread unshare(2)s
into new ones, which only that thread enters, and bind-mounts them on files that keep them,
instead of a process each (`ip netns add`, `ip link set lo up`, `unshare --ipc= --uts=`).
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from services.nodeagent.oci import mounts

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
_NS_FILE = {CLONE_NEWNET: "net", CLONE_NEWIPC: "ipc", CLONE_NEWUTS: "uts"}
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _in_fresh_thread(fn: Callable[[], T]) -> T:
    """Call `fn` in a thread of its own that ends with it (whatever namespaces it entered go
    with it), wait for it."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def run_in(path: str | None, fn: Callable[[], T]) -> T:
    """Call `fn` in a fresh thread inside the namespace at `path` (None: this one), wait for it.

    The namespace file must exist: this never creates one."""
    if path is None:
        return fn()
    if not os.path.exists(path):
        raise FileNotFoundError(f"network namespace {path} does not exist")

    def entered() -> T:
        _enter(path)
        return fn()
    return _in_fresh_thread(entered)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def new_namespaces(keep: Mapping[int, Path], *, hostname: str | None = None) -> None:
    """New namespaces of the kinds in `keep` (CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS), each kept
    by a bind mount on the path it maps to (made here, an empty file, as `ip netns add` makes
    it; an existing one is an error). A new UTS namespace gets `hostname`, a new network
    namespace its loopback up. Nothing is left behind when it fails."""
    made: list[Path] = []

    def work() -> None:
        flags = 0
        for flag in keep:
            flags |= flag
        if _libc.unshare(flags) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare: {os.strerror(err)}")
        if hostname is not None and CLONE_NEWUTS in keep:
            name = hostname.encode()
            if _libc.sethostname(name, len(name)) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"sethostname {hostname!r}: {os.strerror(err)}")
        if CLONE_NEWNET in keep:
            _loopback_up()
        tid = threading.get_native_id()
        for flag, path in keep.items():
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
            made.append(path)
            mounts.bind(Path(f"/proc/self/task/{tid}/ns/{_NS_FILE[flag]}"), path)

    try:
        _in_fresh_thread(work)
    except BaseException:
        for path in made:
            mounts.unmount(path)
            path.unlink(missing_ok=True)
        raise


def nsenter_argv(path: str | None, argv: list[str]) -> list[str]:
    """A command line that runs `argv` in the network namespace at `path` (as it is, for None)."""
    return ["nsenter", f"--net={path}", "--", *argv] if path else argv


async def call_in(path: str | None, fn: Callable[[], T]) -> T:
    """`run_in` without blocking the event loop (for netlink work that takes a while)."""
    return await asyncio.get_running_loop().run_in_executor(None, run_in, path, fn)


def socket_in(path: str | None, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM,
              proto: int = 0) -> socket.socket:
    """A new non-blocking socket living in the namespace at `path`."""
    sock = run_in(path, lambda: socket.socket(family, type_, proto))
    sock.setblocking(False)
    return sock


def listening_socket(path: str | None, host: str, port: int, backlog: int = 128) -> socket.socket:
    """A TCP socket bound and listening on host:port inside the namespace at `path`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket_in(path, family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def aiohttp_socket_factory(path: str | None) -> Callable[[tuple], socket.socket]:
    """For `aiohttp.TCPConnector(socket_factory=...)`: client connections from `path`."""
    def factory(addr_info: tuple) -> socket.socket:
        family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
        return socket_in(path, family, type_, proto)
    return factory


async def open_connection(path: str | None, host: str, port: int, timeout: float
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to host:port made from the namespace at `path`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket_in(path, family)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
