"""Unmodified kubectl with DaemonSets: kube's validation messages as kubectl prints them, and
ControllerRevision `data` written byte for byte as kubectl writes its own patch of the
DaemonSet (`rollout undo` compares the two as bytes before it patches)."""
from __future__ import annotations

import json

from services.daemonset import revisions as rev
from tests.compat.conftest import Kubectl

DS = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
      "spec": {"selector": {"matchLabels": {"app": "agent"}},
               "template": {"metadata": {"labels": {"app": "agent"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                                     "command": ["sleep", "3600"]}]}}}}


def test_invalid_update_strategy_is_refused_in_kubes_words(kubectl: Kubectl) -> None:
    bad = json.loads(json.dumps(DS))
    bad["metadata"]["name"] = "bad"
    bad["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    out = kubectl("apply", "-f", str(kubectl.write("bad.json", json.dumps(bad))), check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        'The DaemonSet "bad" is invalid: spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: '
        'intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable is non-zero')


def test_rollout_undo_recognises_the_current_template_in_a_revision(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(kubectl.write("ds.json", json.dumps(DS))))
    ds = kubectl.json("get", "ds", "agent")
    hash_ = rev.template_hash(ds["spec"]["template"])
    kubectl("create", "-f", str(kubectl.write("rev.json", json.dumps(rev.new_revision(ds, hash_, 1)))))
    out = kubectl("rollout", "undo", "ds/agent", "--to-revision=1")
    assert out.stdout.strip() == ("daemonset.apps/agent skipped rollback (current template already "
                                  "matches revision 1)")
    history = kubectl("rollout", "history", "ds/agent", "--revision=1").stdout
    assert "busybox:1.36" in history and "Pod Template:" in history
