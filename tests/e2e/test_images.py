"""Images in a real local cluster, seen with the real kubectl as on a connected cluster: `nginx`
(tag latest, so imagePullPolicy Always) is pulled from the cluster's registry at every start;
a present image with Never is used; a missing one with Never is ErrImageNeverPull; a name no
registry has is ErrImagePull, then ImagePullBackOff with the pull's error; Node status lists the
images."""
from __future__ import annotations

import json

from tests.e2e.harness import Cluster, run, wait_until

PODS = """
apiVersion: v1
kind: Pod
metadata: {name: img-always}
spec:
  containers: [{name: web, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: img-never-present}
spec:
  containers: [{name: c, image: "busybox:1.35", imagePullPolicy: Never, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: img-never-missing}
spec:
  containers: [{name: c, image: "example.invalid/missing:1", imagePullPolicy: Never}]
---
apiVersion: v1
kind: Pod
metadata: {name: img-nowhere}
spec:
  containers: [{name: c, image: "nobody/nothing:1"}]
"""


def _waiting(kc: list[str], name: str) -> dict:
    pod = json.loads(run(*kc, "get", "pod", name, "-o", "json").stdout)
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return (statuses[0].get("state") or {}).get("waiting") or {}


def _events(kc: list[str], name: str) -> list[tuple[str, str, str]]:
    items = json.loads(run(*kc, "get", "events", "--field-selector", f"involvedObject.name={name}",
                           "-o", "json").stdout)["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def test_pull_policies_and_pull_failures(cluster: Cluster, tmp_path) -> None:
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(PODS)
    run(*kc, "apply", "-f", str(manifest))
    out = run(*kc, "wait", "--for=condition=Ready", "pod/img-always", "pod/img-never-present",
              "--timeout=120s", timeout=130).stdout
    assert out.count("condition met") == 2

    always = json.loads(run(*kc, "get", "pod", "img-always", "-o", "json").stdout)
    assert always["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert always["status"]["containerStatuses"][0]["image"] == "docker.io/library/nginx:latest"
    assert always["status"]["containerStatuses"][0]["imageID"].startswith("docker.io/library/nginx@sha256:")
    reasons = {(t, r): m for t, r, m in _events(kc, "img-always")}
    assert reasons[("Normal", "Pulling")] == 'Pulling image "nginx"'
    assert reasons[("Normal", "Pulled")].startswith('Successfully pulled image "nginx" in ')
    assert ("Normal", "Pulled", 'Container image "busybox:1.35" already present on machine') in \
        _events(kc, "img-never-present")

    never = wait_until(lambda: _waiting(kc, "img-never-missing").get("reason") == "ErrImageNeverPull"
                       and _waiting(kc, "img-never-missing"), timeout=60, what="ErrImageNeverPull")
    assert never["message"] == 'Container image "example.invalid/missing:1" is not present with pull policy of Never'
    assert ("Warning", "ErrImageNeverPull", never["message"]) in _events(kc, "img-never-missing")

    backoff = wait_until(lambda: _waiting(kc, "img-nowhere").get("reason") == "ImagePullBackOff"
                         and _waiting(kc, "img-nowhere"), timeout=60, what="ImagePullBackOff")
    assert backoff["message"].startswith('Back-off pulling image "nobody/nothing:1": ErrImagePull: '
                                         'failed to pull and unpack image "docker.io/nobody/nothing:1"')
    told = _events(kc, "img-nowhere")
    assert ("Warning", "Failed", "Error: ErrImagePull") in told
    assert ("Normal", "BackOff", 'Back-off pulling image "nobody/nothing:1"') in told
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in told
    table = run(*kc, "get", "pod", "img-nowhere", "img-never-missing", "--no-headers").stdout.split("\n")
    assert [line.split()[2] for line in table if line] == ["ImagePullBackOff", "ErrImageNeverPull"]

    node = json.loads(run(*kc, "get", "node", always["spec"]["nodeName"], "-o", "json").stdout)
    names = {n for image in node["status"]["images"] for n in image["names"]}
    assert {"docker.io/library/nginx:latest", "docker.io/library/busybox:1.35"} <= names
    run(*kc, "delete", "-f", str(manifest), "--wait=false")
