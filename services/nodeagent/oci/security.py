"""A container's securityContext as the OCI config says it, the way kubelet and containerd's
CRI plugin decide it:

- the user: `runAsUser`/`runAsGroup` (the container's over the pod's), else the image's User
  (`uid`, `uid:gid`, `name`, `name:group`) looked up in the image's own /etc/passwd and
  /etc/group; the group defaults to the user's; the additional groups are the user's groups in
  the image's /etc/group, then `supplementalGroups` and `fsGroup`;
- `runAsNonRoot` refused for uid 0 or an unverifiable user name, with kubelet's messages;
- capabilities: containerd's default set, `drop` then `add` (`ALL` either way), every one when
  `privileged`; `allowPrivilegeEscalation: false` is no_new_privs;
- `readOnlyRootFilesystem`; `privileged` or `procMount: Unmasked` unmask /proc; `privileged`
  also leaves /sys writable and the device cgroup open, as containerd does;
- `seccompProfile`: RuntimeDefault is containerd's profile (`seccomp`), Localhost a file under
  the node's seccomp root, Unconfined (or nothing asked, kubelet's default) none.

Pure: the pod and container as the API has them in, a `SecuritySettings` out, applied to the
config.json dict by `apply_to`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.nodeagent.oci import seccomp
from services.nodeagent.oci.spec import DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS

# Every capability runc knows on this kernel generation (what `privileged` grants).
ALL_CAPABILITIES: tuple[str, ...] = tuple(f"CAP_{c}" for c in (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE"))


class SecurityContextError(Exception):
    """The container cannot be run as its securityContext asks (kubelet: CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"


@dataclass(frozen=True)
class SecuritySettings:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    no_new_privileges: bool = False
    readonly_rootfs: bool = False
    privileged: bool = False
    unmasked: bool = False
    seccomp: Mapping[str, Any] | None = None  # the OCI linux.seccomp; None: unconfined

    def apply_to(self, spec: dict[str, Any]) -> None:
        process, linux = spec["process"], spec["linux"]
        process["user"] = {"uid": self.uid, "gid": self.gid}
        if self.additional_gids:
            process["user"]["additionalGids"] = list(self.additional_gids)
        caps = list(self.capabilities)
        process["capabilities"] = {"bounding": caps, "effective": list(caps), "permitted": list(caps)}
        process["noNewPrivileges"] = self.no_new_privileges
        spec["root"]["readonly"] = self.readonly_rootfs
        if self.privileged or self.unmasked:
            linux["maskedPaths"], linux["readonlyPaths"] = [], []
        else:
            linux["maskedPaths"], linux["readonlyPaths"] = list(DEFAULT_MASKED_PATHS), list(DEFAULT_READONLY_PATHS)
        if self.seccomp is not None:
            linux["seccomp"] = dict(self.seccomp)
        else:
            linux.pop("seccomp", None)
        if self.privileged:
            for mount in spec["mounts"]:
                if mount["destination"] in ("/sys", "/sys/fs/cgroup"):
                    mount["options"] = [o for o in mount["options"] if o != "ro"] + ["rw"]
            linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]


