"""The cluster's own image registry: Debian's docker-registry, every node's mirror.

A real cluster pulls: a pod whose image is `nginx` (tag `latest`, so imagePullPolicy Always)
asks the registry at every start. These machines reach no public registry, so `cluster up`
runs one on the node network's gateway address and gives every node agent
`--registry-mirror docker.io=...` and `registry.k8s.io=...` to it (containerd's hosts.toml
mirrors): pulls go there first, the public registry only after. It holds the default images
(`nodeimages`) and whatever `minikubectl image load` loads, so Always and IfNotPresent behave
as on a connected cluster, and a name nobody loaded fails ErrImagePull as it would there.

The default images are pushed once with skopeo into a seed kept in the image cache (keyed by
their manifests); each `cluster up` starts its registry from a copy of the seed under the
cluster's state directory, which `cluster down` removes. The copy hard-links the blobs (the
registry writes a blob elsewhere and renames it into place, never into an existing file) and
copies the small link files (a tag pushed again is rewritten in place, which must not reach
the seed).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.nodeagent.oci.image import Image
    from services.nodeagent.oci.store import ContentStore

MIRRORED_REGISTRIES = ("docker.io", "registry.k8s.io")
DEFAULT_SEED_CACHE = Path("/var/cache/minicluster/registry")
SKOPEO_TIMEOUT = 300


class RegistryError(RuntimeError):
    pass


def config_text(storage: Path, addr: str, extra: str = "") -> str:
    """docker-registry's configuration: filesystem storage, plain HTTP on `addr`, deletes allowed;
    `extra`: more top-level sections (an `auth:` for a token-auth registry)."""
    return (f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {addr}\n{extra}")


def write_config(directory: Path, addr: str, extra: str = "") -> Path:
    """The config file, storage under `directory/storage`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "storage").mkdir(exist_ok=True)
    path = directory / "config.yml"
    path.write_text(config_text(directory / "storage", addr, extra))
    return path


def serve_argv(config: Path) -> tuple[str, ...]:
    return ("docker-registry", "serve", str(config))


def mirror_flags(endpoint: str) -> list[str]:
    """The node agent's flags that make `endpoint` (http://HOST:PORT) the mirror of the
    registries the default images come from."""
    return [arg for registry in MIRRORED_REGISTRIES for arg in ("--registry-mirror", f"{registry}={endpoint}")]


def repository_path(name: str) -> str:
    """Where a normalized name lives in the mirror: without its registry, as a mirror is asked
    (`docker.io/library/nginx:1.22` -> `library/nginx:1.22`)."""
    registry, _, path = name.partition("/")
    if registry not in MIRRORED_REGISTRIES:
        raise RegistryError(f"{name}: only images of {', '.join(MIRRORED_REGISTRIES)} are mirrored")
    return path


