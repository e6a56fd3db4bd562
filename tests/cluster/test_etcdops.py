"""`cluster etcd status|snapshot save|defrag` against a real 3-member etcd."""
from __future__ import annotations

import asyncio
import subprocess

import pytest

from cluster import etcdops
from cluster.etcd import EtcdCluster
from cluster.procs import free_port
from services.apiserver.storage.etcd import Etcd, put

pytestmark = pytest.mark.etcd


@pytest.fixture(scope="module")
def members():
    with EtcdCluster(3) as cluster:
        yield cluster


async def test_status_names_every_member_and_one_leader(members):
    found = await etcdops.statuses(members.endpoints)
    assert [m.endpoint for m in found] == members.endpoints
    assert {m.name for m in found} == {"m0", "m1", "m2"} and not any(m.error for m in found)
    assert sum(m.leader for m in found) == 1
    assert len({m.raft_term for m in found}) == 1
    table = etcdops.format_statuses(found)
    assert table.splitlines()[0].split()[:2] == ["ENDPOINT", "NAME"] and len(table.splitlines()) == 4
    down = await etcdops.statuses([f"127.0.0.1:{free_port()}"])
    assert down[0].error and "error:" in etcdops.format_statuses(down)


async def test_snapshot_holds_what_was_written_and_restores(members, tmp_path):
    etcd = Etcd(members.endpoints)
    try:
        for i in range(20):
            await etcd.txn([], [put(f"/registry/snap/{i}", b"v" * 100)])
        revision = await etcd.revision()
    finally:
        await etcd.close()
    path = tmp_path / "snap.db"
    checked = await asyncio.to_thread(etcdops.snapshot_save, members.endpoints, path)
    assert checked["revision"] >= revision and checked["totalKey"] >= 20
    assert not (tmp_path / "snap.db.part").exists()
    # etcd's own tool restores it into a data dir, and a member started there has the keys
    restored = tmp_path / "restored"
    subprocess.run(["etcdctl", "snapshot", "restore", str(path), "--data-dir", str(restored)], check=True,
                   capture_output=True, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
    from cluster.etcd import EtcdProcess
    with EtcdProcess(data_dir=restored, name="default") as member:
        back = Etcd([member.endpoint])
        try:
            kvs, _, _ = await back.get_prefix("/registry/snap/")
        finally:
            await back.close()
    assert len(kvs) == 20


async def test_snapshot_from_no_member_is_one_error_and_no_file(tmp_path):
    with pytest.raises(etcdops.EtcdOpError, match="no etcd member gave a snapshot"):
        await asyncio.to_thread(etcdops.snapshot_save, [f"127.0.0.1:{free_port()}"], tmp_path / "x.db")
    assert list(tmp_path.iterdir()) == []


async def test_defrag_every_member(members):
    lines = await etcdops.defrag(members.endpoints)
    assert lines == [f"Finished defragmenting etcd member[{e}]" for e in members.endpoints]
