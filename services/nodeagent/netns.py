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
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in(path: str | None, fn: Callable[[], T]) -> T:
    """Call `fn` in a fresh thread inside the namespace at `path` (None: this one), wait for it.

    The namespace file must exist: this never creates one."""
    if path is None:
        return fn()
    if not os.path.exists(path):
        raise FileNotFoundError(f"network namespace {path} does not exist")
    box: dict[str, object] = {}

    def target() -> None:
        try:
            _enter(path)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


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
