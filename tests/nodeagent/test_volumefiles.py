"""The node's volumes without root: which a pod gets, the files of the written ones, hostPath
checks, emptyDir, subPath mounts, as tables."""
from __future__ import annotations

import base64
import os
import socket
from pathlib import Path

import pytest

from services.nodeagent import podenv, podsync
from services.nodeagent.executor import mount_paths
from services.nodeagent.projected import TokenSource, VolumeError
from services.nodeagent.runtime import Mount
from services.nodeagent.volumefiles import NodeVolume, VolumeInputs, node_volumes, references, volume_files
from services.nodeagent.volumes import check_host_path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


POD = {"metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web"},
                    "annotations": {"build": "7"}},
       "spec": {"nodeName": "n1", "containers": [
           {"name": "app", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]}}
CM = {"metadata": {"name": "cfg"}, "data": {"app.conf": "port=80", "level": "debug"},
      "binaryData": {"logo.bin": b64(b"\x00\xff")}}
SECRET = {"metadata": {"name": "creds"}, "data": {"user": b64(b"admin"), "pass": b64(b"s3cret")}}
INPUTS = VolumeInputs(tokens={TokenSource("vault", 600, "vault-token"): "jwt"},
                      configmaps={"cfg": CM, "gone": None}, secrets={"creds": SECRET, "nope": None},
                      allocatable={"cpu": "4", "memory": "8Gi"})


def files(kind: str, source: dict) -> dict:
    return volume_files(POD, NodeVolume("v", kind, source), INPUTS)


@pytest.mark.parametrize(("kind", "source", "expected"), [
    ("configMap", {"name": "cfg"},
     {"app.conf": (b"port=80", 0o644), "level": (b"debug", 0o644), "logo.bin": (b"\x00\xff", 0o644)}),
    ("configMap", {"name": "cfg", "defaultMode": 0o400, "items": [
        {"key": "app.conf", "path": "conf/app.conf"}, {"key": "level", "path": "lvl", "mode": 0o600}]},
     {"conf/app.conf": (b"port=80", 0o400), "lvl": (b"debug", 0o600)}),
    ("configMap", {"name": "gone", "optional": True}, {}),
    ("configMap", {"name": "cfg", "optional": True, "items": [{"key": "nope", "path": "x"}]}, {}),
    ("secret", {"secretName": "creds"}, {"user": (b"admin", 0o644), "pass": (b"s3cret", 0o644)}),
    ("secret", {"secretName": "creds", "defaultMode": 0o440, "items": [{"key": "pass", "path": "p"}]},
     {"p": (b"s3cret", 0o440)}),
    ("secret", {"secretName": "nope", "optional": True}, {}),
    ("downwardAPI", {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}}]},
     {"labels": (b'app="web"', 0o644), "app": (b"web", 0o644), "mem": (b"64", 0o644), "cpu": (b"4000", 0o644)}),
    ("projected", {"defaultMode": 0o444, "sources": [
        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "vault-token"}},
        {"configMap": {"name": "cfg", "items": [{"key": "level", "path": "level"}]}},
        {"secret": {"name": "creds", "items": [{"key": "user", "path": "user", "mode": 0o400}]}},
        {"downwardAPI": {"items": [{"path": "build", "fieldRef": {"fieldPath": "metadata.annotations['build']"}}]}},
        {"secret": {"name": "nope", "optional": True}}]},
     {"vault-token": (b"jwt", 0o444), "level": (b"debug", 0o444), "user": (b"admin", 0o400),
      "build": (b"7", 0o444)}),
], ids=["configmap-all-keys", "configmap-items-modes", "configmap-optional-missing", "configmap-optional-key",
        "secret-all-keys", "secret-items", "secret-optional-missing", "downward-api", "projected-all-sources"])
def test_volume_files(kind: str, source: dict, expected: dict) -> None:
    assert files(kind, source) == expected


@pytest.mark.parametrize(("kind", "source", "message"), [
    ("configMap", {"name": "gone"}, 'configmap "gone" not found'),
    ("configMap", {"name": "cfg", "items": [{"key": "nope", "path": "x"}]},
     "configmap references non-existent config key: nope"),
    ("secret", {"secretName": "nope"}, 'secret "nope" not found'),
    ("secret", {"secretName": "creds", "items": [{"key": "nope", "path": "x"}]},
     "references non-existent secret key: nope"),
    ("projected", {"sources": [{"secret": {"name": "nope"}}]}, 'secret "nope" not found'),
    ("downwardAPI", {"items": [{"path": "x", "resourceFieldRef": {"containerName": "zz", "resource": "limits.cpu"}}]},
     "container zz not found"),
], ids=["configmap-missing", "configmap-key", "secret-missing", "secret-key", "projected-secret", "no-container"])
def test_volume_errors(kind: str, source: dict, message: str) -> None:
    with pytest.raises(VolumeError) as info:
        files(kind, source)
    assert str(info.value) == message


