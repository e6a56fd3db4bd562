"""Small helpers for the processes the project starts: free ports, waiting for health."""
from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_ports_in_a_row(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive TCP ports free on `host` right now (the members of
    an etcd cluster take theirs in a row)."""
    while True:
        first = free_port(host)
        if first + count <= 65536 and _all_free(host, first, count):
            return first


def _all_free(host: str, first: int, count: int) -> bool:
    """Whether TCP ports `first` .. `first + count - 1` can all be bound on `host` now."""
    with contextlib.ExitStack() as held:
        try:
            for port in range(first, first + count):
                held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)).bind((host, port))
        except OSError:
            return False
    return True


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
NODE_PORT_RANGE_START = 30000  # and the Services' node ports (30000-32767) are left alone too


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel takes the local ports of outgoing connections from."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def restartable_ports_in_a_row(count: int, host: str = "127.0.0.1", *, lowest: int = 23000) -> int:
    """The first of `count` consecutive TCP ports free on `host` now, below the kernel's
    ephemeral range (and the node-port range). A server stopped and started again on one (an
    etcd member replaced, an API server a test killed) finds it free: a port of the ephemeral
    range may meanwhile have become the local end of some outgoing connection, and the
    restart fails to bind."""
    top = min(ephemeral_ports()[0], NODE_PORT_RANGE_START) - count
    if top <= lowest:
        return free_ports_in_a_row(count, host)
    for _ in range(1000):
        first = random.randrange(lowest, top)
        if _all_free(host, first, count):
            return first
    return free_ports_in_a_row(count, host)


def free_port(host: str = "127.0.0.1", *, udp_too: bool = False) -> int:
    """A TCP port that is free on `host` right now (the kernel picks it); with `udp_too`,
    one free for UDP as well (a DNS server listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port


def stop_process(proc: subprocess.Popen, *, timeout: float = 10.0,
                 sig: int = signal.SIGTERM) -> int | None:
    """Send `sig` to a process we started and wait `timeout` seconds; SIGKILL it if it is
    still there. The exit status, or None when it had to be killed (or had already been
    reaped by someone else)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return None


def tls_context(cafile: str | None) -> ssl.SSLContext | None:
    """The context that verifies an https health URL against the cluster CA."""
    return ssl.create_default_context(cafile=cafile) if cafile else None


def exit_description(returncode: int) -> str:
    """How a process ended, in words: "exited with 1", "was killed by SIGABRT"."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with {returncode}"


def log_tail(path: Path | None, lines: int = 30) -> str:
    """The last `lines` lines of a process's log file, to show with a failure ("" if none)."""
    if path is None:
        return ""
    try:
        text = path.read_bytes()[-64 * 1024:].decode(errors="replace")
    except OSError:
        return ""
    tail = text.splitlines()[-lines:]
    return f"\n--- last lines of {path} ---\n" + "\n".join(tail) if tail else f"\n({path} is empty)"


def wait_http_ok(url: str, *, timeout: float = 20.0, proc=None, cafile: str | None = None,
                 log_path: Path | None = None) -> None:
    """Poll `url` until it answers 200 (an https URL verified against `cafile`); fail early
    if `proc` exits. A failure shows the end of `log_path`, where the process writes its
    output: why it exited (a traceback, a fatal signal's message) is there."""
    ctx = tls_context(cafile)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {exit_description(proc.returncode)} before {url} was healthy"
                               + log_tail(log_path))
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return
                last = resp.status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not healthy after {timeout}s (last: {last})" + log_tail(log_path))


def die_with_parent(argv: Sequence[str]) -> list[str]:
    """`argv` run under `setpriv --pdeathsig TERM`, so the child gets SIGTERM when the process
    that started it dies: a test run that is killed does not leave its etcd or API server
    behind.

    Not a `preexec_fn` calling prctl(PR_SET_PDEATHSIG): any preexec_fn makes CPython start
    the child with fork() rather than vfork(), which runs every pthread_atfork handler in the
    child. gRPC's (aetcd's) handler restarts gRPC's threads there, on state copied while they
    were mid-call, and they crashed the child (SIGSEGV, SIGABRT) before it reached exec --
    in the test process, where in-process API servers leave gRPC's threads running. util-linux
    makes the prctl call after exec instead, as the node agent's runtime does with nsenter.

    The kernel ties the signal to the *thread* that forks, not the process: a child started
    from a worker thread would be killed as soon as that thread ends. So only children started
    from the main thread get it. `argv[0]` is looked up on PATH here, so that a missing
    program raises FileNotFoundError as Popen would, not exit 127 from setpriv."""
    import threading

    program = shutil.which(argv[0])
    if program is None:
        raise FileNotFoundError(f"{argv[0]}: not found")
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", program, *argv[1:]]