def _context(pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """The container's securityContext over the pod's, for the fields both have."""
    pod_sc = dict((pod.get("spec") or {}).get("securityContext") or {})
    merged = {k: pod_sc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile") if k in pod_sc}
    merged.update(container.get("securityContext") or {})
    return merged


def _read_db(rootfs: Path, name: str) -> list[list[str]]:
    try:
        text = (rootfs / "etc" / name).read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#") and ":" in line]


def _passwd_entry(rootfs: Path, user: str) -> list[str] | None:
    for entry in _read_db(rootfs, "passwd"):
        if len(entry) >= 4 and (entry[0] == user or entry[2] == user):
            return entry
    return None


def _group_id(rootfs: Path, group: str) -> int:
    if group.isdigit():
        return int(group)
    for entry in _read_db(rootfs, "group"):
        if len(entry) >= 3 and entry[0] == group:
            return int(entry[2])
    raise SecurityContextError(f"unable to find group {group}: no matching entries in group file")


def image_user(rootfs: Path, user: str) -> tuple[int, int | None, str]:
    """The image's User as (uid, gid or None, user name for group membership), containerd's WithUser."""
    name, _, group = user.partition(":")
    entry = _passwd_entry(rootfs, name) if name else None
    if name.isdigit():
        uid = int(name)
    elif not name:
        uid = 0
        entry = _passwd_entry(rootfs, "0")
    elif entry is None:
        raise SecurityContextError(f"unable to find user {name}: no matching entries in passwd file")
    else:
        uid = int(entry[2])
    gid = _group_id(rootfs, group) if group else (int(entry[3]) if entry else None)
    return uid, gid, entry[0] if entry else ""


def _member_groups(rootfs: Path, user_name: str) -> list[int]:
    if not user_name:
        return []
    return [int(e[2]) for e in _read_db(rootfs, "group") if len(e) >= 4 and user_name in e[3].split(",")]


def _capabilities(sc: Mapping[str, Any], privileged: bool) -> tuple[str, ...]:
    if privileged:
        return ALL_CAPABILITIES
    caps = sc.get("capabilities") or {}

    def names(key: str) -> list[str]:
        return [c if c.upper().startswith("CAP_") or c.upper() == "ALL" else f"CAP_{c}"
                for c in (str(x).upper() for x in caps.get(key) or ())]
    add, drop = names("add"), names("drop")
    current: list[str] = [] if "ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    for cap in (ALL_CAPABILITIES if "ALL" in add else add):
        if cap not in current:
            current.append(cap)
    return tuple(current)


def _pod_name(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def _check_non_root(sc: Mapping[str, Any], uid: int, image_user_text: str, pod: Mapping[str, Any],
                    container: str) -> None:
    """kubelet's verifyRunAsNonRoot."""
    if not sc.get("runAsNonRoot"):
        return
    if "runAsUser" in sc:
        if int(sc["runAsUser"]) == 0:
            raise SecurityContextError(f'container\'s runAsUser breaks non-root policy (pod: "{_pod_name(pod)}", '
                                       f"container: {container})")
        return
    name = image_user_text.partition(":")[0]
    if name and not name.isdigit():
        raise SecurityContextError(f"container has runAsNonRoot and image has non-numeric user ({name}), cannot "
                                   f'verify user is non-root (pod: "{_pod_name(pod)}", container: {container})')
    if uid == 0:
        raise SecurityContextError(f'container has runAsNonRoot and image will run as root (pod: "{_pod_name(pod)}", '
                                   f"container: {container})")


def seccomp_profile(sc: Mapping[str, Any], capabilities: tuple[str, ...], *, privileged: bool,
                    seccomp_root: Path | None) -> Mapping[str, Any] | None:
    """kubelet's choice: privileged and Unconfined (and, without --seccomp-default, nothing asked)
    are unconfined; RuntimeDefault is containerd's profile; Localhost a file of the node's."""
    profile = sc.get("seccompProfile") or {}
    kind = profile.get("type")
    if privileged or kind in (None, "Unconfined"):
        return None
    if kind == "RuntimeDefault":
        return seccomp.runtime_default(capabilities)
    if kind == "Localhost":
        name = str(profile.get("localhostProfile") or "")
        path = (seccomp_root or Path("/var/lib/kubelet/seccomp")) / name
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SecurityContextError(f'failed to load seccomp profile "{path}": {exc}') from exc
        if not isinstance(loaded, dict):
            raise SecurityContextError(f'seccomp profile "{path}" is not a JSON object')
        return loaded
    raise SecurityContextError(f"unknown seccomp profile type {kind!r}")


def container_security(*, pod: Mapping[str, Any], container: Mapping[str, Any], image_user_text: str,
                       rootfs: Path, seccomp_root: Path | None = None) -> SecuritySettings:
    sc = _context(pod, container)
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    uid, gid, user_name = image_user(rootfs, "" if "runAsUser" in sc else image_user_text)
    if "runAsUser" in sc:
        uid = int(sc["runAsUser"])
        entry = _passwd_entry(rootfs, str(uid))
        gid, user_name = (int(entry[3]), entry[0]) if entry else (None, "")
    if "runAsGroup" in sc:
        gid = int(sc["runAsGroup"])
    _check_non_root(sc, uid, image_user_text, pod, str(container.get("name", "")))
    extra: list[int] = _member_groups(rootfs, user_name)
    extra += [int(g) for g in pod_sc.get("supplementalGroups") or ()]
    if pod_sc.get("fsGroup") is not None:
        extra.append(int(pod_sc["fsGroup"]))
    privileged = bool(sc.get("privileged"))
    capabilities = _capabilities(sc, privileged)
    return SecuritySettings(
        uid=uid, gid=gid or 0, additional_gids=tuple(dict.fromkeys(g for g in extra if g != (gid or 0))),
        capabilities=capabilities,
        seccomp=seccomp_profile(sc, capabilities, privileged=privileged, seccomp_root=seccomp_root),
        no_new_privileges=not privileged and sc.get("allowPrivilegeEscalation") is False,
        readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")), privileged=privileged,
        unmasked=sc.get("procMount") == "Unmasked",
    )
