"""compose.yaml is valid for docker-compose and runs what the local launcher runs."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from cluster.compose import COMPOSE_APISERVER_IPS, COMPOSE_DNS_IPS, expected_commands
from cluster.config import copy_name

ROOT = Path(__file__).resolve().parent.parent.parent


def rendered(*files: str) -> dict:
    """compose.yaml (with `files` over it) as docker-compose reads it."""
    argv = ["docker-compose"]
    for f in ("compose.yaml", *files):
        argv += ["-f", str(ROOT / f)]
    res = subprocess.run([*argv, "config"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


@pytest.mark.parametrize("ha", [False, True], ids=["compose.yaml", "compose.ha.yaml"])
def test_compose_file_is_valid_and_commands_match_the_launcher(ha):
    services = rendered(*(["compose.ha.yaml"] if ha else []))["services"]
    expected = expected_commands(ha)
    for name, argv in expected.items():
        assert name in services, f"compose has no service {name}"
        assert [str(a) for a in services[name]["command"]] == argv, name
    missing = set(services) - set(expected) - {"etcd", "bootstrap", "credentials", "encryption-config",
                                                   "kubeconfig", "tools", "node-images"}
    assert not missing, f"compose services the launcher does not run: {missing}"


def test_the_ha_variant_lists_both_api_and_dns_servers_everywhere():
    services = rendered("compose.ha.yaml")["services"]
    assert services["credentials"]["command"][-1] == "--ha"  # kubeconfigs list both API servers
    boot = services["bootstrap"]["command"]
    assert [boot[i + 1] for i, a in enumerate(boot) if a == "--dns-ip"] == list(COMPOSE_DNS_IPS)
    merge = services["kubeconfig"]["command"]
    assert [merge[i + 1] for i, a in enumerate(merge) if a == "--server"] == [
        "https://127.0.0.1:6445", "https://127.0.0.1:6443", "https://127.0.0.1:6444"]  # the balancer first
    # docker-compose 1.29 renders "127.0.0.1:6444:6443/tcp", Compose v2 a mapping
    ports = [f'{p["host_ip"]}:{p["published"]}:{p["target"]}' if isinstance(p, dict) else p.removesuffix("/tcp")
             for p in services["apiserver-2"]["ports"]]
    assert ports == ["127.0.0.1:6444:6443"]
    for k, ip in enumerate(COMPOSE_APISERVER_IPS):
        assert services[copy_name("apiserver", k)]["networks"]["nodes"]["ipv4_address"] == ip
    for k, ip in enumerate(COMPOSE_DNS_IPS):
        assert services[copy_name("dns", k)]["networks"]["nodes"]["ipv4_address"] == ip
    assert "etcd-1" in services["etcd"]["networks"]["store"]["aliases"]  # its peer certificate's name


def test_nodes_have_every_capability_a_node_uses_and_proxies_share_their_network():
    services = rendered()["services"]
    for i in (1, 2):
        for name in (f"node{i}", f"node{i}-proxy"):
            assert services[name]["cap_add"] == ["ALL"] and services[name]["cap_drop"] == ["SYS_RESOURCE"], name
            assert set(services[name]["security_opt"]) == {"seccomp=unconfined", "apparmor=unconfined"}, name
        assert services[f"node{i}"]["sysctls"] == {"net.ipv4.ip_forward": "1"}
        assert services[f"node{i}-proxy"]["network_mode"] == f"service:node{i}"
    assert "healthcheck" in services["apiserver"] and "healthcheck" in services["dns"]


@pytest.mark.parametrize("ha", [False, True], ids=["compose.yaml", "compose.ha.yaml"])
def test_etcd_is_reachable_from_the_api_servers_only(ha):
    doc = rendered(*(["compose.ha.yaml"] if ha else []))
    joined = {name for name, svc in doc["services"].items() if "store" in (svc.get("networks") or {})}
    members = {"etcd", "etcd-2", "etcd-3"} if ha else {"etcd"}
    assert joined == members | ({"apiserver", "apiserver-2"} if ha else {"apiserver"})
    assert doc["networks"]["store"]["internal"] is True
