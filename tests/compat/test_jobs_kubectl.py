"""Unmodified kubectl with Jobs and CronJobs: `create job --from=cronjob/...`, `wait
--for=condition=complete|failed`, and the columns of `get jobs,cronjobs`; the jobs process
runs the Jobs (as job-controller under RBAC), a fake kubelet finishes their pods."""
from __future__ import annotations

import asyncio
import json

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from kubecore.client.rest import ApiClient
from tests.compat.conftest import Kubectl, rows
from tests.support.controllers import ControllerProcess
from tests.support.fake_kubelet import FakeKubelet

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  timeZone: Europe/Berlin
  jobTemplate:
    metadata:
      labels: {app: nightly}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: busybox
            command: [sh, -c, "exit 0"]
"""
FAILING = """
apiVersion: batch/v1
kind: Job
metadata:
  name: failing
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: [sh, -c, "exit 1"]
"""


async def test_create_from_cronjob_wait_and_columns(kubectl: Kubectl, apiserver_process, tmp_path) -> None:
    async def k(*args: str, check: bool = True):
        return await asyncio.to_thread(kubectl, *args, check=check)

    jobs = ControllerProcess("services.jobs", apiserver_process, user=CONTROL_PLANE_IDENTITIES["jobs"][0],
                             log_path=tmp_path / "jobs.log").start()
    try:
        async with ApiClient(apiserver_process.config) as client, FakeKubelet(client).running():
            await jobs.wait_ready()
            await k("create", "-f", str(kubectl.write("cj.yaml", CRONJOB)))
            table = rows((await k("get", "cj")).stdout)
            assert table[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
            assert table[1][:-1] == ["nightly", "0 3 * * *", "Europe/Berlin", "False", "0", "<none>"]
            created = await k("create", "job", "manual", "--from=cronjob/nightly")
            assert created.stdout.strip() == "job.batch/manual created"
            waited = await k("wait", "--for=condition=complete", "job/manual", "--timeout=60s")
            assert waited.stdout.strip() == "job.batch/manual condition met"
            job = json.loads((await k("get", "job", "manual", "-o", "json")).stdout)
            assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
            assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
            assert job["metadata"]["labels"]["app"] == "nightly"
            assert job["spec"]["selector"]["matchLabels"] == {
                "batch.kubernetes.io/controller-uid": job["metadata"]["uid"]}

            await k("create", "-f", str(kubectl.write("failing.yaml", FAILING)))
            waited = await k("wait", "--for=condition=failed", "job/failing", "--timeout=60s")
            assert waited.stdout.strip() == "job.batch/failing condition met"
            table = rows((await k("get", "jobs")).stdout)
            assert table[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
            by_name = {r[0]: r[1:3] for r in table[1:]}
            assert by_name == {"failing": ["Failed", "0/1"], "manual": ["Complete", "1/1"]}
            wide = rows((await k("get", "job", "manual", "-o", "wide")).stdout)
            assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
            assert wide[1][-3:] == ["c", "busybox", f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}"]
            refused = await k("create", "job", "bad", "--image=busybox", "--", "sh", "-c", "exit 0",
                              check=False)
            assert refused.returncode == 0  # kubectl create job sets restartPolicy Never itself
            bad = await k("patch", "job", "manual", "--type=merge", "-p",
                          '{"spec":{"completions":5}}', check=False)
            assert bad.returncode == 1
            assert 'The Job "manual" is invalid: spec.completions: Invalid value: 5: field is immutable' \
                in bad.stderr
        assert await jobs.terminate() == 0
    finally:
        jobs.kill()
