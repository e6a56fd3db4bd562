"""The CNI executor against the real reference plugins, in a scratch node namespace."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.nodeagent.cni import (
    CniDeleteError,
    CniError,
    CniExecutor,
    CniPluginNotFound,
    CniTimeoutError,
    NetworkConfigList,
    RuntimeConf,
)
from tests.nodeagent.conftest import POD_CIDR, leases, needs_netns

pytestmark = needs_netns


@pytest.fixture
def pod_netns(node_name):
    name = f"mc-{node_name}-pod"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def _links(netns: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-n", netns, "-j", "link"], check=True, capture_output=True,
                                     text=True).stdout)


async def test_validate_finds_plugins_speaking_the_list_version(cni):
    await cni.validate()
    info = await cni.version("ptp")
    assert "1.0.0" in info.supported_versions


async def test_add_check_del_del(cni, pod_netns, node_netns, ipam_dir):
    rt = RuntimeConf.for_pod(container_id="cid-1", netns=f"/run/netns/{pod_netns}", namespace="default", name="p1")
    result = await cni.add(rt)
    ip = result.pod_ip("eth0")
    assert ip.startswith("10.244.1.")
    # The chain went through portmap, which echoes ptp's result: the sandbox interface is eth0.
    assert [i.name for i in result.interfaces if i.sandbox] == ["eth0"]
    assert leases(ipam_dir) == [ip]
    host_veths = [link["ifname"] for link in _links(node_netns) if link["ifname"] != "lo"]
    assert len(host_veths) == 1

    await cni.check(rt, prev_result=result.raw)

    await cni.delete(rt, prev_result=result.raw)
    assert leases(ipam_dir) == []
    assert [link["ifname"] for link in _links(node_netns)] == ["lo"]
    # DEL again: everything is already gone, and that is success.
    await cni.delete(rt, prev_result=result.raw)
    await cni.delete(RuntimeConf(container_id="cid-1", netns=""), prev_result=None)


async def test_failed_add_reports_the_plugin_error(conflist, node_netns, pod_netns):
    bad = NetworkConfigList.from_dict({**conflist.to_dict(), "plugins": [
        {**conflist.plugins[0], "ipam": {**conflist.plugins[0]["ipam"], "ranges": [[{"subnet": "nonsense"}]]}},
    ]})
    executor = CniExecutor(bad, host_netns=node_netns)
    with pytest.raises(CniError) as info:
        await executor.add(RuntimeConf(container_id="c", netns=f"/run/netns/{pod_netns}"))
    assert info.value.plugin == "ptp" and info.value.command == "ADD"
    assert info.value.code is not None and info.value.msg


def _script(path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


async def test_del_runs_every_plugin_even_after_a_failure(tmp_path, node_netns):
    """A misbehaving plugin must not stop the others from releasing what they hold."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _script(bindir / "fails", f'echo "$CNI_COMMAND fails" >> "{tmp_path}/calls"; '
                              'echo \'{"cniVersion":"1.0.0","code":5,"msg":"disk on fire"}\'; exit 1\n')
    _script(bindir / "works", f'cat > "{tmp_path}/stdin-$CNI_COMMAND"; '
                              f'echo "$CNI_COMMAND works" >> "{tmp_path}/calls"\n')
    conf = NetworkConfigList.from_dict({"cniVersion": "1.0.0", "name": "t",
                                        "plugins": [{"type": "works"}, {"type": "fails"}]})
    executor = CniExecutor(conf, bin_dirs=[str(bindir)], host_netns=node_netns)
    with pytest.raises(CniDeleteError) as info:
        await executor.delete(RuntimeConf(container_id="c", netns=""), prev_result={"cniVersion": "1.0.0"})
    assert (tmp_path / "calls").read_text().splitlines() == ["DEL fails", "DEL works"]
    [err] = info.value.errors
    assert (err.plugin, err.code, err.msg) == ("fails", 5, "disk on fire")
    stdin = json.loads((tmp_path / "stdin-DEL").read_text())
    assert stdin == {"type": "works", "name": "t", "cniVersion": "1.0.0", "prevResult": {"cniVersion": "1.0.0"}}


async def test_hung_plugin_is_killed_at_the_timeout(tmp_path, node_netns):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _script(bindir / "hangs", f"echo $$ > {tmp_path}/pid; exec sleep 30\n")
    conf = NetworkConfigList.from_dict({"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "hangs"}]})
    executor = CniExecutor(conf, bin_dirs=[str(bindir)], host_netns=node_netns, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(CniTimeoutError):
        await executor.add(RuntimeConf(container_id="c", netns="/nonexistent"))
    assert time.monotonic() - started < 5
    pid = int((tmp_path / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


async def test_missing_plugin(conflist, node_netns, tmp_path):
    executor = CniExecutor(conflist, bin_dirs=[str(tmp_path)], host_netns=node_netns)
    with pytest.raises(CniPluginNotFound):
        await executor.add(RuntimeConf(container_id="c", netns="/nonexistent"))


def test_pod_cidr_constant_matches_conflist(conflist):
    assert conflist.plugins[0]["ipam"]["ranges"] == [[{"subnet": POD_CIDR}]]


def test_no_wrapper_when_the_agent_runs_inside_the_node_namespace(conflist, node_netns, pod_netns, ipam_dir):
    """How the launcher runs the agent: already in the node namespace, `host_netns` unset."""
    script = (
        "import asyncio, json, sys\n"
        "from services.nodeagent.cni import CniExecutor, NetworkConfigList, RuntimeConf\n"
        "conf = NetworkConfigList.from_dict(json.loads(sys.argv[1]))\n"
        "ex = CniExecutor(conf)\n"
        "rt = RuntimeConf(container_id='inside', netns=sys.argv[2])\n"
        "async def main():\n"
        "    r = await ex.add(rt)\n"
        "    print(r.pod_ip())\n"
        "    await ex.delete(rt, prev_result=r.raw)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        ["nsenter", f"--net=/run/netns/{node_netns}", "--", sys.executable, "-c", script,
         json.dumps(conflist.to_dict()), f"/run/netns/{pod_netns}"],
        check=True, capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[2]),
    ).stdout
    assert out.strip().startswith("10.244.1.")
    assert leases(ipam_dir) == []
    assert [link["ifname"] for link in _links(node_netns)] == ["lo"]