def wait_until_serving(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/v2/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (a 401 from a registry that wants a token)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RegistryError(f"the registry at {url} did not answer: {exc}") from exc
            time.sleep(0.05)


@contextmanager
def serving(directory: Path, addr: str, extra: str = "") -> Iterator[str]:
    """A registry on `addr` for the block (loopback: seeding, tests, benchmarks), its storage in
    `directory/storage`; its URL."""
    proc = subprocess.Popen(serve_argv(write_config(directory, addr, extra)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://{addr}"
    try:
        try:
            wait_until_serving(url)
        except RegistryError as exc:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace").strip()
            raise RegistryError(f"docker-registry did not start: {err.splitlines()[-1] if err else exc}") from exc
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def push(source: str, url: str, path: str, *flags: str) -> None:
    """skopeo copy of `source` (`oci-archive:FILE:TAG`, `docker-archive:FILE`, ...) to `path` in the
    registry at `url` (more skopeo `flags`: `--all`, `--dest-creds`)."""
    host = url.removeprefix("http://")
    try:
        subprocess.run(["skopeo", "copy", "--quiet", *flags, "--dest-tls-verify=false", source,
                        f"docker://{host}/{path}"], check=True, capture_output=True, timeout=SKOPEO_TIMEOUT)
    except FileNotFoundError as exc:
        raise RegistryError("skopeo is not installed (make setup installs it)") from exc
    except subprocess.CalledProcessError as exc:
        raise RegistryError(f"pushing {source} to {host}/{path}: "
                            f"{exc.stderr.decode(errors='replace').strip()}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryError(f"pushing {source} to {host}/{path}: no answer in {SKOPEO_TIMEOUT} s") from exc


def push_oci_archive(archive: Path, names: Sequence[str], url: str) -> None:
    """Each name of an oci-archive whose manifests carry their tag as org.opencontainers.image.ref.name
    (as `nodeimages` writes them)."""
    for name in names:
        push(f"oci-archive:{archive}:{name.rsplit(':', 1)[1]}", url, repository_path(name))


def push_from_store(store: ContentStore, image: Image, url: str) -> list[str]:
    """Push an image a node's store holds, under each of its mirrored names, to the registry at
    `url` (the distribution protocol's monolithic upload: HEAD, POST, PUT per missing blob, then
    the manifest by tag). Whatever format it was loaded from, the store has its manifest, config
    and layers as blobs; the names pushed."""
    if not image.repo_digests:
        raise RegistryError(f"{image.id}: the store keeps no manifest for it")
    manifest_digest = image.repo_digests[0].rpartition("@")[2]
    manifest_bytes = store.blob_path(manifest_digest).read_bytes()
    manifest = json.loads(manifest_bytes)
    media_type = manifest.get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
    blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest.get("layers") or ())]
    pushed = []
    for name in image.repo_tags:
        try:
            path = repository_path(name)
        except RegistryError:
            continue
        repo, _, tag = path.rpartition(":")
        for digest in blobs:
            _put_blob(url, repo, digest, store.blob_path(digest))
        _request("PUT", f"{url}/v2/{repo}/manifests/{tag}", data=manifest_bytes, headers={"Content-Type": media_type})
        pushed.append(name)
    return pushed


def _request(method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
             ok: tuple[int, ...] = (200, 201, 202)) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        if exc.code in ok:
            return exc.code, dict(exc.headers)
        body = exc.read().decode(errors="replace").strip()
        raise RegistryError(f"{method} {url}: {exc.code} {body[:200]}") from exc
    except OSError as exc:
        raise RegistryError(f"{method} {url}: {exc}") from exc


def _put_blob(url: str, repo: str, digest: str, path: Path) -> None:
    status, _ = _request("HEAD", f"{url}/v2/{repo}/blobs/{digest}", ok=(200, 404))
    if status == 200:
        return
    _, headers = _request("POST", f"{url}/v2/{repo}/blobs/uploads/", data=b"")
    location = headers.get("Location", "")
    if location.startswith("/"):
        location = url + location
    separator = "&" if "?" in location else "?"
    _request("PUT", f"{location}{separator}digest={digest}", data=path.read_bytes(),
             headers={"Content-Type": "application/octet-stream"})


def seed_key(images: Sequence[tuple[Path, Sequence[str], str]]) -> str:
    """(archive, names, manifest digest) of each default image -> the seed's name."""
    text = "\n".join(sorted(f"{manifest} {' '.join(names)}" for _, names, manifest in images))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seed(images: Sequence[tuple[Path, Sequence[str], str]], cache: Path = DEFAULT_SEED_CACHE) -> Path:
    """A registry storage holding every given image, made once (a temporary registry on loopback
    and skopeo) and kept in `cache`; older seeds are removed."""
    from cluster.procs import free_port

    target = cache / seed_key(images)
    if (target / "complete").exists():
        return target / "storage"
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.iterdir():
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    with serving(target, f"127.0.0.1:{free_port()}") as url:
        for archive, names, _ in images:
            push_oci_archive(archive, names, url)
    (target / "config.yml").unlink(missing_ok=True)
    (target / "complete").write_text("")
    return target / "storage"


def install(seed_storage: Path, storage: Path) -> None:
    """A fresh registry storage at `storage` with the seed's content: blobs hard-linked where
    the file system allows it, everything else copied."""
    shutil.rmtree(storage, ignore_errors=True)
    blobs = os.sep + os.path.join("docker", "registry", "v2", "blobs") + os.sep

    def link_or_copy(src: str, dst: str) -> object:
        if blobs in src:
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    shutil.copytree(seed_storage, storage, copy_function=link_or_copy, symlinks=True)


def prepare(images: Sequence[tuple[Path, Sequence[str], str]], directory: Path, addr: str,
            seed_cache: Path = DEFAULT_SEED_CACHE) -> Path:
    """The cluster registry's directory: storage with the given images (archive, names, manifest
    digest: `nodeimages.for_registry`), and the config that serves it on `addr`; -> the config."""
    install(seed(images, seed_cache), directory / "storage")
    return write_config(directory, addr)