def test_node_volumes_and_references() -> None:
    pod = {"spec": {"volumes": [
        {"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/tmp"}},
        {"name": "c", "configMap": {"name": "cfg"}}, {"name": "d", "secret": {"secretName": "creds"}},
        {"name": "e", "persistentVolumeClaim": {"claimName": "x"}},
        {"name": "f", "projected": {"sources": [{"configMap": {"name": "m"}}, {"secret": {"name": "s"}}]}}]}}
    vols = node_volumes(pod)
    assert [(v.name, v.kind) for v in vols] == [("a", "emptyDir"), ("b", "hostPath"), ("c", "configMap"),
                                                ("d", "secret"), ("f", "projected")]
    assert references(vols[4]).configmaps == {"m"} and references(vols[4]).secrets == {"s"}
    assert references(vols[3]).secrets == {"creds"}
    assert podsync.node_volume_names(pod) == {"a", "b", "c", "d", "f"}
    assert podsync.has_written_volumes(pod)
    assert not podsync.has_written_volumes({"spec": {"volumes": [{"name": "a", "emptyDir": {}}]}})


def test_host_path_types(tmp_path: Path) -> None:
    d, f = tmp_path / "dir", tmp_path / "file"
    d.mkdir()
    f.write_text("x")
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        for path, kind in ((d, "Directory"), (f, "File"), (sock_path, "Socket"), ("/dev/null", "CharDevice"),
                           (d, ""), (f, "")):
            check_host_path(str(path), kind)
    for path, kind, message in (
            (f, "Directory", f"hostPath type check failed: {f} is not a directory"),
            (d, "File", f"hostPath type check failed: {d} is not a file"),
            (f, "Socket", f"hostPath type check failed: {f} is not a socket file"),
            (f, "CharDevice", f"hostPath type check failed: {f} is not a character device"),
            (f, "BlockDevice", f"hostPath type check failed: {f} is not a block device"),
            (tmp_path / "missing", "Directory", f"hostPath type check failed: {tmp_path}/missing is not a directory"),
            (d, "Weird", "Weird is an invalid volume type"),
            (f, "DirectoryOrCreate", f"hostPath type check failed: {f} is not a directory")):
        with pytest.raises(VolumeError) as info:
            check_host_path(str(path), kind)
        assert str(info.value) == message
    check_host_path(str(tmp_path / "made" / "deep"), "DirectoryOrCreate")
    assert (tmp_path / "made" / "deep").is_dir()
    check_host_path(str(tmp_path / "untyped"), "")
    assert (tmp_path / "untyped").is_dir()
    check_host_path(str(tmp_path / "new-file"), "FileOrCreate")
    assert (tmp_path / "new-file").is_file() and (tmp_path / "new-file").read_bytes() == b""
    with pytest.raises(VolumeError) as info:
        check_host_path(str(tmp_path / "no" / "file"), "FileOrCreate")
    assert str(info.value) == f"open {tmp_path}/no/file: no such file or directory"


def test_sub_paths(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    (vol / "..2024").mkdir(parents=True)
    (vol / "..2024" / "app.conf").write_text("port=80")
    os.symlink("..2024", vol / "..data")
    os.symlink("..data/app.conf", vol / "app.conf")
    os.symlink("/etc", vol / "escape")
    dirs = {"cfg": str(vol)}
    got = mount_paths((Mount("/etc/app.conf", volume="cfg", sub_path="app.conf"),
                       Mount("/data", volume="cfg", sub_path="$(POD)/logs", sub_path_expr=True),
                       Mount("/all", volume="cfg", read_only=True),
                       Mount("/other", volume="not-set-up")), dirs, {"POD": "web"})
    assert [(m.container_path, m.host_path) for m in got] == [
        ("/etc/app.conf", str(vol / "..2024" / "app.conf")),  # through the symlinks, as kubelet binds it
        ("/data", str(vol / "web" / "logs")), ("/all", str(vol))]
    assert (vol / "web" / "logs").is_dir()  # a missing subPath is made
    for bad in (Mount("/x", volume="cfg", sub_path="escape"), Mount("/x", volume="cfg", sub_path="../up")):
        with pytest.raises(podenv.ContainerConfigError):
            mount_paths((bad,), dirs, {})


def test_mounts_of_every_node_volume_kind_reach_the_container_config() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {
        "volumes": [{"name": "cache", "emptyDir": {"medium": "Memory"}}, {"name": "cfg", "configMap": {"name": "c"}},
                    {"name": "claim", "persistentVolumeClaim": {"claimName": "x"}}],
        "containers": [{"name": "app", "image": "nginx", "volumeMounts": [
            {"name": "cache", "mountPath": "/cache"}, {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "conf"},
            {"name": "claim", "mountPath": "/data"}]}]}}
    plan = podsync.plan_pod(pod, [], [], now=0.0, backoff=podsync.Backoff())
    (start,) = [s for s in plan.steps if isinstance(s, podsync.StartContainers)]
    assert start.containers[0].mounts == (Mount("/cache", volume="cache"),
                                          Mount("/etc/app.conf", volume="cfg", sub_path="conf"))
