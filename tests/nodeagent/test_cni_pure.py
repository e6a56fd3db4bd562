"""Pure parts of the CNI executor: configuration, stdin, environment, results, errors."""
from __future__ import annotations

import ipaddress
import json

import pytest

from services.nodeagent.cni import (
    CniConfigError,
    CniError,
    NetworkConfigList,
    PortMapping,
    RuntimeConf,
    check_supported,
    default_conflist,
    parse_plugin_output,
    parse_result,
    plugin_env,
    plugin_stdin,
    prev_result_on_del,
)

PTP_RESULT_100 = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "veth6d9a75e5", "mac": "82:71:7b:42:81:4c"},
        {"name": "eth0", "mac": "ee:95:6d:e4:6e:c5", "sandbox": "/run/netns/mc-n1-abc"},
    ],
    "ips": [{"interface": 1, "address": "10.244.1.2/24", "gateway": "10.244.1.1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {},
}

BRIDGE_RESULT_040 = {
    "cniVersion": "0.4.0",
    "interfaces": [
        {"name": "cni0", "mac": "00:11:22:33:44:55"},
        {"name": "veth3243", "mac": "55:44:33:22:11:11"},
        {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"},
    ],
    "ips": [{"version": "4", "address": "10.0.0.5/32", "interface": 2, "gateway": "10.0.0.1"}],
    "routes": [{"dst": "10.3.0.0/16", "gw": "10.0.0.1"}],
    "dns": {"nameservers": ["10.1.0.1"], "search": ["svc.cluster.local"]},
}


def test_default_conflist_is_kindnet_shaped(tmp_path):
    conf = default_conflist(pod_cidr="10.244.1.0/24", ipam_data_dir=tmp_path / "n1", mtu=1400)
    assert conf["cniVersion"] == "1.0.0"
    ptp, portmap = conf["plugins"]
    assert ptp == {
        "type": "ptp",
        "ipMasq": False,
        "mtu": 1400,
        "ipam": {
            "type": "host-local",
            "dataDir": str(tmp_path / "n1"),
            "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.244.1.0/24"}]],
        },
    }
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}
    assert NetworkConfigList.from_dict(conf).to_dict() == conf


def test_default_conflist_rejects_a_cidr_with_host_bits(tmp_path):
    with pytest.raises(ValueError):
        default_conflist(pod_cidr="10.244.1.7/24", ipam_data_dir=tmp_path)


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"cniVersion": "1.0.0", "name": "", "plugins": [{"type": "ptp"}]}, "name"),
        ({"cniVersion": "1.0.0", "name": "-bad", "plugins": [{"type": "ptp"}]}, "name"),
        ({"cniVersion": "9.9.9", "name": "n", "plugins": [{"type": "ptp"}]}, "cniVersion"),
        ({"cniVersion": "1.0.0", "name": "n", "plugins": []}, "no plugins"),
        ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"ipMasq": True}]}, "no type"),
        ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../../bin/sh"}]}, "file name"),
    ],
    ids=["empty-name", "name-leading-dash", "unknown-version", "no-plugins", "plugin-without-type", "type-is-path"],
)
def test_conflist_validation(data, problem):
    with pytest.raises(CniConfigError, match=problem):
        NetworkConfigList.from_dict(data)


def test_conflist_disable_check_accepts_the_spec_string():
    conf = NetworkConfigList.from_dict({"cniVersion": "0.4.0", "name": "n", "disableCheck": "true",
                                        "plugins": [{"type": "ptp"}]})
    assert conf.disable_check is True


def _conf() -> NetworkConfigList:
    return NetworkConfigList.from_dict({
        "cniVersion": "1.0.0", "name": "minicluster",
        "plugins": [
            {"type": "ptp", "name": "ignored", "cniVersion": "0.1.0", "ipam": {"type": "host-local"}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    })


def test_stdin_of_first_plugin_takes_list_name_and_version_and_no_prev_result():
    conf = _conf()
    caps = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    stdin = plugin_stdin(conf, conf.plugins[0], prev_result=None, capability_args=caps)
    assert stdin == {"type": "ptp", "name": "minicluster", "cniVersion": "1.0.0", "ipam": {"type": "host-local"}}


def test_stdin_of_chained_plugin_has_prev_result_and_its_capabilities_only():
    conf = _conf()
    caps = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}], "bandwidth": {"x": 1}}
    stdin = plugin_stdin(conf, conf.plugins[1], prev_result=PTP_RESULT_100, capability_args=caps)
    assert stdin["prevResult"] == PTP_RESULT_100
    assert stdin["runtimeConfig"] == {"portMappings": caps["portMappings"]}
    assert (stdin["name"], stdin["cniVersion"]) == ("minicluster", "1.0.0")
    json.dumps(stdin)  # what goes on stdin must serialise


def test_stdin_without_capability_values_has_no_runtime_config():
    conf = _conf()
    assert "runtimeConfig" not in plugin_stdin(conf, conf.plugins[1], prev_result=None, capability_args={})


