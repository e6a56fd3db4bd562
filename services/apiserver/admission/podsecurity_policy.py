"""The Pod Security Standards as checks of a pod's metadata and spec (k8s.io/pod-security-admission
policy/, as of Kubernetes 1.31): each check says why a pod is refused ("host namespaces") and
what exactly ("hostNetwork=true"), in upstream's words, so kubectl users read the same refusal
as from a real cluster.

A level is `privileged` (no checks), `baseline` (the baseline checks) or `restricted` (the
baseline checks, except those a restricted check replaces, then the restricted ones). A
policy version `v1.N` runs each check as it was in Kubernetes 1.N; `latest` (and any newer
version) as it is now. Checks run in upstream's order: baseline IDs sorted, then restricted
IDs sorted, which decides the order of the reasons in a message.

Pods are plain dicts here; a field counts as set the way Go's decoder would set it (an empty
`securityContext: {}` is a security context, a `null` one is none).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Level = Literal["privileged", "baseline", "restricted"]
LEVELS: tuple[Level, ...] = ("privileged", "baseline", "restricted")
Obj = dict[str, Any]


@dataclass(frozen=True, order=True)
class Version:
    """A policy version: `v1.<minor>`, or latest (minor None, newer than any other)."""

    minor: int | None = None

    def __str__(self) -> str:
        return "latest" if self.minor is None else f"v1.{self.minor}"

    def at_least(self, minor: int) -> bool:
        return self.minor is None or self.minor >= minor


LATEST = Version()
_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


def parse_level(text: str) -> Level | None:
    return next((level for level in LEVELS if level == text), None)


def parse_version(text: str) -> Version | None:
    if text == "latest":
        return LATEST
    m = _VERSION.match(text)
    return Version(int(m.group(1))) if m else None


@dataclass(frozen=True)
class LevelVersion:
    level: Level
    version: Version = LATEST

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True)
class Violation:
    """A failed check: `reason` always shown, `detail` (may be empty) for a single pod."""

    reason: str
    detail: str = ""


CheckFn = Callable[[Obj, Obj], Violation | None]  # (pod metadata, pod spec)


@dataclass(frozen=True)
class Check:
    id: str
    level: Level
    # (first minor version, the check from then on, IDs of baseline checks it replaces)
    versions: tuple[tuple[int, CheckFn, tuple[str, ...]], ...]

    def at(self, version: Version) -> tuple[CheckFn, tuple[str, ...]] | None:
        found = None
        for minimum, fn, overrides in self.versions:
            if version.at_least(minimum):
                found = (fn, overrides)
        return found


# --- helpers ------------------------------------------------------------------------------

def join_quote(items: Sequence[str]) -> str:
    return '"' + '", "'.join(items) + '"' if items else ""


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def go_quote(text: str) -> str:
    """Go's %q of a string (JSON's quoting, for the printable ASCII upstream messages hold)."""
    return json.dumps(text)


def _dict(value: Any) -> Obj | None:
    return value if isinstance(value, dict) else None


def containers(spec: Obj) -> Iterator[Obj]:
    """Init containers, containers, then ephemeral containers (upstream's visitContainers)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c


def security_context(obj: Obj) -> Obj | None:
    return _dict(obj.get("securityContext"))


def _container_sc(c: Obj, field: str) -> Any:
    sc = security_context(c)
    return None if sc is None else sc.get(field)


def _windows(spec: Obj) -> bool:
    os_ = _dict(spec.get("os"))
    return os_ is not None and os_.get("name") == "windows"


def _named(what: str, names: list[str]) -> str:
    return f"{pluralize(what, what + 's', len(names))} {join_quote(names)}"


def _setters(pod_bad: bool, bad_containers: list[str]) -> list[str]:
    """"pod" and/or `containers "a", "b"`: who set a forbidden value."""
    out = ["pod"] if pod_bad else []
    if bad_containers:
        out.append(_named("container", bad_containers))
    return out


# --- baseline -----------------------------------------------------------------------------

def host_namespaces(meta: Obj, spec: Obj) -> Violation | None:
    used = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    return Violation("host namespaces", ", ".join(used)) if used else None


def privileged(meta: Obj, spec: Obj) -> Violation | None:
    bad = [c.get("name", "") for c in containers(spec) if _container_sc(c, "privileged") is True]
    if bad:
        return Violation("privileged", f"{_named('container', bad)} must not set "
                         "securityContext.privileged=true")
    return None


CAPABILITIES_ALLOWED = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def _capabilities(c: Obj) -> Obj | None:
    return _dict(_container_sc(c, "capabilities"))


def capabilities_baseline(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    added: set[str] = set()
    for c in containers(spec):
        caps = _capabilities(c)
        extra = [a for a in (caps or {}).get("add") or [] if a not in CAPABILITIES_ALLOWED]
        if extra:
            bad.append(c.get("name", ""))
            added.update(extra)
    if bad:
        return Violation("non-default capabilities", f"{_named('container', bad)} must not include "
                         f"{join_quote(sorted(added))} in securityContext.capabilities.add")
    return None


def host_path_volumes(meta: Obj, spec: Obj) -> Violation | None:
    bad = [v.get("name", "") for v in spec.get("volumes") or []
           if isinstance(v, dict) and v.get("hostPath") is not None]
    return Violation("hostPath volumes", _named("volume", bad)) if bad else None


def host_ports(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    ports: set[str] = set()
    for c in containers(spec):
        used = [str(p.get("hostPort")) for p in c.get("ports") or []
                if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(c.get("name", ""))
            ports.update(used)
    if bad:
        return Violation("hostPort", f"{_named('container', bad)} "
                         f"{pluralize('uses', 'use', len(bad))} "
                         f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}")
    return None


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_type(sc: Obj | None) -> str | None:
    """The profile type set (None: no profile set); only RuntimeDefault and Localhost pass."""
    profile = _dict((sc or {}).get("appArmorProfile"))
    return None if profile is None else str(profile.get("type") or "")


def apparmor_profile(meta: Obj, spec: Obj) -> Violation | None:
    allowed = ("RuntimeDefault", "Localhost")
    values: set[str] = set()
    pod_type = _apparmor_type(security_context(spec))
    pod_bad = pod_type is not None and pod_type not in allowed
    if pod_bad:
        values.add(pod_type or "")
    bad: list[str] = []
    for c in containers(spec):
        t = _apparmor_type(security_context(c))
        if t is not None and t not in allowed:
            bad.append(c.get("name", ""))
            values.add(t)
    setters = _setters(pod_bad, bad)
    listed = sorted(values)
    annotations = sorted(f"{k}={go_quote(v)}" for k, v in (meta.get("annotations") or {}).items()
                         if k.startswith(APPARMOR_ANNOTATION_PREFIX)
                         and not (not v or v == "runtime/default" or v.startswith("localhost/")))
    if annotations:
        listed += annotations
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if setters:
        return Violation(pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(listed)),
                         f"{' and '.join(setters)} must not set AppArmor profile type to "
                         f"{join_quote(listed)}")
    return None


def proc_mount(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    types: set[str] = set()
    for c in containers(spec):
        mount = _container_sc(c, "procMount")
        if mount is not None and mount != "Default":
            bad.append(c.get("name", ""))
            types.add(str(mount))
    if bad:
        return Violation("procMount", f"{_named('container', bad)} must not set "
                         f"securityContext.procMount to {join_quote(sorted(types))}")
    return None


def _selinux(allowed_types: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Violation | None:
        bad_types: set[str] = set()
        flags = {"user": False, "role": False}

        def valid(opts: Obj) -> bool:
            ok = True
            if str(opts.get("type") or "") not in allowed_types:
                bad_types.add(str(opts.get("type") or ""))
                ok = False
            for f in ("user", "role"):
                if opts.get(f):
                    flags[f], ok = True, False
            return ok

        pod_opts = _dict((security_context(spec) or {}).get("seLinuxOptions"))
        pod_bad = pod_opts is not None and not valid(pod_opts)
        bad = [c.get("name", "") for c in containers(spec)
               if (o := _dict(_container_sc(c, "seLinuxOptions"))) is not None and not valid(o)]
        setters = _setters(pod_bad, bad)
        if not setters:
            return None
        data = [f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}"] \
            if bad_types else []
        data += [f"{f} may not be set" for f in ("user", "role") if flags[f]]
        return Violation("seLinuxOptions", f"{' and '.join(setters)} set forbidden "
                         f"securityContext.seLinuxOptions: {'; '.join(data)}")
    return check


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}

SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def seccomp_baseline_1_0(meta: Obj, spec: Obj) -> Violation | None:
    """Before 1.19: the alpha annotations."""
    annotations = meta.get("annotations") or {}
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_ANNOTATION_PREFIX + c.get("name", "")
                                       for c in containers(spec)]
    forbidden = sorted({f"{k}={go_quote(annotations[k])}" for k in keys if k in annotations
                        and not (annotations[k] in ("runtime/default", "docker/default")
                                 or annotations[k].startswith("localhost/"))})
    if forbidden:
        return Violation("seccompProfile", f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} "
                         f"{', '.join(forbidden)}")
    return None


def _seccomp_type(sc: Obj | None) -> str | None:
    profile = _dict((sc or {}).get("seccompProfile"))
    return None if profile is None else str(profile.get("type") or "")


def _valid_seccomp(t: str) -> bool:
    return t in ("RuntimeDefault", "Localhost")


def _seccomp(meta: Obj, spec: Obj, *, required: bool) -> Violation | None:
    values: set[str] = set()
    pod_type = _seccomp_type(security_context(spec))
    pod_bad = pod_type is not None and not _valid_seccomp(pod_type)
    if pod_bad:
        values.add(pod_type or "")
    pod_set = pod_type is not None and not pod_bad
    explicit: list[str] = []
    implicit: list[str] = []
    for c in containers(spec):
        t = _seccomp_type(security_context(c))
        if t is None:
            if not pod_set:
                implicit.append(c.get("name", ""))
        elif not _valid_seccomp(t):
            explicit.append(c.get("name", ""))
            values.add(t)
    setters = _setters(pod_bad, explicit)
    if setters:
        return Violation("seccompProfile", f"{' and '.join(setters)} must not set "
                         f"securityContext.seccompProfile.type to {join_quote(sorted(values))}")
    if required and implicit:
        return Violation("seccompProfile", f"pod or {_named('container', implicit)} must set "
                         'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


def seccomp_baseline_1_19(meta: Obj, spec: Obj) -> Violation | None:
    return _seccomp(meta, spec, required=False)


SYSCTLS_1_0 = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                         "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
                         "net.ipv4.ip_unprivileged_port_start"})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                               "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Violation | None:
        names = [str(s.get("name")) for s in (security_context(spec) or {}).get("sysctls") or []
                 if isinstance(s, dict)]
        bad = [n for n in names if n not in allowed]
        return Violation("forbidden sysctls", ", ".join(bad)) if bad else None
    return check


def windows_host_process(meta: Obj, spec: Obj) -> Violation | None:
    def host_process(sc: Obj | None) -> bool:
        return (_dict((sc or {}).get("windowsOptions")) or {}).get("hostProcess") is True

    bad = [c.get("name", "") for c in containers(spec) if host_process(security_context(c))]
    setters = _setters(host_process(security_context(spec)), bad)
    if setters:
        return Violation("hostProcess", f"{' and '.join(setters)} must not set "
                         "securityContext.windowsOptions.hostProcess=true")
    return None


# --- restricted ---------------------------------------------------------------------------

def _not_on_windows(check: CheckFn) -> CheckFn:
    """From 1.25 a pod with spec.os.name=windows is exempt (API validation forbids the field)."""
    def exempt(meta: Obj, spec: Obj) -> Violation | None:
        return None if _windows(spec) else check(meta, spec)
    return exempt


def allow_privilege_escalation(meta: Obj, spec: Obj) -> Violation | None:
    bad = [c.get("name", "") for c in containers(spec)
           if _container_sc(c, "allowPrivilegeEscalation") is not False]
    if bad:
        return Violation("allowPrivilegeEscalation != false", f"{_named('container', bad)} must set "
                         "securityContext.allowPrivilegeEscalation=false")
    return None


def capabilities_restricted(meta: Obj, spec: Obj) -> Violation | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for c in containers(spec):
        caps = _capabilities(c)
        if caps is None:
            missing_drop.append(c.get("name", ""))
            continue
        if "ALL" not in (caps.get("drop") or []):
            missing_drop.append(c.get("name", ""))
        extra = [a for a in caps.get("add") or [] if a != "NET_BIND_SERVICE"]
        if extra:
            adding.append(c.get("name", ""))
            forbidden.update(extra)
    details = []
    if missing_drop:
        details.append(f'{_named("container", missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_named('container', adding)} must not include {join_quote(sorted(forbidden))} "
                       "in securityContext.capabilities.add")
    return Violation("unrestricted capabilities", "; ".join(details)) if details else None


ALLOWED_RESTRICTED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                              "persistentVolumeClaim", "projected", "secret")
RESTRICTED_VOLUME_TYPES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
    "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO",
    "storageos")


