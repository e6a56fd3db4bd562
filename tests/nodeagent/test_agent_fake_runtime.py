"""A whole node agent against a real API server, with the in-memory runtime and CNI of
tests/fakes: registration, podCIDR, the pod informer, work queue, workers, the relist loop and
the executor, without root or network namespaces. (test_agent_real.py runs the real runtime.)"""
from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable

import pytest

from kubecore.api.errors import ApiError
from kubecore.api.resources import NODES, PODS
from kubecore.client.rest import ApiClient
from services.nodeagent.agent import Agent, AgentConfig, NotStarted
from services.nodeagent.cni import NetworkConfigList
from services.nodeagent.podsync import Backoff
from tests.fakes.cni import FakeCni
from tests.fakes.runtime import FakeRuntime


class NoRoutes:
    """The node's routing table is no business of this test (the agent runs in the root namespace)."""

    async def sync(self, desired: set[tuple[str, str]]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        return set(), set()


async def eventually(check: Callable[[], Awaitable[object]], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = await check()
            if got:
                return got
        except (ApiError, AssertionError, KeyError, IndexError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_agent_with_a_fake_runtime_runs_restarts_and_deletes_a_pod(apiserver, tmp_path):
    made: list[FakeRuntime] = []

    def make_runtime(cfg: AgentConfig, conflist: NetworkConfigList) -> FakeRuntime:
        assert agent.pod_cidr  # the runtime is made once the node's pod range is known
        made.append(FakeRuntime(node_name=cfg.node_name, network=FakeCni(agent.pod_cidr)))
        return made[-1]

    cfg = AgentConfig(apiserver=apiserver.config, node_name="n1", node_ip="127.0.0.1", state_dir=tmp_path / "state",
                      cni_conf_dir=tmp_path / "cni", heartbeat_interval=1.0, relist_interval=0.05,
                      backoff=Backoff(base=0.2, cap=1.0), workers=2)
    agent = Agent(cfg, make_runtime=make_runtime)
    agent.routes = NoRoutes()  # type: ignore[assignment]
    with pytest.raises(NotStarted):
        _ = agent.runtime
    workers: asyncio.Task[None] | None = None
    starting = asyncio.create_task(agent.start())
    try:
        async with ApiClient(apiserver.config) as client:
            node = await eventually(lambda: client.get(NODES, "n1"))
            pod_cidr = node["spec"]["podCIDR"]  # the API server gives each new Node its range
            await asyncio.wait_for(starting, 10)
            assert agent.pod_cidr == pod_cidr
            first_ip = str(list(ipaddress.ip_network(pod_cidr).hosts())[1])  # after the gateway
            workers = asyncio.create_task(agent.run_workers())
            (runtime,) = made
            assert (tmp_path / "cni" / "10-minicluster.conflist").exists()

            await client.create(PODS, {"metadata": {"name": "p", "namespace": "default"},
                                       "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 3,
                                                "containers": [{"name": "web", "image": "nginx"}]}})

            async def running(restarts: int) -> dict:
                pod = await client.get(PODS, "p", "default")
                status = pod["status"]
                assert status["phase"] == "Running" and status["podIP"] == first_ip
                assert status["containerStatuses"][0]["restartCount"] == restarts
                assert "running" in status["containerStatuses"][0]["state"]
                return pod

            await eventually(lambda: running(0))
            (first,) = runtime.by_name("web")
            runtime.exit(first.id, 1)  # the relist loop notices, the back-off passes, it is restarted
            pod = await eventually(lambda: running(1))
            assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
            assert agent.find_container("default", "p", "web").attempt == 1

            await client.delete(PODS, "p", "default")

            async def gone() -> bool:
                try:
                    await client.get(PODS, "p", "default")
                except ApiError as exc:
                    return exc.code == 404
                return False

            await eventually(gone)
            assert ("stop_container", "web", 3) in runtime.calls
            assert runtime.list_pod_sandboxes() == [] and runtime.network.addresses() == []  # type: ignore[attr-defined]
    finally:
        if not starting.done():
            starting.cancel()
        await agent.stop()
        if workers is not None:
            await asyncio.wait_for(workers, 5)