def test_env_carries_all_cni_parameters():
    rt = RuntimeConf.for_pod(container_id="abc123", netns="/run/netns/mc-n1-x", namespace="default", name="web-0",
                             pod_uid="u-1")
    env = plugin_env("ADD", rt, cni_path=["/usr/lib/cni", "/opt/cni/bin"], base_env={"PATH": "/usr/bin"})
    assert env == {
        "PATH": "/usr/bin",
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "abc123",
        "CNI_NETNS": "/run/netns/mc-n1-x",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
                    "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1",
        "CNI_PATH": "/usr/lib/cni:/opt/cni/bin",
    }


def test_port_mappings_become_the_capability_argument():
    rt = RuntimeConf.for_pod(container_id="c", netns="/n", namespace="d", name="p",
                             port_mappings=[PortMapping(host_port=8080, container_port=80, protocol="TCP")])
    assert rt.capability_args == {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}


def test_cni_args_refuse_separators():
    rt = RuntimeConf(container_id="c", netns="/n", args=(("K8S_POD_NAME", "a;b"),))
    with pytest.raises(ValueError):
        rt.cni_args()


def test_parse_result_1_0_0():
    result = parse_result(PTP_RESULT_100)
    assert result.cni_version == "1.0.0"
    assert result.pod_ip() == "10.244.1.2"
    [ip] = result.addresses_of("eth0", sandbox="/run/netns/mc-n1-abc")
    assert ip.address == ipaddress.ip_interface("10.244.1.2/24")
    assert ip.gateway == ipaddress.ip_address("10.244.1.1")
    assert result.routes[0].dst == ipaddress.ip_network("0.0.0.0/0") and result.routes[0].gw is None
    assert result.raw == PTP_RESULT_100


def test_parse_result_0_4_0_with_dns():
    result = parse_result(BRIDGE_RESULT_040)
    assert result.pod_ip("eth0") == "10.0.0.5"
    assert result.addresses_of("veth3243") == []
    assert result.dns.nameservers == ("10.1.0.1",)
    assert result.routes[0].gw == ipaddress.ip_address("10.0.0.1")


@pytest.mark.parametrize("bad", [
    {"ips": [{"address": "not-an-ip"}]},
    {"interfaces": [{"mac": "00:11"}]},
    {"routes": [{"gw": "10.0.0.1"}]},
], ids=["bad-address", "interface-without-name", "route-without-dst"])
def test_malformed_results_are_decode_errors(bad):
    with pytest.raises(CniError) as info:
        parse_result(bad)
    assert info.value.code == 6


def test_result_without_ips_has_no_pod_ip():
    with pytest.raises(CniError):
        parse_result({"cniVersion": "1.0.0", "interfaces": []}).pod_ip()


@pytest.mark.parametrize(
    "returncode, stdout, expect",
    [
        (0, b"", None),
        (0, json.dumps(PTP_RESULT_100).encode(), PTP_RESULT_100),
        (0, b"  \n", None),
    ],
    ids=["del-success-prints-nothing", "add-result", "whitespace-only"],
)
def test_successful_outputs(returncode, stdout, expect):
    assert parse_plugin_output(command="ADD", plugin="ptp", returncode=returncode, stdout=stdout, stderr=b"") == expect


def test_error_object_becomes_typed_error():
    out = json.dumps({"cniVersion": "1.0.0", "code": 7, "msg": "invalid network config",
                      "details": "subnet missing"}).encode()
    with pytest.raises(CniError) as info:
        parse_plugin_output(command="ADD", plugin="host-local", returncode=1, stdout=out, stderr=b"log line")
    err = info.value
    assert (err.code, err.msg, err.details, err.plugin, err.command) == (7, "invalid network config",
                                                                         "subnet missing", "host-local", "ADD")
    assert err.well_known == "invalid network config"
    assert err.stderr == "log line"
    assert "ADD host-local" in str(err) and "code 7" in str(err)


def test_skel_error_code_999():
    out = b'{"code": 999, "msg": "ARGS: unknown args [\\"K8S_POD_NAMESPACE=default\\"]"}'
    with pytest.raises(CniError) as info:
        parse_plugin_output(command="ADD", plugin="ptp", returncode=1, stdout=out, stderr=b"")
    assert info.value.code == 999 and info.value.well_known is None


def test_failure_without_error_object_keeps_the_output():
    with pytest.raises(CniError) as info:
        parse_plugin_output(command="DEL", plugin="ptp", returncode=2, stdout=b"panic: boom", stderr=b"")
    assert info.value.code is None and info.value.details == "panic: boom"


def test_garbage_on_success_is_a_decode_error():
    with pytest.raises(CniError) as info:
        parse_plugin_output(command="ADD", plugin="ptp", returncode=0, stdout=b"{not json", stderr=b"")
    assert info.value.code == 6


@pytest.mark.parametrize("version, prev_on_del, check", [
    ("0.3.0", False, False), ("0.3.1", False, False), ("0.4.0", True, True), ("1.0.0", True, True),
], ids=["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
def test_version_dependent_behaviour(version, prev_on_del, check):
    assert prev_result_on_del(version) is prev_on_del
    assert check_supported(version) is check
