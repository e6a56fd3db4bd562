"""The ip-masq-agent rules a compose node installs (services/nodeagent/masq.py)."""
from __future__ import annotations

import subprocess

import pytest

from services.nodeagent import masq


def test_rules_keep_pod_to_pod_traffic_and_masquerade_the_rest():
    text = masq.rules("10.244.0.0/16")
    lines = text.splitlines()
    assert lines[:2] == ["*nat", ":IP-MASQ-AGENT - [0:0]"]
    assert lines[2].startswith("-A IP-MASQ-AGENT -d 10.244.0.0/16 ") and lines[2].endswith("-j RETURN")
    assert lines[3].startswith("-A IP-MASQ-AGENT -m comment") and lines[3].endswith("-j MASQUERADE")
    assert lines[4] == "COMMIT"


def test_rules_refuse_a_cidr_that_is_not_one():
    with pytest.raises(ValueError):
        masq.rules("10.244.0.1/16")


async def test_ensure_installs_the_chain_once_in_the_nodes_namespace(node_netns: str):
    path = f"/run/netns/{node_netns}"
    for _ in range(2):  # a restarted agent refreshes the chain and adds no second jump
        await masq.ensure("10.244.0.0/16", path)
    saved = subprocess.run(["ip", "netns", "exec", node_netns, "iptables-save", "-t", "nat"],
                           capture_output=True, text=True, check=True).stdout
    jumps = [line for line in saved.splitlines() if line.startswith("-A POSTROUTING") and "IP-MASQ-AGENT" in line]
    assert len(jumps) == 1 and "! --dst-type LOCAL" in jumps[0]
    chain = [line for line in saved.splitlines() if line.startswith("-A IP-MASQ-AGENT")]
    assert [line.split()[-1] for line in chain] == ["RETURN", "MASQUERADE"]
    assert "-d 10.244.0.0/16" in chain[0]
