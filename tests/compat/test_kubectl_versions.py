"""Every installed kubectl version (1.27 ... 1.33) applies against the API server: create,
update (client-side apply's three-way patch) and server-side apply, and its field validation
reaches the server. kubectl up to 1.28 reads the OpenAPI v2 document in protobuf before it
sends anything; newer ones read OpenAPI v3."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.conftest import Kubectl, kubectl_versions

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: %(replicas)d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:%(tag)s
        ports: [{containerPort: 80}]
"""

VERSIONS = kubectl_versions()


@pytest.fixture(params=VERSIONS or [None], ids=[p.name for p in VERSIONS] or ["none"])
def versioned(request, apiserver_process, tmp_path: Path) -> Kubectl:
    if request.param is None:
        pytest.skip("no kubectl.1.* is installed next to kubectl")
    return Kubectl(apiserver_process.kubeconfig(tmp_path / "kubeconfig"), tmp_path / "kube-cache",
                   tmp_path, binary=str(request.param))


def test_apply_create_update_and_server_side(versioned: Kubectl):
    path = versioned.write("web.yaml", DEPLOYMENT % {"replicas": 2, "tag": "1"})
    assert "deployment.apps/web created" in versioned("apply", "-f", str(path)).stdout
    versioned.write("web.yaml", DEPLOYMENT % {"replicas": 3, "tag": "2"})
    assert "deployment.apps/web configured" in versioned("apply", "-f", str(path)).stdout
    got = versioned.json("get", "deploy", "web")
    assert got["spec"]["replicas"] == 3
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"

    versioned.write("web.yaml", DEPLOYMENT % {"replicas": 4, "tag": "2"})
    out = versioned("apply", "--server-side", "--force-conflicts", "-f", str(path)).stdout
    assert "deployment.apps/web serverside-applied" in out
    assert versioned.json("get", "deploy", "web")["spec"]["replicas"] == 4


def test_apply_with_an_unknown_field_is_refused_by_the_server(versioned: Kubectl):
    text = DEPLOYMENT % {"replicas": 1, "tag": "1"}
    path = versioned.write("bad.yaml", text.replace("  replicas: 1\n", "  replicas: 1\n  bogus: 1\n"))
    proc = versioned("apply", "-f", str(path), check=False)
    assert proc.returncode != 0
    assert 'strict decoding error: unknown field "spec.bogus"' in proc.stderr
