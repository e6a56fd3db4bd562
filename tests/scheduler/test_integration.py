"""The scheduler in-process against the real API server (and etcd): nodes are made Ready
by the test, through the status subresource, as a node agent would."""
from __future__ import annotations

from collections import Counter

import aiohttp

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from services.scheduler.scheduler import Scheduler
from tests.support.controllers import running, until


async def make_node(client: ApiClient, name: str, *, ready: bool = True,
                    labels: dict[str, str] | None = None) -> None:
    await client.create(R.NODES, {"metadata": {"name": name, "labels": labels or {}}})
    await set_node_ready(client, name, ready)


async def set_node_ready(client: ApiClient, name: str, ready: bool) -> None:
    condition = {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "KubeletReady" if ready else "KubeletNotReady"}
    await client.patch(R.NODES, name, {"status": {"conditions": [condition]}},
                       subresource="status")


async def make_pod(client: ApiClient, name: str, **spec) -> None:
    await client.create(R.PODS, {"metadata": {"name": name, "namespace": "default"},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                          **spec}})


def scheduled_condition(pod: dict) -> dict | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond["type"] == "PodScheduled":
            return cond
    return None


async def test_pending_pods_are_bound_evenly_across_ready_nodes(apiserver):
    async with ApiClient(apiserver.config) as client:
        await make_node(client, "node-a")
        await make_node(client, "node-b")
        for i in range(10):
            await make_pod(client, f"p{i}")
        scheduler = Scheduler(client, SharedInformerFactory(client))
        async with running(scheduler) as health:
            async def all_bound():
                pods, _ = await client.list(R.PODS, "default")
                return pods if all(p["spec"].get("nodeName") for p in pods) else None
            pods = await until(all_bound)
            assert Counter(p["spec"]["nodeName"] for p in pods) == {"node-a": 5, "node-b": 5}
            assert all(scheduled_condition(p)["status"] == "True" for p in pods)
            # a pod created later goes where fewer are: a third, empty node
            await make_node(client, "node-c")

            async def node_c_seen_ready():  # the scheduler's own cache, not just the server
                node = scheduler.nodes.store.get("node-c")
                return node is not None and any(c.get("type") == "Ready" and c.get("status") == "True"
                                                for c in (node.get("status") or {}).get("conditions") or [])
            await until(node_c_seen_ready)
            await make_pod(client, "late")

            async def late_bound():
                return (await client.get(R.PODS, "late", "default"))["spec"].get("nodeName")
            assert await until(late_bound) == "node-c"
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{health.port}/readyz") as r:
                    assert r.status == 200
                async with s.get(f"http://127.0.0.1:{health.port}/metrics") as r:
                    assert 'scheduler_schedule_attempts_total{result="scheduled"} 11.0' in await r.text()
        assert len(scheduler.assumed) == 0  # every binding was confirmed by the informer


async def test_node_selector_is_honoured_and_a_misfit_says_why(apiserver):
    async with ApiClient(apiserver.config) as client:
        await make_node(client, "fast", labels={"disk": "ssd"})
        await make_node(client, "slow", labels={"disk": "hdd"})
        await make_node(client, "down", ready=False, labels={"disk": "ssd"})
        scheduler = Scheduler(client, SharedInformerFactory(client))
        async with running(scheduler):
            for i in range(3):
                await make_pod(client, f"ssd{i}", nodeSelector={"disk": "ssd"})
            await make_pod(client, "nvme", nodeSelector={"disk": "nvme"})

            async def ssd_bound():
                pods = [await client.get(R.PODS, f"ssd{i}", "default") for i in range(3)]
                return [p["spec"].get("nodeName") for p in pods] if all(
                    p["spec"].get("nodeName") for p in pods) else None
            assert await until(ssd_bound) == ["fast"] * 3

            async def nvme_refused():
                return scheduled_condition(await client.get(R.PODS, "nvme", "default"))
            cond = await until(nvme_refused)
            assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
            assert cond["message"] == ("0/3 nodes are available: 1 node(s) were not ready, "
                                       "2 node(s) didn't match Pod's node affinity/selector.")


async def test_an_unschedulable_pod_is_bound_once_a_node_turns_ready(apiserver):
    async with ApiClient(apiserver.config) as client:
        await make_node(client, "n1", ready=False)
        scheduler = Scheduler(client, SharedInformerFactory(client))
        async with running(scheduler):
            await make_pod(client, "waiting")
            await make_pod(client, "not-mine", schedulerName="other-scheduler")

            async def refused():
                cond = scheduled_condition(await client.get(R.PODS, "waiting", "default"))
                return cond if cond and cond["status"] == "False" else None
            cond = await until(refused)
            assert cond["reason"] == "Unschedulable"
            assert cond["message"] == "0/1 nodes are available: 1 node(s) were not ready."
            await set_node_ready(client, "n1", True)

            async def bound():
                return (await client.get(R.PODS, "waiting", "default"))["spec"].get("nodeName")
            assert await until(bound) == "n1"
            cond = scheduled_condition(await client.get(R.PODS, "waiting", "default"))
            assert cond["status"] == "True"
            other = await client.get(R.PODS, "not-mine", "default")
            assert not other["spec"].get("nodeName") and scheduled_condition(other) is None


async def events_about(client: ApiClient, name: str, reason: str) -> list[dict]:
    items, _ = await client.list(R.EVENTS, "default",
                                 field_selector=f"involvedObject.name={name},reason={reason}")
    return items


async def test_events_say_why_a_pod_waited_and_where_it_went(apiserver):
    async with ApiClient(apiserver.config) as client:
        await make_node(client, "n1", ready=False)
        scheduler = Scheduler(client, SharedInformerFactory(client))
        async with running(scheduler):
            await make_pod(client, "web-1")
            [failed] = await until(lambda: events_about(client, "web-1", "FailedScheduling"))
            assert failed["type"] == "Warning"
            assert failed["message"] == "0/1 nodes are available: 1 node(s) were not ready."
            await set_node_ready(client, "n1", True)
            [scheduled] = await until(lambda: events_about(client, "web-1", "Scheduled"))
        pod = await client.get(R.PODS, "web-1", "default")
        assert scheduled["type"] == "Normal"
        assert scheduled["message"] == "Successfully assigned default/web-1 to n1"
        assert scheduled["source"] == {"component": "default-scheduler"}
        assert scheduled["reportingComponent"] == "default-scheduler"
        ref = scheduled["involvedObject"]
        assert {k: ref[k] for k in ("kind", "apiVersion", "namespace", "name", "uid")} == {
            "kind": "Pod", "apiVersion": "v1", "namespace": "default", "name": "web-1",
            "uid": pod["metadata"]["uid"]}
        assert scheduled["metadata"]["namespace"] == "default"
        assert scheduled["count"] == 1
        # one failure reported, not one per attempt (the echo of the condition write, node
        # heartbeats and the status change all re-queue the pod)
        [failed] = await events_about(client, "web-1", "FailedScheduling")
        assert failed["count"] == 1
