"""Fixtures shared by the whole suite: a real etcd, and API servers over it; and the markers
that say what a test needs, so the fast part runs alone (`make test-fast`).

The markers are given from what a test uses (its fixtures, its directory), so a new test is
marked without anyone remembering to: one that starts processes by hand marks its module
with `pytestmark` instead.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from cluster.etcd import EtcdProcess
from cluster.pki import KeyPair, Pki
from cluster.procs import die_with_parent, exit_description, free_port, log_tail, wait_http_ok
from kubecore.client.config import ClientConfig

ROOT = Path(__file__).resolve().parent.parent

# In-process API servers leave gRPC's threads running in this process for the rest of the run.
# grpcio's fork handlers (on unless this says otherwise) restart those threads in a child made
# with fork(), and they crashed it before exec; children are started without fork()
# (`cluster.procs.die_with_parent`), and should one be forked anyway, gRPC leaves it alone.
# Read when gRPC is first imported, which is after this.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
TESTS = ROOT / "tests"

# A test whose fixtures (at any depth) include one of these needs what the marker names.
MARKER_FIXTURES: dict[str, frozenset[str]] = {
    "etcd": frozenset({"etcd_server"}),  # etcd, apiserver, http, apiserver_process all use it
    "netns": frozenset({"node_netns", "lab", "scratch_ns"}),  # network namespaces, so root
    "compat": frozenset({"kubectl"}),
}
# Every test under these directories needs what the marker names.
MARKER_DIRS: dict[str, str] = {"e2e": "e2e", "compat": "compat", "compose": "compose"}


def markers_for(top_dir: str, fixturenames: Iterable[str]) -> set[str]:
    """The markers a test gets from its first directory under tests/ and its fixtures."""
    names = set(fixturenames)
    found = {marker for marker, fixtures in MARKER_FIXTURES.items() if names & fixtures}
    found |= {marker for marker, directory in MARKER_DIRS.items() if top_dir == directory}
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.resolve()
        parts = path.relative_to(TESTS).parts if path.is_relative_to(TESTS) else ()
        top_dir = parts[0] if len(parts) > 1 else ""
        present = {mark.name for mark in item.iter_markers()}
        for marker in sorted(markers_for(top_dir, getattr(item, "fixturenames", ())) - present):
            item.add_marker(marker)


@pytest.fixture(autouse=True)
def only_tests_marked_etcd_start_it(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts etcd by hand without the `etcd` marker would be in `make test-fast`
    and fail there; make it fail in every run instead, saying what to do."""
    if request.node.get_closest_marker("etcd") is not None:
        return

    def refuse(self: EtcdProcess) -> None:
        raise RuntimeError(f"{request.node.nodeid} starts etcd: mark it `pytest.mark.etcd`")
    monkeypatch.setattr(EtcdProcess, "launch", refuse)


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdProcess]:
    with EtcdProcess() as etcd:
        yield etcd


def wipe_etcd(endpoint: str) -> None:
    subprocess.run(["etcdctl", "--endpoints", endpoint, "del", "--prefix", "/"],
                   check=True, capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})


@pytest.fixture
def etcd(etcd_server: EtcdProcess) -> EtcdProcess:
    """The session's etcd, emptied for this test."""
    wipe_etcd(etcd_server.endpoint)
    return etcd_server


