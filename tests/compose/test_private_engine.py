"""A private dockerd whose run died without stopping it: the next start (or
`cleanup_after_crash`) ends it and removes what it made on the host, its networks' bridges too."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cluster import dockerengine


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dockerd") is None, reason="needs root and dockerd")
def test_a_crashed_runs_engine_is_ended_and_its_bridges_removed(tmp_path: Path):
    cache = tmp_path / "cache"
    engine = dockerengine.PrivateEngine.start(cache=cache)
    env = {**os.environ, **engine.env}
    net = subprocess.run(["docker", "network", "create", "--subnet", "10.253.77.0/24", "mc-crash-test"],
                         capture_output=True, text=True, check=True, env=env).stdout.strip()
    bridge = f"br-{net[:12]}"
    assert Path(f"/sys/class/net/{bridge}").exists()
    # the run dies here: no stop(); only the record is left
    assert dockerengine.cleanup_after_crash(cache) is True
    assert not Path(f"/sys/class/net/{bridge}").exists(), "the dead run's bridge is left on the host"
    assert not Path(f"/proc/{engine.pid}").exists() or not dockerengine._is_our_dockerd(engine.pid, engine.root)
    assert not engine.root.exists()
    with open("/proc/self/mounts") as f:
        assert str(engine.root) not in f.read()
