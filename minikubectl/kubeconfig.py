"""Choosing the API server, credentials and namespace the way kubectl does.

Order: `--server`, else the kubeconfig (`--kubeconfig`, else every file of `KUBECONFIG`
merged with the first value winning, else `~/.kube/config`): current context (or
`--context`) -> its cluster -> `server`, and its user -> the client certificate or token.
The flags `--certificate-authority`, `--client-certificate`, `--client-key`, `--token` and
`--insecure-skip-tls-verify` win over the kubeconfig. The namespace is `-n`, else the
context's, else `default`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubecore.api.types import Obj
from kubecore.client.config import ClientConfig, ConfigError, from_kubeconfig_entries
from minikubectl.errors import CliError


@dataclass(frozen=True)
class Credentials:
    """What the command line says about TLS and credentials (None: not given)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    insecure: bool | None = None


@dataclass(frozen=True)
class Target:
    server: str
    namespace: str
    namespace_explicit: bool  # `-n` was given: objects of another namespace are an error
    config: ClientConfig


def config_paths(flag: str | None, env: Mapping[str, str], home: Path) -> list[Path]:
    if flag:
        return [Path(flag)]
    if env.get("KUBECONFIG"):
        return [Path(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [home / ".kube" / "config"]


def load_merged(paths: list[Path], *, required: bool) -> Obj:
    """The files merged as kubectl merges them: the first file to set a value wins."""
    merged: Obj = {"clusters": {}, "contexts": {}, "users": {}, "current-context": "",
                   "dir": Path.cwd()}
    for p in paths:
        if not p.exists():
            if required:
                raise CliError(f"stat {p}: no such file or directory")
            continue
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CliError(f"error loading config file \"{p}\": {exc}") from None
        if not isinstance(doc, dict):
            raise CliError(f"error loading config file \"{p}\": not a kubeconfig")
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
            merged["dir"] = p.resolve().parent
        for section in ("clusters", "contexts", "users"):
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name"):
                    merged[section].setdefault(entry["name"], entry.get(section[:-1]) or {})
    return merged


def _client_config(url: str, cluster: Obj, user: Obj, base_dir: Path,
                   flags: Credentials) -> ClientConfig:
    try:
        config = from_kubeconfig_entries({**cluster, "server": url}, user, base_dir=base_dir)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if flags.ca_file:
        config.ca_file, config.ca_data = flags.ca_file, None
    if flags.cert_file or flags.key_file:
        config.cert_file, config.key_file = flags.cert_file, flags.key_file
        config.cert_data = config.key_data = None
    if flags.token:
        config.token, config.token_file = flags.token, None
    if flags.insecure is not None:
        config.insecure_skip_verify = flags.insecure
    return config


def resolve_target(*, server: str | None, namespace: str | None, kubeconfig: str | None,
                   context: str | None, env: Mapping[str, str], home: Path,
                   credentials: Credentials | None = None) -> Target:
    paths = config_paths(kubeconfig, env, home)
    config = load_merged(paths, required=bool(kubeconfig))
    ctx_name = context or config["current-context"]
    ctx: Obj = {}
    if ctx_name:
        if ctx_name not in config["contexts"]:
            if context or not server:
                raise CliError(f'context was not found for specified context: {ctx_name}')
        else:
            ctx = config["contexts"][ctx_name]
    cluster: Obj = config["clusters"].get(ctx.get("cluster") or "", {}) if ctx else {}
    url = server or cluster.get("server")
    if not url:
        where = ", ".join(str(p) for p in paths)
        raise CliError(f"no API server configured: pass --server, or set a current context "
                       f"with a cluster server in the kubeconfig ({where})")
    if "://" not in url:
        url = "http://" + url
    ns = namespace or ctx.get("namespace") or "default"
    user: Obj = config["users"].get(ctx.get("user") or "", {}) if ctx else {}
    client = _client_config(url.rstrip("/"), cluster, user, config["dir"], credentials or Credentials())
    return Target(server=url.rstrip("/"), namespace=ns, namespace_explicit=bool(namespace),
                  config=client)
