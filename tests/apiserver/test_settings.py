"""The API server's flags for what Nodes may hold and where node agents are dialled."""
from __future__ import annotations

import pytest

from services.apiserver.settings import parse_args
from tests.conftest import SessionPki


def test_defaults_check_no_node_network_and_dial_the_kubelet_port():
    s = parse_args(SessionPki.get().apiserver_flags())
    assert (s.node_cidr, s.kubelet_port, s.cluster_cidr, s.node_cidr_mask) == ("", 10250, "10.244.0.0/16", 24)
    assert s.node_ranges().node_network is None


def test_the_node_network_and_kubelet_port_flags():
    s = parse_args([*SessionPki.get().apiserver_flags(), "--node-network", "10.250.0.0/24", "--kubelet-port", "11250"])
    assert (s.node_cidr, s.kubelet_port) == ("10.250.0.0/24", 11250)
    assert str(s.node_ranges().node_network) == "10.250.0.0/24"


@pytest.mark.parametrize("argv", [
    ["--node-network", "10.250.0.1/24"],
    ["--node-network", "nodes"],
    ["--cluster-cidr", "0.0.0.0/0"],
    ["--node-cidr-mask-size", "8"],
    ["--kubelet-port", "0"],
    ["--kubelet-port", "70000"],
], ids=["host-bits", "not-a-cidr", "everything", "mask-wider-than-cluster", "port-zero", "port-too-big"])
def test_bad_ranges_and_ports_stop_the_server_at_start(argv):
    with pytest.raises(SystemExit):
        parse_args([*SessionPki.get().apiserver_flags(), *argv])


@pytest.mark.parametrize("servers, problem", [
    ("127.0.0.1:2379", ""),
    ("etcd:2379", ""),
    ("http://127.0.0.1:2379,127.0.0.1:2381", ""),
    ("etcd:2379,etcd-2:2379", "with several members give each as an IPv4 address and port"),
    ("127.0.0.1", "is not host:port"),
    ("127.0.0.1:99999", "is not host:port"),
    ("", "no endpoint given"),
])
def test_etcd_servers_are_checked_at_start(servers, problem, capsys):
    argv = [*SessionPki.get().apiserver_flags(), "--etcd-servers", servers]
    if not problem:
        assert parse_args(argv).etcd_endpoints
        return
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert problem in capsys.readouterr().err