class SessionPki:
    """The test session's PKI (`cluster.pki`), made once in a private directory: the CA, the
    API server's serving certificate for 127.0.0.1 and 127.0.0.2 (a second server on the same
    port), the admin's client certificate
    (system:masters), and client certificates for whoever a test acts as."""

    _instance: SessionPki | None = None

    def __init__(self) -> None:
        import atexit
        import shutil
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="minicluster-test-pki-"))
        atexit.register(shutil.rmtree, directory, True)
        self.pki = Pki.create(directory / "pki")
        self.serving = self.pki.apiserver(ips=["127.0.0.2"])
        self.admin = self.pki.admin()
        self.kubelet_client = self.pki.kubelet_client()
        self._node_serving: dict[str, KeyPair] = {}
        self._clients: dict[tuple[str, tuple[str, ...]], KeyPair] = {}

    @classmethod
    def get(cls) -> SessionPki:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    @property
    def ca_file(self) -> str:
        return str(self.pki.ca.cert)

    def client(self, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        key = (user, groups)
        if key not in self._clients:
            stem = f"client-{len(self._clients)}"
            self._clients[key] = self.pki.client(stem, user, list(groups))
        return self._clients[key]

    def kubeconfig(self, path: Path, server: str, pair: KeyPair | None = None) -> Path:
        """A kubeconfig file for a component started as a process."""
        from kubecore.client.config import write_kubeconfig

        pair = pair or self.admin
        write_kubeconfig(path, name="test", server=server, ca_file=self.pki.ca.cert,
                         cert_file=pair.cert, key_file=pair.key)
        return path

    def config(self, server: str, pair: KeyPair | None = None) -> ClientConfig:
        """A client of `server` presenting `pair` (the admin's by default)."""
        pair = pair or self.admin
        return ClientConfig(server=server, ca_file=self.ca_file, cert_file=str(pair.cert),
                            key_file=str(pair.key))

    def node_serving(self, node: str, ip: str = "127.0.0.1") -> KeyPair:
        """A node agent's serving certificate for `ip`."""
        if (node, ip) not in self._node_serving:
            self._node_serving[(node, ip)] = self.pki.serving(
                f"node-{len(self._node_serving)}-serving", f"system:node:{node}", ips=[ip])
        return self._node_serving[(node, ip)]

    def agent_flags(self, node: str, ip: str) -> list[str]:
        """The TLS flags of `python -m services.nodeagent` for `node` at `ip`."""
        pair = self.node_serving(node, ip)
        return ["--tls-cert-file", str(pair.cert), "--tls-private-key-file", str(pair.key),
                "--client-ca-file", self.ca_file]

    def agent_ssl_context(self, node: str = "test", ip: str = "127.0.0.1"):
        """A server TLS context for a stand-in node agent at `ip`."""
        from services.nodeagent.auth import server_ssl_context

        pair = self.node_serving(node, ip)
        return server_ssl_context(str(pair.cert), str(pair.key), self.ca_file)

    def python_client(self, server: str, pair: KeyPair | None = None):
        """The official client's `Configuration` for `server` as the admin (or `pair`)."""
        from kubernetes import client

        pair = pair or self.admin
        cfg = client.Configuration()
        cfg.host = server
        cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file = self.ca_file, str(pair.cert), str(pair.key)
        return cfg

    def apiserver_flags(self) -> list[str]:
        """The TLS and authentication flags of `python -m services.apiserver`."""
        return ["--tls-cert-file", str(self.serving.cert), "--tls-private-key-file",
                str(self.serving.key), "--client-ca-file", self.ca_file,
                "--service-account-key-file", str(self.pki.sa_pub),
                "--service-account-signing-key-file", str(self.pki.sa_key)]


@pytest.fixture(scope="session")
def pki() -> SessionPki:
    return SessionPki.get()


def tls_session(url: str, config: ClientConfig, *, limit: int = 100, **kw) -> aiohttp.ClientSession:
    """An aiohttp session to `url` with `config`'s TLS and credentials (`limit`: connections)."""
    return aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(ssl=config.ssl_context(), limit=limit),
                                 headers=config.headers(), **kw)


