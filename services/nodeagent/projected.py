"""ServiceAccount tokens and the atomic writer of the node's written volumes (pkg/kubelet/token,
pkg/volume/util/atomic_writer.go).

A pod's `projected` volume can hold a ServiceAccount token bound to the pod (asked of the API
server through TokenRequest); `volumefiles` says what the files of every written volume are,
`volumes` sets them up.
- `TokenManager` keeps one token per (pod, ServiceAccount, audiences, lifetime) and asks for a
  new one when 80% of its life has passed or it is 24 hours old, as kubelet's token manager;
- `write_atomic` writes a directory the way kubelet's AtomicWriter does: the files go into a
  fresh `..<timestamp>` directory, a `..data` symlink is swapped to it in one rename, and each
  visible name is a symlink through `..data`, so a reader sees the old set or the new set,
  never a mix.
"""
from __future__ import annotations

import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kubecore.api.errors import ApiError
from kubecore.api.resources import SERVICEACCOUNTS
from kubecore.api.types import Obj
from kubecore.client.rest import resource_path

log = logging.getLogger("nodeagent")
PLUGIN_DIR = "kubernetes.io~projected"
DATA_LINK = "..data"
MAX_TOKEN_AGE = 24 * 3600.0
MAX_JITTER = 10.0
DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up (yet): kubelet's MountVolume.SetUp failed."""


# --------------------------------------------------------------------------- what a volume holds


def projected_volumes(pod: Mapping[str, Any]) -> dict[str, Obj]:
    """The pod's projected volumes by name."""
    vols = (pod.get("spec") or {}).get("volumes") or []
    return {v["name"]: v["projected"] for v in vols
            if isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("projected"), dict)}


@dataclass(frozen=True)
class TokenSource:
    audience: str
    expiration_seconds: int
    path: str


def token_sources(projected: Obj) -> list[TokenSource]:
    out = []
    for source in projected.get("sources") or []:
        sat = source.get("serviceAccountToken") if isinstance(source, dict) else None
        if isinstance(sat, dict):
            out.append(TokenSource(str(sat.get("audience") or ""), int(sat.get("expirationSeconds") or 3600),
                                   str(sat.get("path") or "token")))
    return out


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires: float  # status.expirationTimestamp
    seconds: int  # spec.expirationSeconds

    def needs_refresh(self, now: float, jitter: float) -> bool:
        """kubelet's requiresRefresh: 24 hours old, or within 20% (and a jitter) of its end."""
        issued = self.expires - self.seconds
        if now > issued + MAX_TOKEN_AGE - jitter:
            return True
        return now > self.expires - self.seconds * 0.2 - jitter


class TokenClient(Protocol):
    async def request(self, method: str, path: str, *, body: Any = None) -> Any: ...


def _parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class TokenManager:
    """ServiceAccount tokens of the pods on this node, each asked for once and refreshed in time."""

    def __init__(self, client: TokenClient, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self._cache: dict[tuple[str, str, str, str, str, int], IssuedToken] = {}

    async def token(self, pod: Mapping[str, Any], source: TokenSource) -> str:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        namespace, sa = meta.get("namespace", ""), spec.get("serviceAccountName") or "default"
        key = (namespace, sa, meta.get("name", ""), meta.get("uid", ""), source.audience, source.expiration_seconds)
        cached = self._cache.get(key)
        if cached is not None and not cached.needs_refresh(self.clock(), random.uniform(0, MAX_JITTER)):
            return cached.token
        body: Obj = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "expirationSeconds": source.expiration_seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name", ""),
                               "uid": meta.get("uid", "")}}}
        if source.audience:
            body["spec"]["audiences"] = [source.audience]
        try:
            answer = await self.client.request("POST", resource_path(SERVICEACCOUNTS, namespace, sa, "token"),
                                               body=body)
        except ApiError as exc:
            if cached is not None and cached.expires > self.clock():
                log.warning("pod=%s/%s token refresh failed, keeping the current one: %s", namespace,
                            meta.get("name"), exc)
                return cached.token
            raise VolumeError(f"failed to fetch token: {exc}") from exc
        status = answer.get("status") or {}
        issued = IssuedToken(status["token"], _parse_time(status["expirationTimestamp"]),
                             int((answer.get("spec") or {}).get("expirationSeconds") or source.expiration_seconds))
        self._cache[key] = issued
        return issued.token

    def forget_pods(self, keep_uids: set[str]) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k[3] in keep_uids}


# --------------------------------------------------------------------------- the atomic writer


def _current_files(target: Path) -> dict[str, tuple[bytes, int]] | None:
    data = target / DATA_LINK
    if not data.is_symlink():
        return None
    out = {}
    base = target / os.readlink(data)
    for root, _, names in os.walk(base):
        for name in names:
            path = Path(root) / name
            out[str(path.relative_to(base))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def write_atomic(target: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    """kubelet's AtomicWriter.Write; -> whether anything changed."""
    for rel in files:
        if rel.startswith(("..", "/")) or "/../" in f"/{rel}/":
            raise VolumeError(f"invalid path {rel!r} in a projected volume")
    target.mkdir(mode=0o750, parents=True, exist_ok=True)
    if _current_files(target) == dict(files):
        return False
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.") + f"{time.time_ns() % 10**9:09d}"
    new_dir = target / stamp
    new_dir.mkdir(mode=0o755)
    for rel, (content, mode) in files.items():
        path = new_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb", opener=lambda p, flags: os.open(p, flags, 0o600)) as f:
            f.write(content)
        os.chmod(path, mode)
    old = os.readlink(target / DATA_LINK) if (target / DATA_LINK).is_symlink() else None
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(stamp, tmp_link)
    os.rename(tmp_link, target / DATA_LINK)
    visible = {rel.split("/", 1)[0] for rel in files}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"{DATA_LINK}/{name}", link)
    for entry in os.listdir(target):
        if not entry.startswith("..") and entry not in visible:
            (target / entry).unlink()
    if old is not None and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)
    return True