def restricted_volumes(meta: Obj, spec: Obj) -> Violation | None:
    bad: list[str] = []
    types: set[str] = set()
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        sources = [k for k, val in v.items() if k != "name" and val is not None]
        if not sources or any(s in ALLOWED_RESTRICTED_VOLUMES for s in sources):
            continue  # no source at all is an emptyDir once defaulted
        bad.append(v.get("name", ""))
        types.add(next((t for t in RESTRICTED_VOLUME_TYPES if t in sources), "unknown"))
    if bad:
        return Violation("restricted volume types", f"{_named('volume', bad)} "
                         f"{pluralize('uses', 'use', len(bad))} "
                         f"{pluralize('restricted volume type', 'restricted volume types', len(types))} "
                         f"{join_quote(sorted(types))}")
    return None


def run_as_non_root(meta: Obj, spec: Obj) -> Violation | None:
    pod_value = (security_context(spec) or {}).get("runAsNonRoot")
    explicit: list[str] = []
    implicit: list[str] = []
    for c in containers(spec):
        value = _container_sc(c, "runAsNonRoot")
        if value is None:
            if pod_value is not True:
                implicit.append(c.get("name", ""))
        elif value is False:
            explicit.append(c.get("name", ""))
    setters = _setters(pod_value is False, explicit)
    if setters:
        return Violation("runAsNonRoot != true", f"{' and '.join(setters)} must not set "
                         "securityContext.runAsNonRoot=false")
    if implicit:
        return Violation("runAsNonRoot != true", f"pod or {_named('container', implicit)} must set "
                         "securityContext.runAsNonRoot=true")
    return None


