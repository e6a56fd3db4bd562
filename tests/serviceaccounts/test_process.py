"""The ServiceAccount controllers as a process: without --root-ca-file it publishes the CA its
kubeconfig trusts the API server with, as kube-controller-manager does; a file that holds no
certificate is refused at start."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from tests.conftest import ROOT
from tests.support.controllers import ControllerProcess, until


async def test_the_process_publishes_its_kubeconfigs_ca(apiserver_process, tmp_path: Path) -> None:
    proc = ControllerProcess("services.serviceaccounts", apiserver_process,
                             log_path=tmp_path / "serviceaccounts.log").start()
    try:
        async with ApiClient(apiserver_process.config) as client:
            await proc.wait_ready()

            async def made(rt: R.ResourceType, name: str, namespace: str):
                try:
                    return await client.get(rt, name, namespace)
                except ApiError as exc:
                    if exc.code == 404:
                        return None
                    raise
            cm = await until(lambda: made(R.CONFIGMAPS, "kube-root-ca.crt", "default"))
            assert cm["data"]["ca.crt"] == Path(apiserver_process.pki.ca_file).read_text()
            assert await until(lambda: made(R.SERVICEACCOUNTS, "default", "kube-system"))
        assert await proc.terminate() == 0
    finally:
        proc.kill()


def test_a_root_ca_file_without_a_certificate_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.crt"
    bogus.write_text("not a certificate")
    res = subprocess.run([sys.executable, "-m", "services.serviceaccounts", "--root-ca-file", str(bogus)],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "holds no PEM certificate" in res.stderr
