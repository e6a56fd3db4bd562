"""The OCI runtime config and the small pure parts of the OCI runtime: table tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.nodeagent.oci import mounts, spec
from services.nodeagent.oci.image import ImageConfig
from services.nodeagent.oci.runc import last_error
from services.nodeagent.ociruntime import lookup_executable, resolve_in_root

NGINX = ImageConfig(entrypoint=("/docker-entrypoint.sh",), cmd=("nginx", "-g", "daemon off;"),
                    env=("PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.22.1"), working_dir="/srv")


@pytest.mark.parametrize(("image", "command", "args", "expected"), [
    (NGINX, None, None, ("/docker-entrypoint.sh", "nginx", "-g", "daemon off;")),
    (NGINX, None, ["nginx", "-T"], ("/docker-entrypoint.sh", "nginx", "-T")),
    (NGINX, ["sh"], None, ("sh",)),
    (NGINX, ["sh", "-c"], ["echo hi"], ("sh", "-c", "echo hi")),
    (ImageConfig(cmd=("sh",)), None, [], ("sh",)),
    (ImageConfig(entrypoint=("/agnhost",)), None, ["netexec"], ("/agnhost", "netexec")),
], ids=["image-entrypoint-and-cmd", "args-replace-cmd", "command-drops-cmd", "command-and-args", "empty-args-keep-cmd",
        "entrypoint-plus-args"])
def test_process_args(image, command, args, expected):
    assert spec.process_args(image, command, args) == expected


def test_nothing_to_run():
    with pytest.raises(spec.ProcessArgsError, match="no command specified"):
        spec.process_args(ImageConfig(), None, None)


@pytest.mark.parametrize(("image_env", "env", "expected"), [
    ((), {}, ("PATH=" + spec.DEFAULT_PATH, "HOSTNAME=web")),
    (("PATH=/bin", "A=1"), {"A": "2", "B": "x=y"}, ("PATH=/bin", "A=2", "HOSTNAME=web", "B=x=y")),
    (("HOSTNAME=image",), {}, ("HOSTNAME=web", "PATH=" + spec.DEFAULT_PATH)),
], ids=["defaults", "container-wins-in-place", "hostname-is-the-pods"])
def test_process_env(image_env, env, expected):
    assert spec.process_env(ImageConfig(env=image_env), hostname="web", env=env) == expected


@pytest.mark.parametrize(("container", "expected"), [(None, "/srv"), ("/data", "/data")], ids=["image", "container"])
def test_working_dir(container, expected):
    assert spec.working_dir(NGINX, container) == expected
    assert spec.working_dir(ImageConfig(), None) == "/"


def _input(**kw) -> spec.ContainerSpecInput:
    base = dict(rootfs="/b/rootfs", argv=("sh",), env=("PATH=/bin",), cwd="/", netns="/run/netns/n",
                ipcns="/p/ns/ipc", utsns="/p/ns/uts", shm="/p/ns/shm", cgroups_path="/minicluster/n/podu/c")
    base.update(kw)
    return spec.ContainerSpecInput(**base)


def test_runtime_spec_joins_the_pods_namespaces_and_keeps_its_own_pid_and_mount():
    config = spec.runtime_spec(_input())
    assert config["linux"]["namespaces"] == [
        {"type": "pid"}, {"type": "ipc", "path": "/p/ns/ipc"}, {"type": "uts", "path": "/p/ns/uts"},
        {"type": "mount"}, {"type": "network", "path": "/run/netns/n"}]
    assert "hostname" not in config  # runc refuses one in a joined UTS namespace
    assert config["root"] == {"path": "/b/rootfs", "readonly": False}
    assert config["process"]["capabilities"]["bounding"] == list(spec.DEFAULT_CAPABILITIES)
    assert config["linux"]["cgroupsPath"] == "/minicluster/n/podu/c"
    shared = spec.runtime_spec(_input(pidns="/proc/42/ns/pid"))
    assert shared["linux"]["namespaces"][0] == {"type": "pid", "path": "/proc/42/ns/pid"}


def test_runtime_spec_mounts_in_order():
    config = spec.runtime_spec(_input(pod_files=[spec.BindMount("/p/hosts", "/etc/hosts")],
                                      volumes=[spec.BindMount("/v/data", "/data", read_only=True)]))
    destinations = [m["destination"] for m in config["mounts"]]
    assert destinations == ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/dev/shm",
                            "/etc/hosts", "/data"]
    assert config["mounts"][-1] == {"destination": "/data", "type": "bind", "source": "/v/data",
                                    "options": ["rbind", "rprivate", "ro"]}
    assert config["mounts"][6]["source"] == "/p/ns/shm"


def test_overlay_options_put_the_top_layer_first():
    assert mounts.overlay_options([Path("/l/1"), Path("/l/2")], Path("/c/u"), Path("/c/w")) == \
        "lowerdir=/l/2:/l/1,upperdir=/c/u,workdir=/c/w"
    with pytest.raises(ValueError):
        mounts.overlay_options([], Path("/u"), Path("/w"))


@pytest.mark.parametrize(("log", "expected"), [
    ('{"level":"info","msg":"x"}\n{"level":"error","msg":"runc run failed: boom"}\n', "runc run failed: boom"),
    ("plain words\n", "plain words"),
    ("", ""),
], ids=["json-error", "not-json", "empty"])
def test_last_error(log, expected):
    assert last_error(log) == expected


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/busybox").write_text("#!\n")
    os.chmod(root / "usr/bin/busybox", 0o755)
    (root / "usr/bin/data").write_text("not executable")
    os.symlink("usr/bin", root / "bin")  # Debian's merged /usr: a relative link
    os.symlink("/usr/bin/busybox", root / "usr/bin/sh")  # absolute: resolved inside the rootfs
    os.symlink("/nowhere", root / "usr/bin/dangling")
    (root / "app").mkdir()
    return root


@pytest.mark.parametrize(("path", "expected"), [
    ("/bin/sh", "usr/bin/busybox"),
    ("usr/../usr/bin/sh", "usr/bin/busybox"),
    ("bin/../usr/bin/sh", None),  # .. after a link goes up from where the link points
    ("/../../usr/bin/busybox", "usr/bin/busybox"),
    ("/usr/bin/dangling", None),
    ("/missing", None),
], ids=["through-links", "dotdot", "dotdot-after-link", "dotdot-stops-at-root", "dangling", "missing"])
def test_resolve_in_root(rootfs: Path, path: str, expected: str | None):
    got = resolve_in_root(rootfs, path)
    assert (None if got is None else str(got.relative_to(rootfs))) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("sh", None),
    ("busybox", None),
    ("/bin/sh", None),
    ("nope", 'exec: "nope": executable file not found in $PATH'),
    ("data", 'exec: "data": executable file not found in $PATH'),
    ("/usr/bin/data", 'exec: "/usr/bin/data": permission denied'),
    ("/app", 'exec: "/app": permission denied'),
    ("./x", 'exec: "./x": stat ./x: no such file or directory'),
], ids=["in-path", "plain", "absolute", "missing", "not-executable-skipped", "not-executable", "directory",
        "relative-missing"])
def test_lookup_executable(rootfs: Path, name: str, expected: str | None):
    assert lookup_executable(rootfs, name, path_env="/usr/local/bin:/bin", cwd="/app") == expected
