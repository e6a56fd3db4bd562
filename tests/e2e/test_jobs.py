"""Jobs in a real local cluster with the real kubectl: the scheduler places the Job's pods,
node agents run them as processes and turn them Succeeded or Failed, the jobs controller
counts them: one Job completes, another fails on its backoffLimit."""
from __future__ import annotations

import json

from tests.e2e.harness import Cluster, run

JOBS = """
apiVersion: batch/v1
kind: Job
metadata: {name: hello}
spec:
  completions: 2
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: busybox, command: [sh, -c, "echo hello from the job; exit 0"]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: boom}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: busybox, command: [sh, -c, "exit 3"]}
"""


def test_a_job_completes_and_another_fails_on_its_backoff_limit(cluster: Cluster, tmp_path) -> None:
    kc = ["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc")]
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(JOBS)
    assert run(*kc, "apply", "-f", str(manifest)).stdout.split("\n")[:2] == [
        "job.batch/hello created", "job.batch/boom created"]
    out = run(*kc, "wait", "--for=condition=complete", "job/hello", "--timeout=180s", timeout=200).stdout
    assert out.strip() == "job.batch/hello condition met"
    out = run(*kc, "wait", "--for=condition=failed", "job/boom", "--timeout=180s", timeout=200).stdout
    assert out.strip() == "job.batch/boom condition met"

    rows = {line.split()[0]: line.split()[1:3] for line in run(*kc, "get", "jobs").stdout.splitlines()[1:]}
    assert rows == {"boom": ["Failed", "0/1"], "hello": ["Complete", "2/2"]}
    hello = json.loads(run(*kc, "get", "job", "hello", "-o", "json").stdout)
    assert hello["status"]["succeeded"] == 2 and hello["status"]["completionTime"]
    assert "hello from the job" in run(*kc, "logs", "job/hello").stdout
    boom = json.loads(run(*kc, "get", "job", "boom", "-o", "json").stdout)
    assert boom["status"]["failed"] == 2
    assert boom["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    pods = json.loads(run(*kc, "get", "pods", "-l", "job-name=boom", "-o", "json").stdout)["items"]
    assert len(pods) == 2 and {p["status"]["phase"] for p in pods} == {"Failed"}
    assert all(not p["metadata"].get("finalizers") for p in pods)
    events = run(*kc, "get", "events", "--field-selector", "involvedObject.name=boom").stdout
    assert "BackoffLimitExceeded" in events
