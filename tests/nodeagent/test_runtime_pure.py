"""Pure parts of the runtime: names, pod files, /proc parsing, the container command line."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

from services.nodeagent import procfs
from services.nodeagent.runtime import (
    ContainerInfo,
    Mount,
    Records,
    SandboxInfo,
    container_argv,
    is_sandbox_netns_name,
    netns_name,
    netns_prefix,
    pod_hostname,
    render_hosts,
    render_resolv_conf,
)


def test_netns_name_is_prefixed_per_node():
    name = netns_name("Kind-Worker_2", "0f1e2d3c-aaaa-bbbb", "abcdef0123")
    assert name == "mc-kind-worker-2-0f1e2d3c-abcdef"
    assert name.startswith(netns_prefix("Kind-Worker_2"))
    assert is_sandbox_netns_name("Kind-Worker_2", name)


@pytest.mark.parametrize("name", [
    "mc-n1-node", "mc-n1-0f1e2d3c-abcdeg", "mc-n1-0f1e2d3c-abcdef-x", "mc-n10-0f1e2d3c-abcdef", "cni-1234",
], ids=["node-ns", "not-hex", "suffix", "other-node", "foreign"])
def test_stray_sweep_only_matches_this_nodes_sandbox_names(name):
    assert not is_sandbox_netns_name("n1", name)


def test_resolv_conf_is_cluster_first():
    assert render_resolv_conf(namespace="shop", nameserver="10.96.0.10") == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )


def test_hosts_has_localhost_and_the_pod():
    text = render_hosts(ip="10.244.1.5", hostname="web-0", fqdn="web-0.web.shop.svc.cluster.local")
    lines = text.splitlines()
    assert "127.0.0.1\tlocalhost" in lines
    assert lines[-1] == "10.244.1.5\tweb-0.web.shop.svc.cluster.local\tweb-0"
    assert "web-0" not in render_hosts(ip="", hostname="web-0")  # before CNI gave an IP


@pytest.mark.parametrize("name, hostname, expect", [
    ("web-0", None, "web-0"),
    ("web-0", "custom", "custom"),
    ("a" * 70, None, "a" * 63),
    ("a" * 62 + "-b", None, "a" * 62),
], ids=["pod-name", "spec-hostname", "truncated", "no-trailing-dash"])
def test_pod_hostname(name, hostname, expect):
    assert pod_hostname(name, hostname) == expect


def test_parse_stat_survives_odd_command_names():
    line = "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0"
    st = procfs.parse_stat(line)
    assert (st.pid, st.state, st.pgrp, st.start_ticks) == (4242, "S", 4242, 987654)


def test_own_process_is_alive_and_identified_by_start_time():
    ticks = procfs.start_ticks(os.getpid())
    assert ticks is not None
    assert procfs.is_alive(os.getpid(), ticks)
    assert not procfs.is_alive(os.getpid(), ticks + 1)  # same PID, other process: PID reuse
    assert not procfs.is_alive(0, None)


@pytest.mark.parametrize("rc, code", [(0, 0), (3, 3), (-15, 143), (-9, 137)], ids=["ok", "error", "term", "kill"])
def test_exit_codes_use_128_plus_signal(rc, code):
    assert procfs.exit_code_from_returncode(rc) == code


def test_container_argv_enters_netns_then_new_uts_and_mount_namespaces():
    argv = container_argv(netns_path="/run/netns/mc-n-x", hostname="web-0", pod_dir="/s/p", working_dir="/w",
                          argv=["sleep", "1"])
    assert argv[0].endswith("nsenter") and argv[1] == "--net=/run/netns/mc-n-x"
    assert argv[3].endswith("unshare") and argv[4:6] == ["--uts", "--mount"]
    assert argv[-9:] == ["web-0", "/s/p/hostname", "/s/p/resolv.conf", "/s/p/hosts", "/s/p/scratch", "/w", "0",
                         "sleep", "1"]


def test_container_argv_passes_each_mount_as_source_target_and_mode():
    argv = container_argv(netns_path="/run/netns/mc-n-x", hostname="web-0", pod_dir="/s/p", working_dir="/w",
                          argv=["sleep", "1"], mounts=[Mount("/var/run/secrets/x", "/v/a", read_only=True),
                                                       Mount("/data", "/v/b")])
    assert argv[-10:] == ["/w", "2", "/v/a", "/var/run/secrets/x", "ro", "/v/b", "/data", "rw", "sleep", "1"]


def _sandbox(sid: str, **kw) -> SandboxInfo:
    fields = {"state": "SANDBOX_READY", **kw}
    return SandboxInfo(id=sid, pod_uid="u-" + sid, namespace="default", name="p-" + sid, node="n1",
                       netns_name="mc-n1-" + sid, netns_path="/run/netns/mc-n1-" + sid, pod_dir="/x/" + sid,
                       hostname="p-" + sid, created_at=1.0, **fields)


def _container(cid: str, sid: str, **kw) -> ContainerInfo:
    fields = {"state": "CONTAINER_RUNNING", **kw}
    return ContainerInfo(id=cid, sandbox_id=sid, name="c", image="busybox", attempt=0, argv=("sleep", "1"),
                         env={}, working_dir="/", log_path="/x/log", created_at=2.0, **fields)


def _recorded(records: Records, sid: str, *cids: str) -> None:
    records.sandbox_dir(sid).mkdir(parents=True)
    records.save_sandbox(_sandbox(sid))
    for cid in cids:
        records.container_dir(sid, cid).mkdir(parents=True)
        records.save_container(_container(cid, sid))


def test_records_are_served_from_memory_and_read_back_by_the_next_agent(tmp_path):
    records = Records(tmp_path)
    _recorded(records, "s2", "c3")
    _recorded(records, "s1", "c9", "c1")
    records.save_sandbox(replace(records.sandbox("s1"), ip="10.244.0.5"))
    assert [s.id for s in records.sandboxes()] == ["s1", "s2"]
    assert [c.id for c in records.containers()] == ["c1", "c9", "c3"]  # by sandbox, then id
    assert [c.id for c in records.containers("s2")] == ["c3"]
    again = Records(tmp_path)  # an agent restart
    assert again.sandboxes() == records.sandboxes() and again.sandbox("s1").ip == "10.244.0.5"
    assert again.containers() == records.containers()
    assert not again.unreadable


def test_removed_records_stay_removed(tmp_path):
    records = Records(tmp_path)
    _recorded(records, "s1", "c1", "c2")
    _recorded(records, "s2", "c3")
    records.remove_container(records.container("c2"))
    records.update_container(_container("c2", "s1", state="CONTAINER_EXITED"))  # a late exit report
    records.remove_sandbox("s2")
    records.update_sandbox(_sandbox("s2", state="SANDBOX_NOTREADY"))  # a teardown finishing late
    assert [c.id for c in records.containers()] == ["c1"] and records.sandbox("s2") is None
    assert not records.sandbox_dir("s2").exists() and not records.container_dir("s1", "c2").exists()
    again = Records(tmp_path)
    assert [s.id for s in again.sandboxes()] == ["s1"] and [c.id for c in again.containers()] == ["c1"]


@pytest.mark.parametrize("content", ["", '{"id": "s1"', '{"id": "s1"}', "[]"],
                         ids=["empty", "cut-short", "fields-missing", "not-an-object"])
def test_a_record_cut_short_is_left_out_and_listed(tmp_path, content):
    records = Records(tmp_path)
    _recorded(records, "s1", "c1")
    _recorded(records, "s2")
    (records.sandbox_dir("s1") / "sandbox.json").write_text(content)
    (records.container_dir("s1", "c1") / "container.json").write_text(content)
    again = Records(tmp_path)
    assert [s.id for s in again.sandboxes()] == ["s2"] and again.containers() == []
    assert sorted(again.unreadable) == [records.sandbox_dir("s1"), records.container_dir("s1", "c1")]
