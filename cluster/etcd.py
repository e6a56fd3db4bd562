"""Run Debian's etcd binary on loopback with a data dir of our own.

Used by the test fixtures, the benchmarks and the local launcher, so that every
one of them runs the real etcd the same way.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cluster.procs import die_with_parent, restartable_ports_in_a_row, stop_process, wait_http_ok

ETCD_BINARY = os.environ.get("ETCD_BINARY", "etcd")


@dataclass
class EtcdProcess:
    """One etcd member. `start()` blocks until it answers /health."""

    data_dir: Path | None = None
    host: str = "127.0.0.1"
    client_port: int = 0
    peer_port: int = 0
    log_path: Path | None = None
    name: str = "default"
    initial_cluster: str = ""
    extra_args: list[str] = field(default_factory=list)  # later flags win over the defaults
    netns: str | None = None  # run inside this network namespace (give the ports then)
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _own_data_dir: bool = field(default=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 30.0) -> EtcdProcess:
        self.launch()
        wait_http_ok(f"http://{self.endpoint}/health", timeout=timeout, proc=self._proc,
                     log_path=self.log_path)
        return self

    def launch(self) -> subprocess.Popen:
        """Start the process without waiting (members of a cluster wait for each other)."""
        if shutil.which(ETCD_BINARY) is None:
            raise RuntimeError("etcd not found: install Debian's etcd-server (make setup does)")
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="etcd-"))
            self._own_data_dir = True
        if not (self.client_port and self.peer_port):
            # below the ephemeral range: tests restart a member on its own ports
            first = restartable_ports_in_a_row(2, self.host)
            self.client_port = self.client_port or first
            self.peer_port = self.peer_port or first + 1
        client_url = f"http://{self.host}:{self.client_port}"
        peer_url = f"http://{self.host}:{self.peer_port}"
        args = [
            *(("ip", "netns", "exec", self.netns) if self.netns else ()),
            ETCD_BINARY,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", client_url,
            "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", self.initial_cluster or f"{self.name}={peer_url}",
            # room for the API server's 3 MiB bodies (etcd's default is 1.5 MiB)
            "--max-request-bytes", str(4 * 1024 * 1024),
            "--log-level", "warn",
            "--logger", "zap",
            # Tests and the local cluster want speed over durability of each write.
            "--unsafe-no-fsync",
            *self.extra_args,
        ]
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(open(self.log_path, "ab")) if self.log_path else subprocess.DEVNULL
            self._proc = subprocess.Popen(die_with_parent(args), stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        return self._proc

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout=10)
        if self._own_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self, timeout: float = 30.0) -> EtcdProcess:
        """Start again on the same data dir (after a kill: it rejoins its cluster as itself)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout=10)
        return self.start(timeout)

    def __enter__(self) -> EtcdProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EtcdCluster:
    """Several etcd members on loopback forming one cluster (for failover tests)."""

    def __init__(self, size: int = 3, host: str = "127.0.0.1") -> None:
        first = restartable_ports_in_a_row(2 * size, host)  # members are killed and restarted
        self.members = [EtcdProcess(host=host, name=f"m{i}", client_port=first + 2 * i,
                                    peer_port=first + 2 * i + 1) for i in range(size)]

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self, timeout: float = 60.0) -> EtcdCluster:
        initial = ",".join(f"{m.name}=http://{m.host}:{m.peer_port}" for m in self.members)
        for m in self.members:
            m.initial_cluster = initial
        procs = []
        for m in self.members:
            procs.append(m.launch())
        for m in self.members:
            wait_http_ok(f"http://{m.endpoint}/health", timeout=timeout, proc=m._proc, log_path=m.log_path)
        return self

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
