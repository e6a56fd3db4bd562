"""compose.yaml is valid for docker-compose and runs what the local launcher runs."""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from cluster.compose import expected_commands

ROOT = Path(__file__).resolve().parent.parent.parent


def rendered() -> dict:
    res = subprocess.run(["docker-compose", "-f", str(ROOT / "compose.yaml"), "config"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


def test_compose_file_is_valid_and_commands_match_the_launcher():
    services = rendered()["services"]
    expected = expected_commands()
    for name, argv in expected.items():
        assert name in services, f"compose.yaml has no service {name}"
        assert [str(a) for a in services[name]["command"]] == argv, name
    missing = set(services) - set(expected) - {"etcd", "bootstrap", "credentials", "encryption-config",
                                                   "kubeconfig", "tools", "node-images"}
    assert not missing, f"compose services the launcher does not run: {missing}"


def test_nodes_have_every_capability_a_node_uses_and_proxies_share_their_network():
    services = rendered()["services"]
    for i in (1, 2):
        for name in (f"node{i}", f"node{i}-proxy"):
            assert services[name]["cap_add"] == ["ALL"] and services[name]["cap_drop"] == ["SYS_RESOURCE"], name
            assert set(services[name]["security_opt"]) == {"seccomp=unconfined", "apparmor=unconfined"}, name
        assert services[f"node{i}"]["sysctls"] == {"net.ipv4.ip_forward": "1"}
        assert services[f"node{i}-proxy"]["network_mode"] == f"service:node{i}"
    assert "healthcheck" in services["apiserver"] and "healthcheck" in services["dns"]


def test_etcd_is_reachable_from_the_api_server_only():
    services = rendered()["services"]
    joined = {name for name, svc in services.items() if "store" in (svc.get("networks") or {})}
    assert joined == {"etcd", "apiserver"}
    assert rendered()["networks"]["store"]["internal"] is True
