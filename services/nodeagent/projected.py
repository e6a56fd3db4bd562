"""Projected volumes, as kubelet makes them (pkg/volume/projected, pkg/kubelet/token,
pkg/volume/util/atomic_writer.go).

A pod's `projected` volume is a directory the node writes: a ServiceAccount token bound to the
pod (asked of the API server through TokenRequest), ConfigMap keys, and downward API fields.
- `volume_files` says what the files are (pure, given the token and ConfigMaps);
- `TokenManager` keeps one token per (pod, ServiceAccount, audiences, lifetime) and asks for a
  new one when 80% of its life has passed or it is 24 hours old, as kubelet's token manager;
- `write_atomic` writes a directory the way kubelet's AtomicWriter does: the files go into a
  fresh `..<timestamp>` directory, a `..data` symlink is swapped to it in one rename, and each
  visible name is a symlink through `..data`, so a reader sees the old set or the new set,
  never a mix;
- `ProjectedVolumes` sets up every projected volume of a pod under
  `<root>/<pod uid>/volumes/kubernetes.io~projected/<name>` (only root may enter `<root>`), and
  removes the directories of pods no longer bound here.
The container runtime bind-mounts the directory read-only at the container's mount path.
"""
from __future__ import annotations

import asyncio
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
from kubecore.api.resources import CONFIGMAPS, SERVICEACCOUNTS
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


def configmap_names(projected: Obj) -> list[str]:
    return [s["configMap"]["name"] for s in projected.get("sources") or []
            if isinstance(s, dict) and isinstance(s.get("configMap"), dict) and s["configMap"].get("name")]


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """A downward API fieldRef (the fields kubelet's podFieldSelectorRuntimeValue knows)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName")}
    if path in simple:
        return str(simple[path] or "")
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    raise VolumeError(f"unsupported fieldRef {path!r}")


def volume_files(pod: Mapping[str, Any], projected: Obj, *, tokens: Mapping[TokenSource, str],
                 configmaps: Mapping[str, Obj | None]) -> dict[str, tuple[bytes, int]]:
    """Relative path -> (content, mode) of every file of the volume (kubelet's collectData)."""
    default_mode = projected.get("defaultMode")
    mode = default_mode if isinstance(default_mode, int) else DEFAULT_MODE
    files: dict[str, tuple[bytes, int]] = {}
    for source in projected.get("sources") or []:
        if not isinstance(source, dict):
            continue
        if isinstance(source.get("serviceAccountToken"), dict):
            (ts,) = token_sources({"sources": [source]})
            files[ts.path] = (tokens[ts].encode(), mode)
        elif isinstance(source.get("configMap"), dict):
            files.update(_configmap_files(source["configMap"], configmaps, mode))
        elif isinstance(source.get("downwardAPI"), dict):
            for item in source["downwardAPI"].get("items") or []:
                ref = item.get("fieldRef") or {}
                files[item["path"]] = (field_value(pod, str(ref.get("fieldPath", ""))).encode(),
                                       item.get("mode", mode))
    return files


def _configmap_files(ref: Obj, configmaps: Mapping[str, Obj | None], mode: int) -> dict[str, tuple[bytes, int]]:
    cm = configmaps.get(ref["name"])
    if cm is None:
        if ref.get("optional"):
            return {}
        raise VolumeError(f'configmap "{ref["name"]}" not found')
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    items = ref.get("items")
    if not items:
        return {k: (v, mode) for k, v in data.items()}
    out = {}
    for item in items:
        if item["key"] not in data:
            if ref.get("optional"):
                continue
            raise VolumeError(f'configmap references non-existent config key: {item["key"]}')
        out[item["path"]] = (data[item["key"]], item.get("mode", mode))
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


# --------------------------------------------------------------------------- a pod's volumes


class ConfigMapClient(Protocol):
    async def get(self, rt: Any, name: str, namespace: str | None = None) -> Obj: ...


class ProjectedVolumes:
    """Sets up a pod's projected volumes on this node; the executor's `VolumeSetUp`."""

    def __init__(self, client: Any, root: Path, *, tokens: TokenManager | None = None) -> None:
        self.client = client
        self.root = root
        self.tokens = tokens or TokenManager(client)

    def volume_dir(self, pod_uid: str, name: str) -> Path:
        return self.root / pod_uid / "volumes" / PLUGIN_DIR / name

    async def set_up(self, pod: Mapping[str, Any]) -> dict[str, str]:
        """Write every projected volume of the pod; -> volume name -> its directory."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        out = {}
        for name, projected in projected_volumes(pod).items():
            tokens = {ts: await self.tokens.token(pod, ts) for ts in token_sources(projected)}
            configmaps = {cm: await self._configmap(pod, cm) for cm in configmap_names(projected)}
            files = volume_files(pod, projected, tokens=tokens, configmaps=configmaps)
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = self.volume_dir(uid, name)
            if await asyncio.to_thread(write_atomic, target, files):
                log.info("pod=%s/%s volume %s written", (pod.get("metadata") or {}).get("namespace"),
                         (pod.get("metadata") or {}).get("name"), name)
            out[name] = str(target)
        return out

    async def _configmap(self, pod: Mapping[str, Any], name: str) -> Obj | None:
        try:
            cm: Obj = await self.client.get(CONFIGMAPS, name, (pod.get("metadata") or {}).get("namespace"))
            return cm
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise VolumeError(f'configmap "{name}": {exc}') from exc

    def keep_pods(self, uids: set[str]) -> None:
        """Remove the volumes of pods not in `uids` (gone from this node)."""
        self.tokens.forget_pods(uids)
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.name not in uids:
                shutil.rmtree(entry, ignore_errors=True)
