"""One network namespace's nftables, through libnftables: what the proxy and the policy agent
program their tables with.

Running the `nft` binary costs some 16 ms per transaction here before nft has done anything
(the process, its libraries, and `ip netns exec` for a node's namespace); a change to a small
table then takes 16 ms where the kernel needs well under one. `Nftables` keeps one
libnftables context (Debian's libnftables1, which the nftables package depends on) in a
thread of its own that has joined the namespace, and hands each transaction to it: the same
`nft -f` language, the same atomic transaction, the same error text, without the process.
ctypes releases the GIL for the call, so the event loop goes on meanwhile.

Where the library cannot be loaded, the `nft` binary is run instead (`NftBinary`).

A network namespace belongs to a thread (setns), and the context's netlink socket to the
namespace it was opened in, so the context is made on the worker thread after it joined.
A transaction that has no answer within `timeout` is reported as failed and its worker is
abandoned (the C call cannot be interrupted): the next transaction gets a new worker.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import functools
import os
from collections.abc import Sequence
from typing import Protocol

NFT_TIMEOUT = 30.0  # seconds, as for any command the node's agents run
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"  # where `ip netns add` keeps named namespaces


class NftError(Exception):
    """A transaction nft refused or could not run; `stderr` is nft's own error text."""

    def __init__(self, returncode: int, stderr: str) -> None:
        super().__init__(f"nft exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


class NftRunner(Protocol):
    async def run(self, text: str) -> str:
        """Apply `text` (nft's language) in one transaction and return what nft printed,
        or raise NftError."""
        ...

    def close(self) -> None: ...


class _Lib:
    """The few libnftables calls used, typed for ctypes."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self.lib = lib


@functools.cache
def load_library() -> _Lib | None:
    """libnftables, or None where it is not installed."""
    try:
        return _Lib(ctypes.CDLL("libnftables.so.1", use_errno=True))
    except OSError:
        return None


def join_netns(netns: str) -> None:
    """Move the calling thread (only it) into the named network namespace, for good."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    try:
        fd = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NftError(1, f"cannot join network namespace {netns}: {exc.strerror}") from None
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NftError(1, f"cannot join network namespace {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)


class NftContext:
    """One libnftables context, to be used by the thread that made it (in that thread's
    network namespace)."""

    def __init__(self, lib: _Lib | None = None) -> None:
        lib = lib or load_library()
        if lib is None:
            raise OSError("libnftables.so.1 is not installed")
        self.lib = lib.lib
        ctx = self.lib.nft_ctx_new(0)
        if not ctx:
            raise NftError(1, "libnftables: cannot make a context")
        self.lib.nft_ctx_buffer_output(ctx)
        self.lib.nft_ctx_buffer_error(ctx)
        self.ctx: int | None = ctx

    def run(self, text: str) -> str:
        """One `nft -f` worth of text; what nft printed, or NftError."""
        if self.ctx is None:
            raise NftError(1, "libnftables: context closed")
        rc = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
        # reading a buffer also empties it for the next run
        out = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode(errors="replace")
        err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftError(rc, err or "nft failed without a message")
        return out

    def close(self) -> None:
        if self.ctx is not None:
            self.lib.nft_ctx_free(self.ctx)
            self.ctx = None


class _Worker:
    """One thread in the namespace, holding one context."""

    def __init__(self, lib: _Lib, netns: str | None) -> None:
        self.lib, self.netns = lib, netns
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nft")
        self.context: NftContext | None = None

    def run(self, text: str) -> str:
        """On the worker thread: join the namespace and make the context the first time."""
        if self.context is None:
            if self.netns:
                join_netns(self.netns)
            self.context = NftContext(self.lib)
        return self.context.run(text)

    def close(self) -> None:
        context = self.context
        if context is not None:
            try:
                self.pool.submit(context.close)
            except RuntimeError:
                pass  # already shut down
        self.pool.shutdown(wait=False)


class Nftables:
    """nftables in `netns` (a name under /run/netns) or in this process's namespace."""

    def __init__(self, netns: str | None = None, *, timeout: float = NFT_TIMEOUT) -> None:
        lib = load_library()
        if lib is None:
            raise OSError("libnftables.so.1 is not installed")
        self.lib, self.netns, self.timeout = lib, netns, timeout
        self._worker: _Worker | None = None

    async def run(self, text: str) -> str:
        if self._worker is None:
            self._worker = _Worker(self.lib, self.netns)
        worker = self._worker
        future = asyncio.get_running_loop().run_in_executor(worker.pool, worker.run, text)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            self._worker = None  # stuck in the kernel or the library: the next run gets another
            worker.pool.shutdown(wait=False)
            raise NftError(-9, f"no answer in {self.timeout:g}s") from None

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None


class NftBinary:
    """The `nft` binary per transaction (`ip netns exec` for a named namespace)."""

    def __init__(self, netns: str | None = None, *, timeout: float = NFT_TIMEOUT) -> None:
        self.netns, self.timeout = netns, timeout

    def argv(self, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, "nft", *args] if self.netns else ["nft", *args]

    async def run(self, text: str) -> str:
        proc = await asyncio.create_subprocess_exec(*self.argv(["-f", "-"]), stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(text.encode()), self.timeout)
        except BaseException as exc:
            if proc.returncode is None:
                proc.kill()
                await asyncio.shield(proc.wait())
            if isinstance(exc, TimeoutError):
                raise NftError(-9, f"no answer in {self.timeout:g}s") from None
            raise
        if proc.returncode != 0:
            raise NftError(proc.returncode or 1, err.decode(errors="replace"))
        return out.decode(errors="replace")

    def close(self) -> None:
        pass


def nft_runner(netns: str | None = None, *, timeout: float = NFT_TIMEOUT) -> NftRunner:
    """libnftables where it is installed, else the nft binary."""
    try:
        return Nftables(netns, timeout=timeout)
    except OSError:
        return NftBinary(netns, timeout=timeout)