def run_as_user(meta: Obj, spec: Obj) -> Violation | None:
    def root(sc: Obj | None) -> bool:
        value = (sc or {}).get("runAsUser")
        return isinstance(value, int) and not isinstance(value, bool) and value == 0

    bad = [c.get("name", "") for c in containers(spec) if root(security_context(c))]
    setters = _setters(root(security_context(spec)), bad)
    if setters:
        return Violation("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")
    return None


def seccomp_restricted(meta: Obj, spec: Obj) -> Violation | None:
    return _seccomp(meta, spec, required=True)


CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", "baseline", ((0, apparmor_profile, ()),)),
    Check("capabilities_baseline", "baseline", ((0, capabilities_baseline, ()),)),
    Check("hostNamespaces", "baseline", ((0, host_namespaces, ()),)),
    Check("hostPathVolumes", "baseline", ((0, host_path_volumes, ()),)),
    Check("hostPorts", "baseline", ((0, host_ports, ()),)),
    Check("privileged", "baseline", ((0, privileged, ()),)),
    Check("procMount", "baseline", ((0, proc_mount, ()),)),
    Check("seLinuxOptions", "baseline", ((0, _selinux(SELINUX_TYPES_1_0), ()),
                                         (31, _selinux(SELINUX_TYPES_1_31), ()))),
    Check("seccompProfile_baseline", "baseline", ((0, seccomp_baseline_1_0, ()),
                                                  (19, seccomp_baseline_1_19, ()))),
    Check("sysctls", "baseline", ((0, _sysctls(SYSCTLS_1_0), ()), (27, _sysctls(SYSCTLS_1_27), ()),
                                  (29, _sysctls(SYSCTLS_1_29), ()))),
    Check("windowsHostProcess", "baseline", ((0, windows_host_process, ()),)),
    Check("allowPrivilegeEscalation", "restricted", ((8, allow_privilege_escalation, ()),
                                                     (25, _not_on_windows(allow_privilege_escalation), ()))),
    Check("capabilities_restricted", "restricted", (
        (22, capabilities_restricted, ("capabilities_baseline",)),
        (25, _not_on_windows(capabilities_restricted), ("capabilities_baseline",)))),
    Check("restrictedVolumes", "restricted", ((0, restricted_volumes, ("hostPathVolumes",)),)),
    Check("runAsNonRoot", "restricted", ((0, run_as_non_root, ()),)),
    Check("runAsUser", "restricted", ((23, run_as_user, ()),)),
    Check("seccompProfile_restricted", "restricted", (
        (19, seccomp_restricted, ("seccompProfile_baseline",)),
        (25, _not_on_windows(seccomp_restricted), ("seccompProfile_baseline",)))),
)


