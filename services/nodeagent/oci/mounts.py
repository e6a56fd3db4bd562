"""The node's own mounts: a container's rootfs (overlayfs over the image's layers), a pod's
/dev/shm (tmpfs), and finding and removing what is mounted under a directory (a pod's, a
node's, a private Docker engine's). mount(2) and umount2(2) are called directly: a process per
mount would dominate a pod's start, and these run in the agent's own thread, never between
fork and exec.
"""
from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence
from pathlib import Path

MNT_DETACH = 2
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_SHARED = 2, 4, 8, 4096, 16384, 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


class MountError(OSError):
    pass


def _mount(source: str, target: Path, fstype: str, data: str, flags: int = 0) -> None:
    if _libc.mount(source.encode(), str(target).encode(), fstype.encode(), flags, data.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def overlay_options(lowers: Sequence[Path], upper: Path, work: Path) -> str:
    """overlayfs options: the top layer first in lowerdir, as overlayfs stacks them."""
    if not lowers:
        raise ValueError("an overlay needs at least one lower layer")
    return f"lowerdir={':'.join(str(p) for p in reversed(lowers))},upperdir={upper},workdir={work}"


def mount_overlay(target: Path, *, lowers: Sequence[Path], upper: Path, work: Path) -> None:
    """`lowers` bottom layer first (the image's order)."""
    _mount("overlay", target, "overlay", overlay_options(lowers, upper, work))


def bind(source: Path, target: Path) -> None:
    """Bind-mount `source` on `target` (a namespace kept by its file)."""
    _mount(str(source), target, "", "", MS_BIND)


def make_shared_mountpoint(directory: Path) -> None:
    """Make `directory` a mount point with shared propagation, as `ip netns add` makes /run/netns
    (so a namespace bound there is seen in mount namespaces made later); idempotent."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        _mount("none", directory, "", "", MS_SHARED | MS_REC)
    except MountError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        _mount(str(directory), directory, "", "", MS_BIND | MS_REC)
        _mount("none", directory, "", "", MS_SHARED | MS_REC)


def mount_tmpfs(target: Path, options: str) -> None:
    """A nosuid, nodev, noexec tmpfs (a pod's /dev/shm) with tmpfs's own `options` (mode, size)."""
    _mount("tmpfs", target, "tmpfs", options, MS_NOSUID | MS_NODEV | MS_NOEXEC)


def unmount(target: Path) -> None:
    """Lazily unmount `target`; nothing mounted there (or no such path) is fine."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise MountError(err, f"umount {target}: {os.strerror(err)}")


def is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in octal (`\\040`)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(directory: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below `directory` (from /proc/self/mountinfo unless given), deepest
    and latest first: the order to unmount them in."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return []
    top = str(directory).rstrip("/") or "/"
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point == top or point.startswith(top + "/"):
                points.append(point)
    return sorted(reversed(points), key=lambda p: -p.count("/"))


def unmount_under(directory: Path) -> list[str]:
    """Lazily unmount everything at or below `directory`; the mount points unmounted."""
    done = []
    for point in mounts_under(directory):
        try:
            unmount(Path(point))
        except MountError:
            continue
        done.append(point)
    return done
