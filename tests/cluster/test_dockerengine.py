"""A private engine's teardown after a run that died (cluster/dockerengine.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cluster import dockerengine


def test_a_crashed_runs_directory_and_record_are_removed(tmp_path: Path):
    cache, root = tmp_path / "cache", tmp_path / "mc-dockerd-crashed"
    cache.mkdir()
    (root / "data").mkdir(parents=True)
    (cache / "private-engine.json").write_text(json.dumps({"root": str(root), "pid": 0, "bridges": []}))
    assert dockerengine.cleanup_after_crash(cache) is True
    assert not root.exists() and not (cache / "private-engine.json").exists()
    assert dockerengine.cleanup_after_crash(cache) is False  # idempotent


def test_a_process_that_is_not_our_dockerd_is_never_signalled(tmp_path: Path):
    cache, root = tmp_path / "cache", tmp_path / "mc-dockerd-other"
    cache.mkdir()
    root.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (cache / "private-engine.json").write_text(json.dumps({"root": str(root), "pid": other.pid}))
        dockerengine.cleanup_after_crash(cache)
        assert other.poll() is None, "a process that is not the recorded dockerd was ended"
    finally:
        other.kill()
        other.wait()


def test_a_record_of_a_directory_not_ours_leaves_it_alone(tmp_path: Path):
    cache, elsewhere = tmp_path / "cache", tmp_path / "precious"
    cache.mkdir()
    elsewhere.mkdir()
    (cache / "private-engine.json").write_text(json.dumps({"root": str(elsewhere), "pid": os.getpid()}))
    dockerengine.cleanup_after_crash(cache)
    assert elsewhere.exists()
