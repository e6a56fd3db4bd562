"""Small helpers for the processes the project starts: free ports, waiting for health."""
from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request


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


def wait_http_ok(url: str, *, timeout: float = 20.0, proc=None, cafile: str | None = None) -> None:
    """Poll `url` until it answers 200 (an https URL verified against `cafile`); fail early
    if `proc` exits."""
    ctx = tls_context(cafile)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return
                last = resp.status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not healthy after {timeout}s (last: {last})")


def die_with_parent():
    """A preexec_fn under which the child gets SIGTERM when the process that started it dies,
    so a test run that is killed does not leave its etcd or API server behind; or None.

    The kernel ties this to the *thread* that forks, not the process: a child started from a
    worker thread would be killed as soon as that thread ends. So it is only given to
    children started from the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return _set_parent_death_signal


def _set_parent_death_signal() -> None:
    import ctypes
    import signal

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
