"""The DNS server as its own process (``python -m services.dns``) and ``dig`` against it.

Everything runs on loopback. The process is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from cluster.procs import free_port, stop_process

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


class DnsProcess:
    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.args = [
            sys.executable, "-m", "services.dns", "--kubeconfig", str(kubeconfig),
            "--listen", LOOPBACK, "--port", str(self.port),
            "--metrics-port", str(self.metrics_port), "--log-level", "DEBUG",
        ]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DnsProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while self.health("/healthz") != 200:
            assert self.proc.poll() is None, f"dns exited: {self.log_path.read_text()}"
            assert time.monotonic() < deadline, "dns /healthz never answered"
            time.sleep(0.05)
        return self

    def health(self, path: str) -> int | None:
        try:
            url = f"http://{LOOPBACK}:{self.metrics_port}{path}"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def stop(self) -> int | None:
        return stop_process(self.proc, timeout=10) if self.proc is not None else None


async def dig(port: int, *args: str) -> str:
    command = ["dig", f"@{LOOPBACK}", "-p", str(port), "+time=1", "+tries=1", *args]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=20, check=False
    )
    return done.stdout


def status_of(dig_output: str) -> str | None:
    """``NOERROR`` / ``NXDOMAIN`` / ``SERVFAIL`` from dig's header line."""
    for line in dig_output.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    return None


def a_records(dig_output: str, name: str) -> set[str]:
    fqdn = name.rstrip(".") + "."
    return {
        line.split()[-1] for line in dig_output.splitlines()
        if line.startswith(fqdn) and line.split()[3] == "A"
    }


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, timeout: float = 10.0
) -> T:
    """Poll ``probe`` until ``accept`` holds; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s; last: {value!r}")
        await asyncio.sleep(0.05)
