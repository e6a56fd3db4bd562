"""The node's content-addressed image store (`image.ImageStore`), on disk as containerd keeps it:

    blobs/sha256/<hex>    every manifest, index, config and layer blob, by its digest
    ingest/               blobs being written (kept only when their sha256 is their digest)
    layers/<12 hex>/      a layer unpacked for overlayfs (`layers`), named by its diff_id; the
                          name is short because overlayfs takes all lowerdirs in one page
    images.json           names -> the manifest (and index) they point at, last use
    lock                  an flock for images.json: the node agent and `minikubectl image load`
                          (another process) write it

Blobs are written once and never change, so readers need no lock; a layer directory appears
by rename when whole. Images without a name left lose their blobs and layers to `collect`.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from services.nodeagent.oci import layers, reference
from services.nodeagent.oci.image import (
    DigestMismatchError,
    Image,
    ImageConfig,
    ImageError,
    ImageNotPresentError,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
CHUNK = 1 << 20


class ArchiveError(ImageError):
    """An archive that is not an image archive this store reads."""


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise DigestMismatchError(f"unsupported or malformed digest {digest!r}")
    return value


class _Writer:
    """`image.BlobWriter` over a file in ingest/."""

    def __init__(self, store: ContentStore, digest: str) -> None:
        self.store, self.digest = store, digest
        self.path = store.root / "ingest" / uuid.uuid4().hex
        self._file: IO[bytes] | None = open(self.path, "wb")
        self._sha = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self._sha.update(chunk)

    def commit(self) -> Path:
        assert self._file is not None
        self._file.close()
        self._file = None
        got = f"sha256:{self._sha.hexdigest()}"
        if got != self.digest:
            self.path.unlink(missing_ok=True)
            raise DigestMismatchError(f"blob content has digest {got}, expected {self.digest}")
        final = self.store.blob_path(self.digest)
        os.replace(self.path, final)
        return final

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Record:
    manifest: str
    index: str | None
    created: float
    last_used: float


def _config_of(data: Mapping[str, Any]) -> ImageConfig:
    c = data.get("config") or {}
    return ImageConfig(
        entrypoint=tuple(c.get("Entrypoint") or ()), cmd=tuple(c.get("Cmd") or ()), env=tuple(c.get("Env") or ()),
        working_dir=c.get("WorkingDir") or "", user=c.get("User") or "", stop_signal=c.get("StopSignal") or "",
        exposed_ports=tuple(sorted((c.get("ExposedPorts") or {}).keys())), labels=dict(c.get("Labels") or {}),
    )


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("blobs/sha256", "ingest", "layers"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._images_file = self.root / "images.json"

    # ----------------------------------------------------------------- blobs

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def writer(self, digest: str) -> _Writer:
        _hex(digest)
        return _Writer(self, digest)

    def put(self, data: bytes) -> str:
        digest = digest_of(data)
        if not self.has_blob(digest):
            w = self.writer(digest)
            w.write(data)
            w.commit()
        return digest

    def read_json(self, digest: str) -> dict[str, Any]:
        try:
            data = json.loads(self.blob_path(digest).read_bytes())
        except FileNotFoundError:
            raise ImageNotPresentError(f"blob {digest} is not in the store") from None
        except ValueError as exc:
            raise ImageError(f"blob {digest} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ImageError(f"blob {digest} is not a JSON object")
        return data

    # ----------------------------------------------------------------- the images index

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, _Record]]:
        with open(self.root / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self._load()
            yield records
            tmp = self._images_file.with_name(f".images.{uuid.uuid4().hex}")
            tmp.write_text(json.dumps({n: r.__dict__ for n, r in sorted(records.items())}, indent=1))
            os.replace(tmp, self._images_file)

    def _load(self) -> dict[str, _Record]:
        try:
            raw = json.loads(self._images_file.read_text())
        except FileNotFoundError:
            return {}
        return {name: _Record(**value) for name, value in raw.items()}

    # ----------------------------------------------------------------- images

    def _manifest(self, digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
        manifest = self.read_json(digest)
        media = manifest.get("mediaType") or OCI_MANIFEST
        if media not in MANIFEST_TYPES:
            raise ImageError(f"{digest} is a {media}, not an image manifest")
        return manifest, self.read_json(manifest["config"]["digest"])

    def _image(self, manifest_digest: str, names: list[str], index: str | None) -> Image:
        manifest, config = self._manifest(manifest_digest)
        by = index or manifest_digest
        return Image(
            id=manifest["config"]["digest"], repo_tags=tuple(n for n in names if "@" not in n),
            repo_digests=tuple(sorted({f"{reference.parse(n).name}@{by}" for n in names})),
            size=sum(int(layer.get("size") or 0) for layer in manifest.get("layers") or ()),
            config=_config_of(config), diff_ids=tuple((config.get("rootfs") or {}).get("diff_ids") or ()),
            os=config.get("os") or "linux", architecture=config.get("architecture") or "amd64",
        )

    def _grouped(self, records: Mapping[str, _Record]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for name, record in sorted(records.items()):
            groups.setdefault(record.manifest, []).append(name)
        return groups

    def images(self) -> list[Image]:
        records = self._load()
        out = []
        for manifest, names in self._grouped(records).items():
            try:
                out.append(self._image(manifest, names, records[names[0]].index))
            except ImageError:
                continue
        return out

    def get(self, ref: str) -> Image | None:
        records = self._load()
        groups = self._grouped(records)
        manifest = self._find(ref, records, groups)
        if manifest is None:
            return None
        names = groups[manifest]
        try:
            return self._image(manifest, names, records[names[0]].index)
        except ImageError:
            return None

    def _find(self, ref: str, records: Mapping[str, _Record], groups: Mapping[str, list[str]]) -> str | None:
        text = ref.strip()
        bare = text.removeprefix("sha256:")
        if len(bare) >= 12 and all(c in "0123456789abcdef" for c in bare):
            for manifest in groups:
                config = self._config_digest(manifest)
                if config and config.removeprefix("sha256:").startswith(bare):
                    return manifest
        try:
            parsed = reference.parse(text)
        except ImageError:
            return None
        if parsed.digest:
            for name, candidate in records.items():
                if reference.parse(name).name == parsed.name and parsed.digest in (candidate.manifest, candidate.index):
                    return candidate.manifest
            return None
        found = records.get(str(parsed))
        return found.manifest if found else None

    def _config_digest(self, manifest: str) -> str | None:
        try:
            return str(self.read_json(manifest)["config"]["digest"])
        except (ImageError, KeyError, TypeError):
            return None

    def layer_dir(self, diff_id: str) -> Path:
        return self.root / "layers" / _hex(diff_id)[:12]

    def layer_dirs(self, image: Image) -> list[Path]:
        return [self.layer_dir(d) for d in image.diff_ids]

    def commit(self, name: str, manifest_digest: str, *, index_digest: str | None = None) -> Image:
        normalized = str(reference.parse(name))
        manifest, config = self._manifest(manifest_digest)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or ())
        blobs = [layer["digest"] for layer in manifest.get("layers") or ()]
        if len(diff_ids) != len(blobs):
            raise ImageError(f"image {normalized}: {len(blobs)} layers but {len(diff_ids)} diff_ids")
        for blob, diff_id in zip(blobs, diff_ids, strict=True):
            if not self.has_blob(blob):
                raise ImageNotPresentError(f"image {normalized}: layer {blob} is not in the store")
            self._unpack(blob, diff_id)
        now = time.time()
        with self._locked() as records:
            old = records.get(normalized)
            records[normalized] = _Record(manifest_digest, index_digest, old.created if old else now, now)
        image = self.get(normalized)
        assert image is not None
        return image

    def _unpack(self, blob: str, diff_id: str) -> None:
        target = self.layer_dir(diff_id)
        if target.exists():
            return
        with open(self.blob_path(blob), "rb") as f:
            try:
                layers.unpack(f, target, diff_id=diff_id)
            except FileExistsError:
                pass  # another process unpacked it meanwhile
            except OSError as exc:
                if not target.exists():
                    raise ImageError(f"unpacking layer {blob}: {exc}") from exc

    def touch(self, ref: str) -> None:
        """Mark the image used now (the image garbage collector removes the least recently used)."""
        with self._locked() as records:
            for name, record in list(records.items()):
                if self._find(ref, {name: record}, {record.manifest: [name]}):
                    records[name] = _Record(record.manifest, record.index, record.created, time.time())

    def last_used(self, image: Image) -> float:
        records = self._load()
        return max((r.last_used for n, r in records.items() if n in image.repo_tags), default=0.0)

    def remove(self, ref: str) -> None:
        """Untag `ref` (a name: that name; an id or digest: every name of that image), then collect."""
        with self._locked() as records:
            manifest = self._find(ref, records, self._grouped(records))
            if manifest is None:
                raise ImageNotPresentError(f'image "{ref}" is not present on this node')
            try:
                by_name = str(reference.parse(ref)) in records and not reference.parse(ref).digest
            except ImageError:
                by_name = False
            names = ([str(reference.parse(ref))] if by_name
                     else [n for n, r in records.items() if r.manifest == manifest])
            for name in names:
                records.pop(name, None)
        self.collect()

    def collect(self) -> list[str]:
        """Remove blobs and layers no named image uses; what was removed."""
        with open(self.root / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keep_blobs: set[str] = set()
            keep_layers: set[str] = set()
            for record in self._load().values():
                try:
                    manifest, config = self._manifest(record.manifest)
                except ImageError:
                    continue
                keep_blobs |= {record.manifest, manifest["config"]["digest"],
                               *(layer["digest"] for layer in manifest.get("layers") or ())}
                if record.index:
                    keep_blobs.add(record.index)
                keep_layers |= {self.layer_dir(d).name for d in (config.get("rootfs") or {}).get("diff_ids") or ()}
            removed = []
            for path in (self.root / "blobs" / "sha256").iterdir():
                if f"sha256:{path.name}" not in keep_blobs:
                    path.unlink(missing_ok=True)
                    removed.append(f"sha256:{path.name}")
            for path in (self.root / "layers").iterdir():
                if path.name not in keep_layers and not path.name.startswith("."):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(f"layer {path.name}")
            return removed

    def disk_usage(self) -> int:
        total = 0
        for current, _, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(current, name)).st_blocks * 512
        return total

    # ----------------------------------------------------------------- archives

    def import_archive(self, path: Path) -> list[Image]:
        """An oci-archive, an OCI layout directory, or a docker-archive (`docker save`)."""
        path = Path(path)
        if path.is_dir():
            return self._import_layout(_DirSource(path))
        try:
            with tarfile.open(path, "r:*") as tar:
                source = _TarSource(tar)
                if source.exists("index.json") and source.exists("oci-layout"):
                    return self._import_layout(source)
                if source.exists("manifest.json"):
                    return self._import_docker(source)
        except tarfile.TarError as exc:
            why = str(exc).splitlines()[0].rstrip(":")
            raise ArchiveError(f"not an image archive ({why})") from exc
        raise ArchiveError("neither an OCI image layout (index.json, oci-layout) nor a docker-archive "
                           "(manifest.json)")

    def _ingest(self, source: _Source, name: str, digest: str) -> None:
        if self.has_blob(digest):
            return
        writer = self.writer(digest)
        try:
            with source.open(name) as f:
                while chunk := f.read(CHUNK):
                    writer.write(chunk)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def _import_layout(self, source: _Source) -> list[Image]:
        index = json.loads(source.read("index.json"))
        imported = []
        for descriptor in index.get("manifests") or ():
            annotations = descriptor.get("annotations") or {}
            name = next((annotations[a] for a in NAME_ANNOTATIONS if "/" in annotations.get(a, "")
                         or (a == NAME_ANNOTATIONS[0] and a in annotations)), "")
            if not name:
                raise ArchiveError("the archive names no image (an io.containerd.image.name annotation, or "
                                   "org.opencontainers.image.ref.name with a full name)")
            manifest, index_digest = self._layout_manifest(source, descriptor)
            imported.append(self.commit(name, manifest, index_digest=index_digest))
        return imported

    def _layout_manifest(self, source: _Source, descriptor: Mapping[str, Any]) -> tuple[str, str | None]:
        """The platform's manifest under `descriptor` (itself, or chosen from an index), its
        blobs ingested; (manifest digest, index digest or None)."""
        digest = descriptor["digest"]
        self._ingest(source, f"blobs/sha256/{_hex(digest)}", digest)
        index_digest = None
        if descriptor.get("mediaType") in INDEX_TYPES:
            index_digest = digest
            chosen = choose_platform(self.read_json(digest).get("manifests") or ())
            digest = chosen["digest"]
            self._ingest(source, f"blobs/sha256/{_hex(digest)}", digest)
        manifest = self.read_json(digest)
        for blob in [manifest["config"], *(manifest.get("layers") or ())]:
            self._ingest(source, f"blobs/sha256/{_hex(blob['digest'])}", blob["digest"])
        return digest, index_digest

    def _import_docker(self, source: _Source) -> list[Image]:
        imported = []
        for entry in json.loads(source.read("manifest.json")):
            config_data = source.read(entry["Config"])
            config_digest = self.put(config_data)
            diff_ids = (json.loads(config_data).get("rootfs") or {}).get("diff_ids") or []
            descriptors = []
            for layer_name, diff_id in zip(entry["Layers"], diff_ids, strict=True):
                self._ingest(source, layer_name, diff_id)  # an uncompressed layer's digest is its diff_id
                descriptors.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": source.size(layer_name)})
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_data)},
                "layers": descriptors,
            }, separators=(",", ":")).encode()
            manifest_digest = self.put(manifest)
            for tag in entry.get("RepoTags") or ():
                imported.append(self.commit(tag, manifest_digest))
        return imported


def choose_platform(manifests: Any, os_name: str = "linux", architecture: str = "amd64",
                    variant: str = "") -> Mapping[str, Any]:
    """The index entry for this node's platform, as containerd's default platform matcher."""
    for m in manifests:
        p = m.get("platform") or {}
        if p.get("os") == os_name and p.get("architecture") == architecture and p.get("variant", "") in ("", variant):
            return m
    raise ImageNotPresentError(f"no match for platform in manifest: not found ({os_name}/{architecture})")


class _Source:
    """Files of an archive or a layout directory, by name."""

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()


class _DirSource(_Source):
    def __init__(self, root: Path) -> None:
        self.root = root

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def open(self, name: str) -> IO[bytes]:
        try:
            return open(self.root / name, "rb")
        except FileNotFoundError:
            raise ArchiveError(f"the layout has no {name}") from None

    def size(self, name: str) -> int:
        return (self.root / name).stat().st_size


class _TarSource(_Source):
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members = {m.name.removeprefix("./"): m for m in tar.getmembers()}

    def _member(self, name: str) -> tarfile.TarInfo:
        member = self.members.get(name.removeprefix("./"))
        for _ in range(10):
            if member is None or not member.issym():
                break
            target = os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname))
            member = self.members.get(target)
        if member is None:
            raise ArchiveError(f"the archive has no {name}")
        return member

    def exists(self, name: str) -> bool:
        return name.removeprefix("./") in self.members

    def open(self, name: str) -> IO[bytes]:
        f = self.tar.extractfile(self._member(name))
        if f is None:
            raise ArchiveError(f"{name} in the archive is not a file")
        return f

    def size(self, name: str) -> int:
        return self._member(name).size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.nodeagent.oci.store", description="a node's image store")
    p.add_argument("--root", type=Path, required=True)
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("import", help="load image archives").add_argument("archives", nargs="+", type=Path)
    sub.add_parser("list")
    sub.add_parser("rm").add_argument("refs", nargs="+")
    a = p.parse_args(argv)
    store = ContentStore(a.root)
    try:
        if a.action == "import":
            for archive in a.archives:
                loaded = {image.id: image for image in store.import_archive(archive)}
                for image in loaded.values():
                    sys.stdout.write(f"{', '.join(image.repo_tags)} {image.id}\n")
        elif a.action == "list":
            for image in sorted(store.images(), key=lambda i: i.repo_tags):
                sys.stdout.write(f"{', '.join(image.repo_tags) or '<none>'}\t{image.id[7:19]}\t{image.size}\n")
        else:
            for ref in a.refs:
                store.remove(ref)
    except (ImageError, layers.LayerError, OSError, KeyError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
