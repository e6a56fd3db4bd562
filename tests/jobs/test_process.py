"""The jobs process (`python -m services.jobs`, as job-controller under RBAC) against etcd and
the API server, with a fake kubelet finishing pods (tests/support/fake_kubelet.py) and the
garbage collector process for the ttl-after-finished controller's Foreground deletion."""
from __future__ import annotations

from typing import Any

from cluster.credentials import CONTROL_PLANE_IDENTITIES
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from tests.support.controllers import ControllerProcess, until
from tests.support.fake_kubelet import FakeKubelet

IDENTITY = CONTROL_PLANE_IDENTITIES["jobs"][0]
GC_IDENTITY = CONTROL_PLANE_IDENTITIES["gc"][0]
FIN = "batch.kubernetes.io/job-tracking"


def job(name: str, command: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox",
                                                           "command": ["sh", "-c", command]}],
                                           "restartPolicy": restart}}, **spec}}


def condition_types(obj: dict[str, Any]) -> list[str]:
    return [c["type"] for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]


async def finished(client: ApiClient, name: str, cond: str) -> dict[str, Any] | None:
    got = await client.get(R.JOBS, name, "default")
    return got if cond in condition_types(got) else None


async def pods_of(client: ApiClient, name: str) -> list[dict[str, Any]]:
    listed = await client.list(R.PODS, "default", label_selector=f"batch.kubernetes.io/job-name={name}")
    return listed[0]


async def test_jobs_process_runs_jobs_cronjobs_and_ttls(apiserver_process, tmp_path):
    jobs = ControllerProcess("services.jobs", apiserver_process, "--pod-failure-backoff", "0.2",
                             user=IDENTITY, log_path=tmp_path / "jobs.log").start()
    gc = ControllerProcess("services.gc", apiserver_process, user=GC_IDENTITY,
                           log_path=tmp_path / "gc.log").start()
    try:
        async with ApiClient(apiserver_process.config) as client, \
                FakeKubelet(client, run_seconds=0.2).running():
            await jobs.wait_ready()
            await gc.wait_ready()
            await client.create(R.JOBS, job("ok", "exit 0", completions=3, parallelism=2), "default")
            await client.create(R.JOBS, job("bad", "exit 1", backoffLimit=1), "default")
            await client.create(R.JOBS, job("idx", "exit 0", completions=3, parallelism=3,
                                            completionMode="Indexed"), "default")
            await client.create(R.JOBS, job("slow", "sleep 3600", activeDeadlineSeconds=1), "default")
            await client.create(R.JOBS, job("flaky", "exit 3", restart="OnFailure", backoffLimit=1), "default")
            await client.create(R.JOBS, job("brief", "exit 0", ttlSecondsAfterFinished=0), "default")

            ok = await until(lambda: finished(client, "ok", "Complete"), timeout=30)
            assert condition_types(ok) == ["SuccessCriteriaMet", "Complete"]
            assert (ok["status"]["succeeded"], ok["status"].get("failed"), ok["status"]["active"]) == (3, None, 0)
            assert ok["status"]["completionTime"] and ok["status"]["startTime"]
            assert ok["status"]["uncountedTerminatedPods"] == {}
            ok_pods = await pods_of(client, "ok")
            assert len(ok_pods) == 3 and not any(FIN in (p["metadata"].get("finalizers") or []) for p in ok_pods)

            bad = await until(lambda: finished(client, "bad", "Failed"), timeout=30)
            assert condition_types(bad) == ["FailureTarget", "Failed"]
            failed = bad["status"]["conditions"][-1]
            assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded",
                                                             "Job has reached the specified backoff limit")
            assert bad["status"]["failed"] == 2 and "completionTime" not in bad["status"]

            idx = await until(lambda: finished(client, "idx", "Complete"), timeout=30)
            assert idx["status"]["completedIndexes"] == "0-2"
            assert sorted(p["spec"]["hostname"] for p in await pods_of(client, "idx")) == ["idx-0", "idx-1", "idx-2"]

            slow = await until(lambda: finished(client, "slow", "Failed"), timeout=30)
            assert slow["status"]["conditions"][-1]["reason"] == "DeadlineExceeded"
            assert slow["status"]["failed"] == 1

            flaky = await until(lambda: finished(client, "flaky", "Failed"), timeout=30)
            assert flaky["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"

            async def gone() -> bool:
                try:
                    await client.get(R.JOBS, "brief", "default")
                except ApiError as exc:
                    return exc.code == 404
                return False
            await until(gone, timeout=30)
            assert await until(lambda: _no_pods(client, "brief"), timeout=30)

            reasons = {e["reason"] for e in (await client.list(R.EVENTS, "default"))[0]
                       if e["involvedObject"]["kind"] == "Job"}
            assert {"SuccessfulCreate", "Completed", "BackoffLimitExceeded", "DeadlineExceeded",
                    "SuccessfulDelete"} <= reasons

            await _cronjob(client)
            status, text = await jobs.get("/metrics")
            assert status == 200 and "job_pods_created_total" in text and "cronjob_jobs_created_total" in text
        assert await jobs.terminate() == 0
    finally:
        jobs.kill()
        gc.kill()


async def _no_pods(client: ApiClient, name: str) -> bool:
    return not await pods_of(client, name)


async def _cronjob(client: ApiClient) -> None:
    """@every 1s, keeping no successful Job: a Job starts (named for its minute), finishes,
    moves lastSuccessfulTime, and goes for the history limit."""
    await client.create(R.CRONJOBS, {
        "metadata": {"name": "tick"},
        "spec": {"schedule": "@every 1s", "successfulJobsHistoryLimit": 0,
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 0"]}],
                     "restartPolicy": "Never"}}}}}}, "default")

    async def ran_and_cleaned() -> dict[str, Any] | None:
        cj = await client.get(R.CRONJOBS, "tick", "default")
        reasons = {e["reason"] for e in (await client.list(R.EVENTS, "default"))[0]
                   if e["involvedObject"]["name"] == "tick"}
        done = {"SuccessfulCreate", "SawCompletedJob", "SuccessfulDelete"} <= reasons
        return cj if cj["status"].get("lastSuccessfulTime") and done else None
    cj = await until(ran_and_cleaned, timeout=40)
    assert cj["status"]["lastScheduleTime"]
    await client.patch(R.CRONJOBS, "tick", {"spec": {"suspend": True}}, "default")
