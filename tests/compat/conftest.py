"""Real kubectl against the API server process: one fresh discovery cache per test."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl")


class Kubectl:
    """kubectl with a kubeconfig for the server (the admin's, or another user's)."""

    def __init__(self, kubeconfig: Path, cache_dir: Path, workdir: Path, binary: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.base = [binary or KUBECTL or "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache_dir),
                     "--request-timeout", "20s"]
        self.workdir = workdir

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=self.workdir)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*self.base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=self.workdir)

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path


@pytest.fixture
def kubectl(apiserver_process, tmp_path: Path) -> Kubectl:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    return Kubectl(apiserver_process.kubeconfig(tmp_path / "kubeconfig"), tmp_path / "kube-cache", tmp_path)


def kubectl_versions() -> list[Path]:
    """Every kubectl installed next to `kubectl` as `kubectl.<minor version>` (1.27 ... 1.33)."""
    if KUBECTL is None:
        return []
    here = Path(KUBECTL).resolve().parent
    return sorted(here.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))


def rows(output: str) -> list[list[str]]:
    """kubectl's table output split into cells (columns are 3+ spaces apart)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]
