"""The pure parts of the node's network view: how a pod's resolver expands a name, its
resolv.conf, and the node's conntrack lines."""
from __future__ import annotations

import pytest

from services.nodeagent.netdebug import host_veth, parse_conntrack, parse_resolv_conf, search_names
from services.nodeagent.runtime import SandboxInfo

SEARCH = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]


@pytest.mark.parametrize("name, expected", [
    ("mysvc", ["mysvc.default.svc.cluster.local.", "mysvc.svc.cluster.local.", "mysvc.cluster.local.", "mysvc."]),
    # four dots are fewer than ndots:5, so even the full name goes through the search list first
    ("mysvc.default.svc.cluster.local", ["mysvc.default.svc.cluster.local.default.svc.cluster.local.",
                                         "mysvc.default.svc.cluster.local.svc.cluster.local.",
                                         "mysvc.default.svc.cluster.local.cluster.local.",
                                         "mysvc.default.svc.cluster.local."]),
    ("a.b.c.d.e.f", ["a.b.c.d.e.f.", "a.b.c.d.e.f.default.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local.",
                     "a.b.c.d.e.f.cluster.local."]),
    ("mysvc.default", ["mysvc.default.default.svc.cluster.local.", "mysvc.default.svc.cluster.local.",
                       "mysvc.default.cluster.local.", "mysvc.default."]),
    ("example.com.", ["example.com."]),
], ids=["short", "full-service-name", "five-dots", "one-dot", "absolute"])
def test_search_path_expansion_with_ndots_5(name, expected):
    assert search_names(name, SEARCH, 5) == expected


def test_resolv_conf_as_the_agent_writes_it():
    conf = parse_resolv_conf("search default.svc.cluster.local svc.cluster.local cluster.local\n"
                             "nameserver 10.96.0.10\noptions ndots:5\n")
    assert conf == {"nameservers": ["10.96.0.10"], "search": SEARCH, "ndots": 5}
    assert parse_resolv_conf("# nothing\n") == {"nameservers": [], "search": [], "ndots": 1}


@pytest.mark.parametrize("line, expected", [
    ("tcp      6 431999 ESTABLISHED src=10.244.1.7 dst=10.96.62.22 sport=40000 dport=8080 src=10.244.2.2 "
     "dst=10.244.1.7 sport=8080 dport=40000 [ASSURED] mark=0 use=1",
     ("tcp", "ESTABLISHED", "10.96.62.22", "10.244.2.2", "8080", True)),
    ("tcp      6 117 TIME_WAIT src=10.244.1.7 dst=10.96.62.22 sport=40001 dport=8080 src=10.244.1.2 "
     "dst=10.244.1.7 sport=8080 dport=40001 [ASSURED] mark=0 use=1",
     ("tcp", "TIME_WAIT", "10.96.62.22", "10.244.1.2", "8080", True)),
    ("udp      17 29 src=10.244.1.7 dst=10.96.0.10 sport=53000 dport=53 src=10.250.0.1 dst=10.244.1.7 "
     "sport=53 dport=53000 mark=0 use=1",
     ("udp", "", "10.96.0.10", "10.250.0.1", "53", False)),
    ("ipv4     2 tcp      6 10 SYN_SENT src=10.244.1.7 dst=10.96.0.50 sport=40002 dport=80 [UNREPLIED] "
     "src=10.96.0.50 dst=10.244.1.7 sport=80 dport=40002 mark=0 use=1",
     ("tcp", "SYN_SENT", "10.96.0.50", "10.96.0.50", "80", False)),
], ids=["established", "time-wait", "udp", "extended-unreplied"])
def test_conntrack_lines(line, expected):
    entry = parse_conntrack(line)
    assert entry is not None
    assert (entry["protocol"], entry["state"], entry["original"]["dst"], entry["reply"]["src"],
            entry["reply"]["sport"], entry["assured"]) == expected


def test_the_host_side_of_the_veth_is_the_interface_without_a_sandbox():
    sandbox = SandboxInfo(id="s", pod_uid="u", namespace="default", name="p", node="n", netns_name="x",
                          netns_path="/run/netns/x", pod_dir="/x", hostname="p", state="SANDBOX_READY",
                          created_at=0.0, cni_result={"interfaces": [
                              {"name": "veth1a2b3c4d", "mac": "aa:bb"},
                              {"name": "eth0", "mac": "cc:dd", "sandbox": "/run/netns/x"}]})
    assert host_veth(sandbox) == "veth1a2b3c4d"


def test_an_answer_is_shown_as_text_or_as_its_size():
    from services.nodeagent.netdebug import _printable
    assert _printable(b"HTTP/1.1 200 OK\r\n") == "HTTP/1.1 200 OK\r\n"
    assert _printable(b"\x12\x34\x81\x80\x00\x01") == "<6 bytes>"
