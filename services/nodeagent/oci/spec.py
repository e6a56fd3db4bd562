"""A container's OCI runtime config (`config.json`), as containerd's CRI plugin writes it.

Pure: the pod's sandbox, the container and its image in, a dict out; `runc` does the rest.
What it encodes:

- the process: the image's Entrypoint and Cmd replaced by the container's `command` and `args`
  as Kubernetes says (command given: command + args; only args: Entrypoint + args; neither:
  Entrypoint + Cmd); the image's Env, then `HOSTNAME`, then the container's env (later wins,
  order kept, as containerd's WithEnv); the working directory from the container, else the
  image, else `/`;
- namespaces: the pod's network, IPC and UTS namespaces joined by path (made once per sandbox,
  so the hostname is set there and not here: runc refuses a hostname in a joined UTS
  namespace), a PID and a mount namespace of the container's own (or the pod's PID namespace
  with shareProcessNamespace);
- mounts: containerd's defaults (/proc, /dev, /dev/pts, /dev/mqueue, /sys, /sys/fs/cgroup), the
  pod's /dev/shm shared by its containers, the pod's /etc/hosts, /etc/hostname and
  /etc/resolv.conf, the termination message file, then the container's volumes (a read-only
  one remounted read-only, private propagation);
- containerd's default capabilities, masked and read-only paths and device rules, which
  `security.SecuritySettings.apply_to` then adjusts, and `linux.resources` from the limits.

Everything else the OCI spec allows is left to runc's defaults.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.nodeagent.oci.image import ImageConfig

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# containerd's oci.defaultUnixCaps: what a container gets unless its securityContext changes it
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
# containerd's defaultUnixMaskedPaths / defaultUnixReadonlyPaths
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)


class ProcessArgsError(ValueError):
    """Nothing to run: no command and an image without Entrypoint and Cmd."""


@dataclass(frozen=True)
class BindMount:
    """A host path at a container path (a volume, a pod file)."""

    source: str
    destination: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpecInput:
    """What the runtime knows of one container when it writes its bundle."""

    rootfs: str  # the mounted overlay of the image's layers and the container's upper layer
    argv: tuple[str, ...]
    env: tuple[str, ...]  # "KEY=value"
    cwd: str
    netns: str  # paths of the sandbox's namespaces
    ipcns: str
    utsns: str
    shm: str  # the pod's /dev/shm (a tmpfs of the sandbox)
    cgroups_path: str
    pidns: str = ""  # the pod's PID namespace with shareProcessNamespace; else one of its own
    pod_files: Sequence[BindMount] = ()  # /etc/hosts, /etc/hostname, /etc/resolv.conf, termination log
    volumes: Sequence[BindMount] = ()
    terminal: bool = False
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)


def process_args(image: ImageConfig, command: Sequence[str] | None, args: Sequence[str] | None) -> tuple[str, ...]:
    """Kubernetes' rule for what runs: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD."""
    if command:
        argv = [*command, *(args or ())]
    elif args:
        argv = [*image.entrypoint, *args]
    else:
        argv = [*image.entrypoint, *image.cmd]
    if not argv:
        raise ProcessArgsError("no command specified")
    return tuple(argv)


def process_env(image: ImageConfig, *, hostname: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """The image's Env, HOSTNAME, the container's env: a later value replaces an earlier one in
    place (containerd's WithEnv), and PATH is there even when the image has none."""
    merged: dict[str, str] = {}
    for item in image.env:
        key, _, value = item.partition("=")
        merged[key] = value
    merged.setdefault("PATH", DEFAULT_PATH)
    merged["HOSTNAME"] = hostname
    merged.update(env)
    return tuple(f"{k}={v}" for k, v in merged.items())


def working_dir(image: ImageConfig, container_working_dir: str | None) -> str:
    return container_working_dir or image.working_dir or "/"


def _default_mounts(shm: str) -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/dev/shm", "type": "bind", "source": shm, "options": ["rbind", "rprivate", "rw"]},
    ]


def _bind(mount: BindMount) -> dict[str, Any]:
    return {"destination": mount.destination, "type": "bind", "source": mount.source,
            "options": ["rbind", "rprivate", "ro" if mount.read_only else "rw"]}


def _namespaces(spec: ContainerSpecInput) -> list[dict[str, str]]:
    pid: dict[str, str] = {"type": "pid"}
    if spec.pidns:
        pid["path"] = spec.pidns
    return [pid, {"type": "ipc", "path": spec.ipcns}, {"type": "uts", "path": spec.utsns}, {"type": "mount"},
            {"type": "network", "path": spec.netns}]


def _default_devices() -> list[dict[str, Any]]:
    """containerd's device cgroup rules: deny all, then the usual character devices."""
    allow = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, -1)]
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for major, minor in allow:
        rule: dict[str, Any] = {"allow": True, "type": "c", "major": major, "access": "rwm"}
        if minor >= 0:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def runtime_spec(spec: ContainerSpecInput, *, resources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The container's config.json, before its securityContext is applied."""
    capabilities = list(DEFAULT_CAPABILITIES)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": spec.terminal,
            "user": {"uid": spec.uid, "gid": spec.gid,
                     **({"additionalGids": list(spec.additional_gids)} if spec.additional_gids else {})},
            "args": list(spec.argv),
            "env": list(spec.env),
            "cwd": spec.cwd,
            "capabilities": {"bounding": capabilities, "effective": list(capabilities),
                             "permitted": list(capabilities)},
            "noNewPrivileges": False,
            "oomScoreAdj": 0,
        },
        "root": {"path": spec.rootfs, "readonly": False},
        "mounts": [*_default_mounts(spec.shm), *(_bind(m) for m in spec.pod_files), *(_bind(m) for m in spec.volumes)],
        "annotations": dict(spec.annotations),
        "linux": {
            "namespaces": _namespaces(spec),
            "cgroupsPath": spec.cgroups_path,
            "resources": {"devices": _default_devices(), **dict(resources or {})},
            "maskedPaths": list(DEFAULT_MASKED_PATHS),
            "readonlyPaths": list(DEFAULT_READONLY_PATHS),
        },
    }
