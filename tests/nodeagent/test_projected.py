"""Projected volumes without root: what files a volume holds, kubelet's atomic writer on disk,
and when a token is refreshed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.nodeagent import podsync
from services.nodeagent.projected import IssuedToken, TokenSource, VolumeError, projected_volumes, write_atomic
from services.nodeagent.runtime import Mount
from services.nodeagent.volumefiles import VolumeInputs, projected_files

KUBE_API_ACCESS = {"name": "kube-api-access-abcde", "projected": {"sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                   "fieldPath": "metadata.namespace"}}]}},
], "defaultMode": 420}}
POD = {"metadata": {"name": "p", "namespace": "shop", "uid": "u1"},
       "spec": {"serviceAccountName": "default", "volumes": [KUBE_API_ACCESS, {"name": "scratch", "emptyDir": {}}],
                "containers": [{"name": "c", "image": "busybox", "volumeMounts": [
                    {"name": "kube-api-access-abcde", "readOnly": True,
                     "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
                    {"name": "scratch", "mountPath": "/scratch"}]}]}}
CA_MAP = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "PEM"}}
TOKEN = TokenSource("", 3607, "token")


def test_the_kube_api_access_volume_holds_token_ca_and_namespace() -> None:
    files = projected_files(POD, projected_volumes(POD)["kube-api-access-abcde"],
                            VolumeInputs(tokens={TOKEN: "jwt"}, configmaps={"kube-root-ca.crt": CA_MAP}))
    assert files == {"token": (b"jwt", 0o644), "ca.crt": (b"PEM", 0o644), "namespace": (b"shop", 0o644)}


@pytest.mark.parametrize(("configmaps", "message"), [
    ({"kube-root-ca.crt": None}, 'configmap "kube-root-ca.crt" not found'),
    ({"kube-root-ca.crt": {"data": {}}}, "configmap references non-existent config key: ca.crt"),
], ids=["missing", "no-key"])
def test_a_missing_configmap_fails_the_volume(configmaps, message) -> None:
    with pytest.raises(VolumeError, match=message):
        projected_files(POD, projected_volumes(POD)["kube-api-access-abcde"],
                        VolumeInputs(tokens={TOKEN: "jwt"}, configmaps=configmaps))


def test_the_atomic_writer_swaps_a_data_link(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"token": (b"one", 0o644), "ca.crt": (b"CA", 0o600)})
    first = os.readlink(target / "..data")
    assert first.startswith("..") and (target / first).is_dir()
    assert os.readlink(target / "token") == "..data/token"
    assert (target / "token").read_bytes() == b"one"
    assert (target / "ca.crt").stat().st_mode & 0o777 == 0o600
    assert not write_atomic(target, {"token": (b"one", 0o644), "ca.crt": (b"CA", 0o600)})  # unchanged
    assert write_atomic(target, {"token": (b"two", 0o644)})
    assert (target / "token").read_bytes() == b"two"
    assert not (target / first).exists() and not (target / "ca.crt").exists()
    assert sorted(p for p in os.listdir(target) if not p.startswith("..")) == ["token"]
    with pytest.raises(VolumeError):
        write_atomic(target, {"../escape": (b"x", 0o644)})


@pytest.mark.parametrize(("now", "jitter", "refresh"), [
    (1000 + 0.79 * 3607, 0, False),
    (1000 + 0.81 * 3607, 0, True),
    (1000 + 0.798 * 3607, 10, True),  # the jitter brings it forward
], ids=["before-80-percent", "after-80-percent", "jitter"])
def test_a_token_is_refreshed_at_80_percent_of_its_life(now, jitter, refresh) -> None:
    assert IssuedToken("t", expires=1000 + 3607, seconds=3607).needs_refresh(now, jitter) is refresh


def test_a_long_lived_token_is_refreshed_after_a_day() -> None:
    week = 7 * 24 * 3600
    assert not IssuedToken("t", expires=week, seconds=week).needs_refresh(23 * 3600, 0)
    assert IssuedToken("t", expires=week, seconds=week).needs_refresh(24 * 3600 + 1, 0)


def test_the_plan_sets_volumes_up_before_containers_and_comes_back_for_the_token() -> None:
    plan = podsync.plan_pod(POD, [], [], now=0.0, backoff=podsync.Backoff())
    kinds = [type(s).__name__ for s in plan.steps]
    assert kinds == ["CreateSandbox", "SetUpVolumes", "StartContainers", "Report", "Requeue"]
    start = plan.steps[2]
    assert isinstance(start, podsync.StartContainers)
    assert start.containers[0].mounts == (Mount("/var/run/secrets/kubernetes.io/serviceaccount", read_only=True,
                                                volume="kube-api-access-abcde"),
                                          Mount("/scratch", volume="scratch"))
    requeue = plan.steps[-1]
    assert isinstance(requeue, podsync.Requeue) and requeue.seconds == podsync.VOLUME_RESYNC_SECONDS
