"""Choosing the API server and namespace the way kubectl does.

Order: `--server`, else the kubeconfig (`--kubeconfig`, else every file of `KUBECONFIG`
merged with the first value winning, else `~/.kube/config`): current context (or
`--context`) -> its cluster -> `server`. The namespace is `-n`, else the context's, else
`default`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubecore.api.types import Obj
from minikubectl.errors import CliError


@dataclass(frozen=True)
class Target:
    server: str
    namespace: str
    namespace_explicit: bool  # `-n` was given: objects of another namespace are an error
    insecure: bool = False


def config_paths(flag: str | None, env: Mapping[str, str], home: Path) -> list[Path]:
    if flag:
        return [Path(flag)]
    if env.get("KUBECONFIG"):
        return [Path(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [home / ".kube" / "config"]


def load_merged(paths: list[Path], *, required: bool) -> Obj:
    """The files merged as kubectl merges them: the first file to set a value wins."""
    merged: Obj = {"clusters": {}, "contexts": {}, "current-context": ""}
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
        for section in ("clusters", "contexts"):
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name"):
                    merged[section].setdefault(entry["name"], entry.get(section[:-1]) or {})
    return merged


def resolve_target(*, server: str | None, namespace: str | None, kubeconfig: str | None,
                   context: str | None, env: Mapping[str, str], home: Path) -> Target:
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
    return Target(server=url.rstrip("/"), namespace=ns, namespace_explicit=bool(namespace),
                  insecure=bool(cluster.get("insecure-skip-tls-verify")))
