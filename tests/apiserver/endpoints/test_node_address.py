"""Where the node proxy dials for pods/log and pods/exec, as a table: the first InternalIP that
is a plain address (in the node network, when the server knows it), at the server's own
kubelet port; never text taken from the Node object."""
from __future__ import annotations

import ipaddress

import pytest

from kubecore.api.errors import ApiError
from kubecore.api.nodenet import NodeRanges
from services.apiserver.endpoints.nodeproxy import agent_base_url, node_address

RANGES = NodeRanges.parse("10.244.0.0/16", 24, "10.250.0.0/24")


def node(*addresses: tuple[str, str], port: int = 2379) -> dict:
    return {"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": t, "address": a} for t, a in addresses],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


@pytest.mark.parametrize("obj,ranges,url", [
    (node(("InternalIP", "10.250.0.11")), RANGES, "https://10.250.0.11:10250"),
    (node(("InternalIP", "127.0.0.1")), None, "https://127.0.0.1:10250"),
    (node(("InternalIP", "fd00::11")), None, "https://[fd00::11]:10250"),
    (node(("Hostname", "10.250.0.9"), ("InternalIP", "10.250.0.11")), RANGES, "https://10.250.0.11:10250"),
    (node(("InternalIP", "127.0.0.1:2379/v3/kv/range?x#"), ("InternalIP", "10.250.0.12")), RANGES,
     "https://10.250.0.12:10250"),
    (node(("InternalIP", "127.0.0.1"), ("InternalIP", "10.250.0.12")), RANGES, "https://10.250.0.12:10250"),
], ids=["ipv4", "no-node-network", "ipv6-in-brackets", "skips-other-types", "skips-a-url",
        "skips-outside-the-node-network"])
def test_the_agent_url_is_made_of_an_address_and_the_servers_port(obj, ranges, url):
    assert agent_base_url(node_address(obj, ranges), 10250) == url


@pytest.mark.parametrize("obj,ranges,known", [
    (node(), None, "[]"),
    ({"metadata": {"name": "n1"}}, None, "[]"),
    ({"metadata": {"name": "n1"}, "status": {"addresses": "10.250.0.11"}}, None, "[]"),
    (node(("Hostname", "n1")), None, "[{Hostname n1}]"),
    (node(("InternalIP", "127.0.0.1:2379/v3/kv/range?x#"), ("Hostname", "n1")), None,
     "[{InternalIP 127.0.0.1:2379/v3/kv/range?x#} {Hostname n1}]"),
    (node(("InternalIP", "[::1]:2379")), None, "[{InternalIP [::1]:2379}]"),
    (node(("InternalIP", "127.0.0.1")), RANGES, "[{InternalIP 127.0.0.1}]"),
], ids=["none", "no-status", "addresses-not-a-list", "no-internal-ip", "url", "bracketed-with-port",
        "outside-the-node-network"])
def test_a_node_without_a_usable_internal_ip_is_kubes_no_preferred_addresses(obj, ranges, known):
    with pytest.raises(ApiError) as err:
        node_address(obj, ranges)
    assert (err.value.code, err.value.reason) == (503, "ServiceUnavailable")
    assert err.value.message == f"no preferred addresses found; known addresses: {known}"


def test_the_url_takes_only_address_objects():
    assert agent_base_url(ipaddress.ip_address("::1"), 10250) == "https://[::1]:10250"
