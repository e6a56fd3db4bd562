"""Where the API server is and how to prove who we are to it: client-go's `rest.Config`.

A `ClientConfig` comes from a kubeconfig file (`load_kubeconfig`, what every component's
`--kubeconfig` flag reads), from inside a pod (`in_cluster`: the ServiceAccount token, CA and
`KUBERNETES_SERVICE_HOST`), or is built directly. It makes the TLS context that verifies the
server against the cluster CA and presents the client certificate, and the Authorization
header of a bearer token; a token file is read again when it changes, as the projected
ServiceAccount tokens a node agent rotates do.
"""
from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(ValueError):
    """The kubeconfig or in-cluster environment does not say how to reach the server."""


SERVERS_EXTENSION = "minicluster.io/servers"  # a kubeconfig cluster's other API servers


@dataclass
class ClientConfig:
    server: str
    # more API servers of the same cluster, tried in turn when one does not answer (a
    # cluster entry's `minicluster.io/servers` extension; kubectl, which reads only
    # `server`, ignores it)
    more_servers: tuple[str, ...] = ()
    ca_file: str | None = None
    ca_data: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    insecure_skip_verify: bool = False
    namespace: str = "default"
    _ssl: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    _token_seen: tuple[float, str] | None = field(default=None, repr=False, compare=False)

    @property
    def secure(self) -> bool:
        """Whether any of the servers speaks HTTPS (a TLS context is then made for all)."""
        return any(s.startswith("https://") for s in (self.server, *self.more_servers))

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for an https server (None for plain http)."""
        if not self.secure:
            return None
        if self._ssl is None:
            self._ssl = self._make_ssl()
        return self._ssl

    def _make_ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file,
                                         cadata=self.ca_data.decode() if self.ca_data else None)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_data and self.key_data:
            _load_chain_from_memory(ctx, self.cert_data, self.key_data)
        return ctx

    def bearer_token(self) -> str | None:
        if self.token:
            return self.token
        if not self.token_file:
            return None
        try:
            mtime = os.stat(self.token_file).st_mtime
            if self._token_seen is None or self._token_seen[0] != mtime:
                self._token_seen = (mtime, Path(self.token_file).read_text().strip())
        except OSError:
            if self._token_seen is None:
                raise
        return self._token_seen[1]

    def headers(self) -> dict[str, str]:
        token = self.bearer_token()
        return {"Authorization": f"Bearer {token}"} if token else {}


def _load_chain_from_memory(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """`ssl` loads a certificate chain from files only: write both to a private temporary
    file for the moment of loading."""
    fd, path = tempfile.mkstemp(prefix="kubeconfig-client-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(cert.rstrip(b"\n") + b"\n" + key)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)


def _b64(entry: Mapping[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key} is not valid base64: {exc}") from None


def _path(entry: Mapping[str, Any], key: str, base: Path) -> str | None:
    value = entry.get(key)
    if not value:
        return None
    p = Path(str(value))
    return str(p if p.is_absolute() else base / p)


def from_kubeconfig_entries(cluster: Mapping[str, Any], user: Mapping[str, Any], *,
                            base_dir: Path, namespace: str = "default") -> ClientConfig:
    """A config from one kubeconfig `cluster` and `user` entry; relative file paths are
    relative to the kubeconfig's directory, as kubectl reads them."""
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError("the cluster entry has no server")
    return ClientConfig(
        server=server.rstrip("/"),
        more_servers=tuple(s for s in _extension_servers(cluster) if s != server.rstrip("/")),
        ca_file=_path(cluster, "certificate-authority", base_dir),
        ca_data=_b64(cluster, "certificate-authority-data"),
        insecure_skip_verify=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=_path(user, "client-certificate", base_dir),
        key_file=_path(user, "client-key", base_dir),
        cert_data=_b64(user, "client-certificate-data"),
        key_data=_b64(user, "client-key-data"),
        token=str(user["token"]) if user.get("token") else None,
        token_file=_path(user, "tokenFile", base_dir),
        namespace=namespace,
    )


def _extension_servers(cluster: Mapping[str, Any]) -> list[str]:
    """The API servers a cluster entry's `minicluster.io/servers` extension lists."""
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == SERVERS_EXTENSION:
            servers = (ext.get("extension") or {}).get("servers") if isinstance(ext.get("extension"), dict) else None
            if not isinstance(servers, list) or not all(isinstance(s, str) and s for s in servers):
                raise ConfigError(f"the {SERVERS_EXTENSION} extension must hold a list of server URLs")
            return [s.rstrip("/") for s in servers]
    return []


