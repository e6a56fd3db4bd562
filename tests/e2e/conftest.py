"""One real cluster for the whole e2e package: bringing one up takes most of a minute, and
every module's tests use their own names in it."""
from __future__ import annotations

import json
import os

import pytest

from tests.e2e.harness import Cluster, leftovers


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
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