class ApiServer:
    """An in-process API server on a free loopback port, serving HTTPS with the test PKI.
    `config` is the admin's client config; `config_for(user, groups)` another user's."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.url = f"https://127.0.0.1:{settings.port}"
        self.runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self.pki = SessionPki.get()
        self.config = self.pki.config(self.url)

    def config_for(self, user: str, groups: tuple[str, ...] = ()) -> ClientConfig:
        return self.pki.config(self.url, self.pki.client(user, tuple(groups)))

    def session(self, config: ClientConfig | None = None, **kw) -> aiohttp.ClientSession:
        """An aiohttp session to this server as the admin (or with `config`'s credentials)."""
        return tls_session(self.url, config or self.config, **kw)

    def kubeconfig(self, path: Path, user: str | None = None, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig file for this server, as the admin or as `user` in `groups`."""
        return self.pki.kubeconfig(path, self.url, self.pki.client(user, groups) if user else None)


    async def start(self) -> ApiServer:
        from services.apiserver.app import create_app
        from services.apiserver.settings import server_ssl_context

        self.app = create_app(self.settings)
        self.runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.port,
                          ssl_context=server_ssl_context(self.settings)).start()
        async with self.session() as s:
            for _ in range(200):
                async with s.get("/readyz") as r:
                    if r.status == 200:
                        return self
                await asyncio.sleep(0.02)
        raise TimeoutError("apiserver not ready")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def state(self):
        from services.apiserver.app import STATE

        assert self.app is not None
        return self.app[STATE]


def api_settings(etcd: EtcdProcess | None, **overrides):
    """An in-process server's settings, with the session's PKI. As kube's integration tests,
    without the ServiceAccount admission plugin unless a test asks for it: no controller makes
    `default` ServiceAccounts here."""
    from services.apiserver.settings import Settings

    t = SessionPki.get()
    tls = {"tls_cert_file": str(t.serving.cert), "tls_private_key_file": str(t.serving.key),
           "client_ca_file": t.ca_file, "service_account_key_file": str(t.pki.sa_pub),
           "service_account_signing_key_file": str(t.pki.sa_key),
           "kubelet_client_certificate": str(t.kubelet_client.cert),
           "kubelet_client_key": str(t.kubelet_client.key),
           "kubelet_certificate_authority": t.ca_file}
    endpoints = overrides.pop("etcd_endpoints", None) or [etcd.endpoint]  # type: ignore[union-attr]
    port = overrides.pop("port", None) or free_port()
    overrides.setdefault("disable_admission_plugins", ["ServiceAccount"])
    return Settings(etcd_endpoints=endpoints, port=port, **{**tls, **overrides})


@pytest.fixture
async def apiserver(etcd: EtcdProcess) -> AsyncIterator[ApiServer]:
    server = await ApiServer(api_settings(etcd)).start()
    try:
        yield server
    finally:
        try:
            await asyncio.wait_for(server.stop(), 10)
        except TimeoutError:
            for t in asyncio.all_tasks():
                t.print_stack(limit=10)
            raise


@pytest.fixture
async def http(apiserver: ApiServer) -> AsyncIterator[Http]:
    """JSON requests to the `apiserver` as the admin."""
    async with apiserver.session() as session:
        yield Http(session)


class Http:
    """A thin JSON helper over aiohttp for tests: returns (status, body)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def req(self, method: str, path: str, body=None, *, content_type="application/json",
                  raw: bytes | None = None, headers: dict | None = None):
        import json

        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        async with self.session.request(method, path, data=data, headers=hdrs) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def get(self, path: str, **kw):
        return await self.req("GET", path, **kw)

    async def post(self, path: str, body=None, **kw):
        return await self.req("POST", path, body, **kw)

    async def put(self, path: str, body=None, **kw):
        return await self.req("PUT", path, body, **kw)

    async def patch(self, path: str, body, content_type: str, **kw):
        return await self.req("PATCH", path, body, content_type=content_type, **kw)

    async def delete(self, path: str, body=None, **kw):
        return await self.req("DELETE", path, body, **kw)


class ApiServerProcess:
    """The API server as its own process (`python -m services.apiserver`)."""

    def __init__(self, etcd_endpoints: list[str], port: int | None = None, extra: list[str] | None = None,
                 log_path: Path | None = None, host: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.url = f"https://{host}:{self.port}"
        self.pki = SessionPki.get()
        self.config = self.pki.config(self.url)
        # where it dials node agents: a free port, for tests that stand one up on loopback
        self.kubelet_port = free_port()
        self.args = [sys.executable, "-m", "services.apiserver", "--etcd-servers",
                     ",".join(etcd_endpoints), "--port", str(self.port), "--bind-address", host,
                     "--kubelet-port", str(self.kubelet_port),
                     *self.pki.apiserver_flags(), "--disable-admission-plugins", "ServiceAccount",
                     *(extra or [])]
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def kubeconfig(self, path: Path, user: str | None = None, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig file for this server, as the admin or as `user` in `groups`."""
        return self.pki.kubeconfig(path, self.url, self.pki.client(user, groups) if user else None)

    def session(self, config: ClientConfig | None = None, **kw) -> aiohttp.ClientSession:
        """An aiohttp session to this server as the admin (or with `config`'s credentials)."""
        return tls_session(self.url, config or self.config, **kw)

    def start(self) -> ApiServerProcess:
        """Start the process and wait until it is ready. Its stdout and stderr go to `log_path`;
        a start that fails shows the end of that log (a traceback, a fatal signal's message)."""
        if self.log_path is None:
            self.proc = subprocess.Popen(die_with_parent(self.args), cwd=ROOT, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        else:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(die_with_parent(self.args), cwd=ROOT, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        wait_http_ok(self.url + "/readyz", timeout=30, proc=self.proc, cafile=self.pki.ca_file,
                     log_path=self.log_path)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@pytest.fixture
def apiserver_process(etcd: EtcdProcess, tmp_path: Path) -> Iterator[ApiServerProcess]:
    server = ApiServerProcess([etcd.endpoint], log_path=tmp_path / "apiserver.log").start()
    try:
        yield server
    finally:
        proc = server.proc
        if proc is not None and proc.poll() is not None and proc.returncode != -signal.SIGKILL:
            # it ended on its own (a test's kill() sends SIGKILL): say how, with its last words
            # (pytest shows a test's captured stderr when the test fails)
            print(f"the API server {exit_description(proc.returncode)} during the test"
                  + log_tail(server.log_path), file=sys.stderr)
        server.stop()
