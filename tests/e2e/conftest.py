"""One real cluster for the whole e2e package: bringing one up takes most of a minute, and
every module's tests use their own names in it."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.e2e.harness import SEEDED_KUBECONFIG, Cluster, leftovers


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"), home=tmp_path_factory.mktemp("home"))
    try:
        c.up()
        yield c
    finally:
        # as after a crash: the launcher dies with SIGKILL, then `down` must clean up alone
        state = json.loads((c.state / "cluster.json").read_text()) if (c.state / "cluster.json").exists() else {}
        if state.get("supervisor_pid"):
            try:
                os.kill(state["supervisor_pid"], 9)
            except ProcessLookupError:
                pass
        c.cluster("down", timeout=120)
        c.cluster("down", timeout=120)  # idempotent
        assert leftovers() == []
        # exactly our context went from the user's kubeconfig, and the current context with it
        assert yaml.safe_load(c.user_kubeconfig.read_text()) == \
            {k: v for k, v in SEEDED_KUBECONFIG.items() if k != "current-context"}