def checks_for(lv: LevelVersion) -> list[CheckFn]:
    """The checks `lv` runs, in upstream's order (baseline IDs sorted, then restricted IDs)."""
    if lv.level == "privileged":
        return []
    baseline = sorted((c for c in CHECKS if c.level == "baseline"), key=lambda c: c.id)
    restricted = sorted((c for c in CHECKS if c.level == "restricted"), key=lambda c: c.id)
    active_restricted = [(c, found) for c in restricted if (found := c.at(lv.version))]
    overridden = {o for _, (_, overrides) in active_restricted for o in overrides} \
        if lv.level == "restricted" else set()
    fns = [found[0] for c in baseline if c.id not in overridden and (found := c.at(lv.version))]
    if lv.level == "restricted":
        fns += [fn for _, (fn, _) in active_restricted]
    return fns


def evaluate(lv: LevelVersion, meta: Mapping[str, Any], spec: Mapping[str, Any]) -> list[Violation]:
    """What keeps a pod (or a workload's pod template) out of `lv`, in upstream's order."""
    m, s = dict(meta), dict(spec)
    return [v for fn in checks_for(lv) if (v := fn(m, s)) is not None]


def forbidden_detail(violations: Sequence[Violation]) -> str:
    """`host namespaces (hostNetwork=true), hostPath volumes (volume "root")`."""
    return ", ".join(f"{v.reason} ({v.detail})" if v.detail else v.reason for v in violations)


def forbidden_reason(violations: Sequence[Violation]) -> str:
    return ", ".join(v.reason for v in violations)
