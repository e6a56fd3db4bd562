"""The Node turns Ready only once the pod network's CNI config is written (the kubelet reports
NetworkPluginNotReady until its network plugin has a config): whoever sees a Ready node with a
podCIDR may rely on the conflist being there. Runs on the recording fake API, no root."""
from __future__ import annotations

from kubecore.api.resources import NODES
from kubecore.api.types import Obj
from services.nodeagent.agent import CONFLIST_NAME, Agent, AgentConfig
from tests.fakes.api import FakeApiClient


def ready(node: Obj | None) -> str:
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return next((c["status"] for c in conditions if c["type"] == "Ready"), "absent")


async def test_ready_follows_the_cni_config_not_the_pod_cidr(tmp_path):
    cfg = AgentConfig(apiserver="http://127.0.0.1:1", node_name="n1", node_ip="127.0.0.1",
                      state_dir=tmp_path / "state", cni_conf_dir=tmp_path / "cni")
    agent = Agent(cfg)
    api = FakeApiClient()
    agent.client = api  # type: ignore[assignment]
    conflist = cfg.cni_conf_dir / CONFLIST_NAME

    await agent.register()  # the fake assigns no podCIDR, as a server whose allocator is late
    assert ready(api.stored(NODES, "n1")) == "False" and not conflist.exists()

    # The range arrives; a heartbeat goes out before the config is written: still not Ready.
    node = api.edit(NODES, "n1", None, lambda n: n["spec"].update(podCIDR="10.244.1.0/24"))
    agent._on_node(node)
    await agent.post_status()
    assert agent.pod_cidr == "10.244.1.0/24"
    assert ready(api.stored(NODES, "n1")) == "False" and not conflist.exists()

    await agent.configure_network()
    assert conflist.exists() and ready(api.stored(NODES, "n1")) == "True"


async def test_a_node_created_with_its_range_is_ready_with_its_config_at_registration(tmp_path):
    cfg = AgentConfig(apiserver="http://127.0.0.1:1", node_name="n2", node_ip="127.0.0.1",
                      state_dir=tmp_path / "state", cni_conf_dir=tmp_path / "cni")
    agent = Agent(cfg)
    api = FakeApiClient()
    api.preload(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"},
                        "spec": {"podCIDR": "10.244.2.0/24"}})
    agent.client = api  # type: ignore[assignment]

    await agent.register()  # 409: the Node exists, with its range
    assert (cfg.cni_conf_dir / CONFLIST_NAME).exists()
    assert ready(api.stored(NODES, "n2")) == "True"
    assert (await agent.configure_network()) is agent.conflist  # written once
