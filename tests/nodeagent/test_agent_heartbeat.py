"""The node agent's heartbeat against a real API server (no runtime, no namespaces)."""
from __future__ import annotations

import asyncio
import time

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from services.nodeagent.agent import Agent, AgentConfig


async def test_heartbeats_go_on_after_someone_writes_odd_conditions(apiserver, tmp_path):
    # Anyone may write a Node's status, and the server keeps conditions it cannot read; the
    # agent builds its next status from them. That must not end the heartbeats for good.
    agent = Agent(AgentConfig(apiserver=apiserver.config, node_name="n1", node_ip="127.0.0.1",
                              state_dir=tmp_path / "state", cni_conf_dir=tmp_path / "cni",
                              heartbeat_interval=0.1))
    heartbeat: asyncio.Task | None = None
    try:
        await agent.register()
        await agent.nodes.start()
        await agent.nodes.synced.wait()
        async with ApiClient(apiserver.config) as client:
            odd = await client.patch(R.NODES, "n1", {"status": {"conditions": ["odd"]}},
                                     subresource="status")
            rv = odd["metadata"]["resourceVersion"]
            while agent.nodes.store.get("n1")["metadata"]["resourceVersion"] != rv:
                await asyncio.sleep(0.01)
            heartbeat = asyncio.create_task(agent.heartbeat_loop())
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not heartbeat.done():
                node = await client.get(R.NODES, "n1")
                if any(isinstance(c, dict) and c.get("type") == "Ready"
                       for c in node["status"].get("conditions") or []):
                    break
                await asyncio.sleep(0.1)
            assert not heartbeat.done(), f"the heartbeats ended: {heartbeat.exception()!r}"
            assert any(isinstance(c, dict) and c.get("type") == "Ready"
                       for c in node["status"]["conditions"]), node["status"]
    finally:
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        await agent.nodes.stop()
        await agent.events.close()
        await agent.client.close()
