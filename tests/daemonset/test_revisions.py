"""A DaemonSet's revisions: hash, kube's patch as `data`, which revision is current, history."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from services.daemonset import revisions as rev
from tests.daemonset.objects import daemonset


def test_data_is_kubes_patch_with_sorted_keys() -> None:
    ds = daemonset()
    data = rev.revision_data(ds)
    assert json.dumps(data, separators=(",", ":")) == (
        '{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,'
        '"labels":{"app":"agent"}},"spec":{"containers":[{"image":"busybox",'
        '"imagePullPolicy":"Always","name":"c","resources":{},'
        '"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],'
        '"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler",'
        '"securityContext":{},"terminationGracePeriodSeconds":30}}}}')
    assert "$patch" not in ds["spec"]["template"]  # the DaemonSet is not changed


def test_new_revision() -> None:
    ds = daemonset()
    ds["metadata"]["annotations"]["kubernetes.io/change-cause"] = "image 1"
    hash_ = rev.template_hash(ds["spec"]["template"])
    got = rev.new_revision(ds, hash_, 3)
    assert got["metadata"]["name"] == f"agent-{hash_}"
    assert got["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": hash_}
    assert got["metadata"]["annotations"]["kubernetes.io/change-cause"] == "image 1"
    assert got["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert got["revision"] == 3 and rev.matches(ds, got)
    assert set(hash_) <= set(rev.SAFE_ALPHABET)


def test_hash_follows_template_and_collisions() -> None:
    ds = daemonset()
    other = copy.deepcopy(ds)
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    base = rev.template_hash(ds["spec"]["template"])
    assert base == rev.template_hash(copy.deepcopy(ds["spec"]["template"]))
    assert base != rev.template_hash(other["spec"]["template"])
    assert base != rev.template_hash(ds["spec"]["template"], 1)


def _rev(name: str, number: int, data: Any = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {rev.HASH_LABEL: name}}, "revision": number,
            "data": data or {}}


def test_current_and_next_number() -> None:
    ds = daemonset()
    current = _rev("cur", 1, rev.revision_data(ds))
    olds = [_rev("r2", 2), _rev("r5", 5)]
    got_current, got_old = rev.split_current(ds, [olds[0], current, olds[1]])
    assert got_current == [current] and got_old == olds
    assert rev.next_number(got_old) == 6  # an undo makes the old template the newest revision
    assert rev.keep_of([_rev("x", 2), _rev("y", 4)])["metadata"]["name"] == "y"


@pytest.mark.parametrize(("limit", "live", "wanted"), [
    (10, set(), []),
    (2, set(), ["r1", "r2"]),
    (2, {"r1"}, ["r2", "r3"]),
    (0, {"r4"}, ["r1", "r2", "r3"]),
], ids=["within-limit", "oldest-first", "live-kept", "zero-keeps-live"])
def test_history_to_delete(limit: int, live: set[str], wanted: list[str]) -> None:
    old = [_rev(f"r{n}", n) for n in (3, 1, 4, 2)]
    assert [r["metadata"]["name"] for r in rev.history_to_delete(old, limit, live)] == wanted