def _named(doc: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(section[:-1]) or {}
            if isinstance(value, dict):
                return value
    raise ConfigError(f"{section[:-1]} {name!r} not found")


def load_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> ClientConfig:
    """The config of `context` (default: the current context) of one kubeconfig file."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {p}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{p} is not a kubeconfig")
    name = context or doc.get("current-context")
    if not name:
        raise ConfigError(f"{p} has no current-context")
    ctx = _named(doc, "contexts", str(name))
    cluster = _named(doc, "clusters", str(ctx.get("cluster") or ""))
    user = _named(doc, "users", str(ctx.get("user") or "")) if ctx.get("user") else {}
    return from_kubeconfig_entries(cluster, user, base_dir=p.parent.resolve(),
                                   namespace=str(ctx.get("namespace") or "default"))


def in_cluster(env: Mapping[str, str] | None = None,
               sa_dir: Path = SERVICE_ACCOUNT_DIR) -> ClientConfig:
    """Inside a pod: the `kubernetes` Service's address from the environment, the projected
    ServiceAccount token (read again when rotated) and the cluster CA."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set")
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    namespace = "default"
    if (sa_dir / "namespace").exists():
        namespace = (sa_dir / "namespace").read_text().strip() or namespace
    return ClientConfig(server=f"https://{hostport}", ca_file=str(sa_dir / "ca.crt"),
                        token_file=str(sa_dir / "token"), namespace=namespace)


def set_servers(cluster: dict[str, Any], servers: Sequence[str]) -> None:
    """Point a kubeconfig cluster entry at `servers`: the first is its `server` (all kubectl
    reads), all of them its servers extension when there are several (what our clients fail
    over between); an extension listing other servers is replaced or dropped."""
    cluster["server"] = servers[0]
    others = [e for e in cluster.get("extensions") or []
              if not (isinstance(e, dict) and e.get("name") == SERVERS_EXTENSION)]
    if len(servers) > 1:
        others.append({"name": SERVERS_EXTENSION, "extension": {"servers": list(servers)}})
    if others:
        cluster["extensions"] = others
    else:
        cluster.pop("extensions", None)


def write_kubeconfig(path: Path, *, name: str, ca_file: Path, server: str = "",
                     servers: Sequence[str] = (),
                     cert_file: Path | None = None, key_file: Path | None = None,
                     token_file: Path | None = None, namespace: str = "default",
                     embed: bool = False) -> None:
    """A kubeconfig with one cluster, user and context; `embed` puts the certificates and
    key in the file (what a user copies elsewhere), otherwise it names the files. Several
    `servers`: the first is the cluster's `server`, all of them its servers extension."""
    servers = [server] if server else list(servers)
    if not servers:
        raise ValueError("write_kubeconfig needs a server")
    user: dict[str, Any] = {}
    cluster: dict[str, Any] = {}
    set_servers(cluster, servers)
    if embed:
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
        if cert_file and key_file:
            user["client-certificate-data"] = base64.b64encode(cert_file.read_bytes()).decode()
            user["client-key-data"] = base64.b64encode(key_file.read_bytes()).decode()
    else:
        cluster["certificate-authority"] = str(ca_file)
        if cert_file and key_file:
            user["client-certificate"] = str(cert_file)
            user["client-key"] = str(key_file)
    if token_file:
        user["tokenFile"] = str(token_file)
    doc = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                "namespace": namespace}}],
        "current-context": name,
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)


def from_flags(kubeconfig: str | None, server: str | None) -> ClientConfig:
    """What a component's `--kubeconfig` and `--apiserver` flags say (kube's `--kubeconfig`
    and `--master`): the kubeconfig's cluster and user, its server replaced by `server` when
    both are given; `server` alone is a client without credentials."""
    if kubeconfig:
        config = load_kubeconfig(kubeconfig)
        if server:
            config.server, config.more_servers = server.rstrip("/"), ()
        return config
    if server:
        return ClientConfig(server=server.rstrip("/"))
    raise ConfigError("give --kubeconfig (or --apiserver)")

