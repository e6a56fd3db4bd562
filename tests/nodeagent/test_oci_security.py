"""securityContext and resources as OCI config: table tests over a small image rootfs."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.nodeagent.oci import resources, security, spec

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101::/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nnginx:x:101:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    return tmp_path


def _pod(container_sc: dict | None = None, pod_sc: dict | None = None) -> tuple[dict, dict]:
    container = {"name": "c", "securityContext": container_sc or {}}
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"securityContext": pod_sc or {}, "containers": [container]}}, container


@pytest.mark.parametrize(("image_user", "container_sc", "pod_sc", "expected"), [
    ("", {}, {}, (0, 0, (10,))),
    ("nginx", {}, {}, (101, 101, ())),
    ("app", {}, {}, (1000, 1000, (10, 29))),
    ("1000:10", {}, {}, (1000, 10, (29,))),  # the user's groups: wheel is the primary one here
    ("app:nginx", {}, {}, (1000, 101, (10, 29))),
    ("4242", {}, {}, (4242, 0, ())),
    ("nginx", {"runAsUser": 1000}, {}, (1000, 1000, (10, 29))),
    ("", {}, {"runAsUser": 2000, "runAsGroup": 3000}, (2000, 3000, ())),
    ("", {"runAsGroup": 5}, {"runAsGroup": 3000, "supplementalGroups": [7, 8], "fsGroup": 9}, (0, 5, (10, 7, 8, 9))),
], ids=["root-default", "image-name", "image-name-with-groups", "uid-gid", "name-group", "unknown-uid",
        "run-as-user-wins", "pod-level", "container-group-over-pod"])
def test_user_and_groups(rootfs, image_user, container_sc, pod_sc, expected):
    pod, container = _pod(container_sc, pod_sc)
    s = security.container_security(pod=pod, container=container, image_user_text=image_user, rootfs=rootfs)
    assert (s.uid, s.gid, s.additional_gids) == expected


@pytest.mark.parametrize(("image_user", "container_sc", "message"), [
    ("", {"runAsNonRoot": True},
     'container has runAsNonRoot and image will run as root (pod: "p_ns(u1)", container: c)'),
    ("nginx", {"runAsNonRoot": True}, "container has runAsNonRoot and image has non-numeric user (nginx), cannot "
                                       'verify user is non-root (pod: "p_ns(u1)", container: c)'),
    ("", {"runAsNonRoot": True, "runAsUser": 0},
     'container\'s runAsUser breaks non-root policy (pod: "p_ns(u1)", container: c)'),
    ("ghost", {}, "unable to find user ghost: no matching entries in passwd file"),
    ("app:ghosts", {}, "unable to find group ghosts: no matching entries in group file"),
], ids=["root-image", "non-numeric", "explicit-root", "unknown-user", "unknown-group"])
def test_refused(rootfs, image_user, container_sc, message):
    pod, container = _pod(container_sc)
    with pytest.raises(security.SecurityContextError) as info:
        security.container_security(pod=pod, container=container, image_user_text=image_user, rootfs=rootfs)
    assert str(info.value) == message and info.value.reason == "CreateContainerConfigError"


def test_non_root_accepts_a_numeric_user(rootfs):
    pod, container = _pod({"runAsNonRoot": True})
    assert security.container_security(pod=pod, container=container, image_user_text="1000",
                                       rootfs=rootfs).uid == 1000


@pytest.mark.parametrize(("caps", "privileged", "expected"), [
    ({}, False, spec.DEFAULT_CAPABILITIES),
    ({"drop": ["ALL"]}, False, ()),
    ({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, False, ("CAP_NET_BIND_SERVICE",)),
    ({"add": ["NET_ADMIN", "cap_sys_time"]}, False, (*spec.DEFAULT_CAPABILITIES, "CAP_NET_ADMIN", "CAP_SYS_TIME")),
    ({"drop": ["NET_RAW", "CAP_MKNOD"]}, False,
     tuple(c for c in spec.DEFAULT_CAPABILITIES if c not in ("CAP_NET_RAW", "CAP_MKNOD"))),
    ({"drop": ["ALL"]}, True, security.ALL_CAPABILITIES),
], ids=["defaults", "drop-all", "drop-all-add-one", "add", "drop", "privileged"])
def test_capabilities(rootfs, caps, privileged, expected):
    pod, container = _pod({"capabilities": caps, "privileged": privileged})
    assert security.container_security(pod=pod, container=container, image_user_text="",
                                       rootfs=rootfs).capabilities == expected


def _config(sc: dict, rootfs: Path) -> dict:
    pod, container = _pod(sc)
    oci = spec.runtime_spec(spec.ContainerSpecInput(
        rootfs="/r", argv=("sh",), env=(), cwd="/", netns="/n", ipcns="/i", utsns="/u", shm="/s", cgroups_path="/c"))
    security.container_security(pod=pod, container=container, image_user_text="", rootfs=rootfs).apply_to(oci)
    return oci


def test_applied_to_the_config(rootfs):
    plain = _config({"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}, rootfs)
    assert plain["process"]["noNewPrivileges"] is True and plain["root"]["readonly"] is True
    assert plain["linux"]["maskedPaths"] == list(spec.DEFAULT_MASKED_PATHS)
    assert next(m for m in plain["mounts"] if m["destination"] == "/sys")["options"][-1] == "ro"
    privileged = _config({"privileged": True, "allowPrivilegeEscalation": False}, rootfs)
    assert privileged["process"]["noNewPrivileges"] is False
    assert privileged["linux"]["maskedPaths"] == [] and privileged["linux"]["readonlyPaths"] == []
    assert "ro" not in next(m for m in privileged["mounts"] if m["destination"] == "/sys")["options"]
    assert privileged["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert _config({"procMount": "Unmasked"}, rootfs)["linux"]["maskedPaths"] == []


@pytest.mark.parametrize(("res", "expected"), [
    ({}, {"cpu": {"shares": 2}}),
    ({"requests": {"cpu": "250m"}}, {"cpu": {"shares": 256}}),
    ({"requests": {"cpu": "1m"}}, {"cpu": {"shares": 2}}),
    ({"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "2"}},
     {"cpu": {"shares": 2048, "quota": 200000, "period": 100000}, "memory": {"limit": 1 << 30}}),
    ({"limits": {"cpu": "5m"}, "requests": {"cpu": "5m"}}, {"cpu": {"shares": 5, "quota": 1000, "period": 100000}}),
], ids=["best-effort", "request", "tiny-request", "limits", "min-quota"])
def test_linux_resources(res, expected):
    assert resources.linux_resources({"resources": res}) == expected


@pytest.mark.parametrize(("containers", "qos", "adj"), [
    ([{}], "BestEffort", 1000),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed", -997),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed", -997),
    ([{"requests": {"memory": "1Gi"}}], "Burstable", 1000 - 1000 * (1 << 30) // (4 << 30)),
    ([{"requests": {"memory": "4Gi"}}], "Burstable", 3),
    ([{"requests": {"cpu": "1m"}}], "Burstable", 999),
    ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable", 999),
], ids=["best-effort", "limits-only", "equal", "burstable", "burstable-floor", "burstable-ceiling", "mixed"])
def test_qos_and_oom_score(containers, qos, adj):
    pod = {"spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)]}}
    assert resources.qos_class(pod) == qos
    assert resources.oom_score_adj(pod, pod["spec"]["containers"][0], 4 << 30) == adj


@pytest.mark.parametrize(("profile", "privileged", "expected"), [
    (None, False, None),
    ({"type": "Unconfined"}, False, None),
    ({"type": "RuntimeDefault"}, True, None),
    ({"type": "RuntimeDefault"}, False, "SCMP_ACT_ERRNO"),
], ids=["kubelet-default-unconfined", "unconfined", "privileged-unconfined", "runtime-default"])
def test_seccomp_choice(rootfs, profile, privileged, expected):
    pod, container = _pod({"seccompProfile": profile, "privileged": privileged} if profile else {})
    s = security.container_security(pod=pod, container=container, image_user_text="", rootfs=rootfs)
    assert (s.seccomp or {}).get("defaultAction") == expected


def test_runtime_default_follows_the_capabilities(rootfs):
    def rules(caps: dict) -> list[dict]:
        pod, container = _pod({"seccompProfile": {"type": "RuntimeDefault"}, "capabilities": caps})
        s = security.container_security(pod=pod, container=container, image_user_text="", rootfs=rootfs)
        assert s.seccomp is not None
        return s.seccomp["syscalls"]
    plain = rules({})
    names = {n for r in plain if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r for n in r["names"]}
    assert {"read", "write", "chroot", "arch_prctl"} <= names and not {"mount", "unshare", "reboot"} & names
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in plain
    admin = rules({"add": ["SYS_ADMIN"]})
    assert any("mount" in r["names"] and "unshare" in r["names"] for r in admin)
    assert not any(r.get("errnoRet") for r in admin)  # clone3 allowed with CAP_SYS_ADMIN


def test_localhost_profile(rootfs, tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/audit.json").write_text('{"defaultAction": "SCMP_ACT_LOG"}')
    pod, container = _pod({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}})
    s = security.container_security(pod=pod, container=container, image_user_text="", rootfs=rootfs,
                                    seccomp_root=tmp_path)
    assert s.seccomp == {"defaultAction": "SCMP_ACT_LOG"}
    pod, container = _pod({"seccompProfile": {"type": "Localhost", "localhostProfile": "missing.json"}})
    with pytest.raises(security.SecurityContextError, match="failed to load seccomp profile"):
        security.container_security(pod=pod, container=container, image_user_text="", rootfs=rootfs,
                                    seccomp_root=tmp_path)
