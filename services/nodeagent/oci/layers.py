"""One image layer (a tar stream, gzip-compressed or not) unpacked into a directory of its own,
in the format overlayfs stacks, as containerd's overlay snapshotter keeps layers:

- a whiteout `.wh.NAME` (the layer deletes NAME of the layers below) becomes a 0:0 character
  device NAME; an opaque marker `.wh..wh..opq` (the directory hides everything below it)
  becomes the xattr `trusted.overlay.opaque=y` on its directory;
- ownership, modes, times, links, device nodes and extended attributes are kept;
- nothing lands outside the directory: absolute names and `..` are refused, and so is a path
  through a symbolic link (a link in the layer may point anywhere: inside a container it is
  resolved against the container's root, here it must not be followed).

The sha256 of the uncompressed stream is the layer's diff_id: computed while unpacking, so the
caller checks it against the image config before the layer is used. The layer is unpacked in a
temporary directory beside its final place and renamed there, so a crash never leaves half of
one.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import uuid
from pathlib import Path
from typing import IO

from services.nodeagent.oci.image import DigestMismatchError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20


class LayerError(ValueError):
    """A layer that cannot be unpacked safely (an unsafe path, a broken archive)."""


class _Hashing:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _open_uncompressed(blob: IO[bytes]) -> IO[bytes]:
    head = blob.read(2)
    blob.seek(0)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=blob, mode="rb")  # type: ignore[return-value]
    return blob


def _safe_relative(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise LayerError(f"layer entry {name!r} leaves the layer")
    return "/".join(parts)


def _check_parents(root: Path, rel: str) -> None:
    """No parent of `rel` may be a symbolic link (a layer could otherwise write through one)."""
    current = root
    for part in rel.split("/")[:-1]:
        current = current / part
        if current.is_symlink():
            raise LayerError(f"layer entry {rel!r} goes through the symbolic link {part!r}")


def _remove(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _whiteout(root: Path, rel: str) -> None:
    parent, _, base = rel.rpartition("/")
    directory = root / parent if parent else root
    directory.mkdir(parents=True, exist_ok=True)
    if base == OPAQUE_MARKER:
        os.setxattr(directory, "trusted.overlay.opaque", b"y")
        return
    target = directory / base[len(WHITEOUT_PREFIX):]
    _remove(target)
    os.mknod(target, 0o000 | stat.S_IFCHR, os.makedev(0, 0))


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    out = {}
    for key, value in (member.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            out[key[len("SCHILY.xattr."):]] = value.encode("utf-8", "surrogateescape")
    return out


def _write_entry(root: Path, rel: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
    path = root / rel
    if member.isdir():
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove(path)
        if member.isreg():
            source = tar.extractfile(member)
            assert source is not None
            with open(path, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            target = _safe_relative(member.linkname)
            _check_parents(root, target)
            os.link(root / target, path, follow_symlinks=False)
            return  # a hard link shares its target's owner, mode and times
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(path, member.mode & 0o7777)
        else:
            raise LayerError(f"layer entry {rel!r} has an unknown type {member.type!r}")
    os.lchown(path, member.uid, member.gid)
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)
    for key, value in _xattrs(member).items():
        os.setxattr(path, key, value, follow_symlinks=False)


def _apply_times(root: Path, times: list[tuple[str, float]]) -> None:
    """Times last, deepest first: writing a directory's entries changes its mtime."""
    for rel, mtime in sorted(times, key=lambda item: -item[0].count("/")):
        os.utime(root / rel if rel else root, (mtime, mtime), follow_symlinks=False)


def unpack(blob: IO[bytes], target: Path, *, diff_id: str | None = None) -> str:
    """Unpack a layer (seekable, compressed or not) into `target`, which must not exist; the
    layer's diff_id ("sha256:<hex>"), which must be `diff_id` when given (DigestMismatchError).
    Raises LayerError; on any error `target` is not made."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.unpacking")  # two unpacking at once: both whole
    tmp.mkdir(parents=True)
    try:
        stream = _Hashing(_open_uncompressed(blob))
        times: list[tuple[str, float]] = []
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    rel = _safe_relative(member.name)
                    if not rel:
                        continue
                    _check_parents(tmp, rel)
                    base = rel.rpartition("/")[2]
                    if base.startswith(WHITEOUT_PREFIX):
                        _whiteout(tmp, rel)
                        continue
                    _write_entry(tmp, rel, member, tar)
                    if not member.islnk():
                        times.append((rel, float(member.mtime)))
            stream.drain()
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as exc:
            raise LayerError(f"unpacking layer: {exc}") from exc
        got = f"sha256:{stream.sha.hexdigest()}"
        if diff_id is not None and got != diff_id:
            raise DigestMismatchError(f"layer content has diff_id {got}, the image config says {diff_id}")
        _apply_times(tmp, times)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # the same layer, unpacked by another meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return got
