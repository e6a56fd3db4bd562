"""What an operator does to the cluster's etcd (`minikubectl cluster etcd ...`), through
etcd's own API as etcdctl does it:

- `status`: each member's version, database size, Raft term and index, and which leads
  (etcdctl endpoint status);
- `snapshot save FILE`: the database of one member that answers, streamed by etcd's Snapshot
  call into FILE (written beside it, then renamed: a failed save leaves no half file), then
  checked with `etcdctl snapshot status`;
- `defrag`: each member's backend defragmented in turn, its free pages given back (etcdctl
  defrag); the API server compacts history every 5 minutes, defragmentation is the operator's;
- `snapshot restore FILE`: the whole etcd back to a snapshot (`snapshot_restore`);
- `member replace NAME`: a lost member replaced by an empty one that syncs from the others
  (`member_replace`).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aetcd

from cluster.config import ClusterConfig, copy_name, load_state


class EtcdOpError(Exception):
    """An etcd operation failed; the message is for the user."""


@dataclass
class MemberStatus:
    endpoint: str
    name: str
    version: str
    db_size: int
    leader: bool
    raft_term: int
    raft_index: int
    error: str = ""


def _client(endpoint: str, timeout: float = 5.0) -> aetcd.Client:
    host, port = endpoint.rsplit(":", 1)
    return aetcd.Client(host=host, port=int(port), timeout=timeout)


async def _one_status(endpoint: str) -> MemberStatus:
    try:
        async with _client(endpoint) as client:
            names = {m.id: m.name async for m in client.members()}
            me = await client.maintenancestub.Status(aetcd.rpc.StatusRequest(), timeout=5, metadata=client.metadata)
    except Exception as exc:  # aetcd raises its own and gRPC's: the member is down either way
        return MemberStatus(endpoint, "", "", 0, False, 0, 0, error=str(exc).splitlines()[0] if str(exc) else
                            type(exc).__name__)
    return MemberStatus(endpoint, names.get(me.header.member_id, "?"), me.version, me.dbSize,
                        me.leader == me.header.member_id, me.raftTerm, me.raftIndex)


async def statuses(endpoints: list[str]) -> list[MemberStatus]:
    return list(await asyncio.gather(*(_one_status(e) for e in endpoints)))


def format_statuses(members: list[MemberStatus]) -> str:
    rows = [("ENDPOINT", "NAME", "VERSION", "DB SIZE", "IS LEADER", "RAFT TERM", "RAFT INDEX")]
    for m in members:
        if m.error:
            rows.append((m.endpoint, "-", "-", "-", "-", "-", f"error: {m.error}"))
        else:
            rows.append((m.endpoint, m.name, m.version, _size(m.db_size), str(m.leader).lower(),
                         str(m.raft_term), str(m.raft_index)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


async def _stream_snapshot(endpoint: str, out: BinaryIO) -> None:
    async with _client(endpoint, timeout=60) as client:
        await client.snapshot(out)


def snapshot_save(endpoints: list[str], path: Path) -> dict:
    """The database of the first member that answers into `path`; -> etcdctl's snapshot status
    of the file (hash, revision, totalKey, totalSize)."""
    tmp = path.with_name(path.name + ".part")
    errors = []
    for endpoint in endpoints:
        try:
            with open(tmp, "wb") as out:
                asyncio.run(_stream_snapshot(endpoint, out))
                out.flush()
                os.fsync(out.fileno())
            break
        except Exception as exc:  # this member failed: the next may answer
            errors.append(f"{endpoint}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            tmp.unlink(missing_ok=True)
    else:
        raise EtcdOpError("no etcd member gave a snapshot: " + "; ".join(errors))
    try:
        checked = _snapshot_status(tmp)
    except EtcdOpError as exc:
        tmp.unlink(missing_ok=True)
        raise EtcdOpError(f"the snapshot does not check out: {exc}") from None
    os.replace(tmp, path)
    return checked


def _snapshot_status(path: Path) -> dict:
    """etcdctl's `snapshot status` of a file (hash, revision, totalKey, totalSize)."""
    checked = subprocess.run(["etcdctl", "snapshot", "status", str(path), "-w", "json"], capture_output=True,
                             text=True, check=False, env={**os.environ, "ETCDCTL_API": "3"})
    if checked.returncode != 0:
        raise EtcdOpError(checked.stderr.strip() or checked.stdout.strip())
    return dict(json.loads(checked.stdout))


async def defrag(endpoints: list[str]) -> list[str]:
    """Defragment every member in turn (one at a time: a member defragmenting answers nothing
    else); -> a line per member."""
    lines = []
    for endpoint in endpoints:
        try:
            async with _client(endpoint, timeout=60) as client:
                await client.defragment()
            lines.append(f"Finished defragmenting etcd member[{endpoint}]")
        except Exception as exc:
            raise EtcdOpError(f"defragmenting {endpoint}: {str(exc).splitlines()[0]}") from None
    return lines


# --- operations on the running local cluster (its supervisor holds what is worked on) --------

def _stop(cfg: ClusterConfig, names: list[str], timeout: float = 20.0) -> None:
    """SIGTERM the components (by the PIDs the supervisor recorded) and wait for them to end."""
    from cluster.supervisor import _alive, end_processes

    state = load_state(cfg.state_dir) or {}
    pids = [c["pid"] for n, c in (state.get("components") or {}).items() if n in names and c.get("pid")]
    end_processes(pids, cfg.name, timeout=timeout)
    if any(_alive(p) for p in pids):
        raise EtcdOpError(f"{', '.join(names)} did not stop")


def _wait_healthy(urls: list[str], timeout: float, cafile: str | None = None) -> None:
    from cluster.supervisor import http_ok

    deadline = time.monotonic() + timeout
    for url in urls:
        while not http_ok(url, 1.0, cafile):
            if time.monotonic() > deadline:
                raise EtcdOpError(f"{url} not healthy after {timeout:.0f}s")
            time.sleep(0.3)


def member_replace(cfg: ClusterConfig, name: str) -> str:
    """Replace the member `name` (a component: etcd, etcd-2, ...) by a new, empty one with the
    same name and addresses, as after losing its disk: stop it (held: the supervisor does not
    start it meanwhile), remove it from the cluster and add it back through the other members,
    empty its data dir, and let it start again joining the existing cluster (etcd's
    --initial-cluster-state existing), from which it gets every key. -> what was done."""
    from cluster.supervisor import hold, set_extra_args

    names = [copy_name("etcd", k) for k in range(cfg.etcd_members)]
    if cfg.etcd_members < 3:
        raise EtcdOpError("member replace needs a cluster of 3 etcd members (cluster up --ha)")
    if name not in names:
        raise EtcdOpError(f"no etcd member {name!r}: the members are {', '.join(names)}")
    k = names.index(name)
    client_port = cfg.etcd_ports(k)[0]
    peer_url = cfg.etcd_peer_url(k)
    others = [e for i, e in enumerate(cfg.etcd_endpoints) if i != k]
    hold(cfg, [name])
    try:
        _stop(cfg, [name])
        asyncio.run(_remove_and_add(others, cfg.etcd_member_name(k), peer_url))
        shutil.rmtree(cfg.etcd_data_dir(k), ignore_errors=True)
        set_extra_args(cfg, name, ["--initial-cluster-state", "existing"])
    finally:
        hold(cfg, [name], held=False)
    _wait_healthy([f"http://127.0.0.1:{client_port}/health"], timeout=60)
    return (f"etcd member {cfg.etcd_member_name(k)} ({name}) replaced: a new member at {peer_url}, "
            "synced from the others")


async def _remove_and_add(others: list[str], member_name: str, peer_url: str) -> None:
    errors = []
    for endpoint in others:
        try:
            async with _client(endpoint, timeout=10) as client:
                for m in [m async for m in client.members()]:
                    if m.name == member_name or peer_url in m.peer_urls:
                        await client.remove_member(m.id)
                await client.add_member([peer_url])
            return
        except Exception as exc:  # this member did not answer: the next may
            errors.append(f"{endpoint}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise EtcdOpError("no other etcd member answered: " + "; ".join(errors))


def snapshot_restore(cfg: ClusterConfig, path: Path) -> str:
    """The cluster's etcd back to a saved snapshot, as kubeadm's guide restores one: the API
    servers and every member stopped (held), each member's data dir made anew from the file by
    `etcdctl snapshot restore` (a new cluster of the same members; the old dirs kept until the
    new ones are in place), then all started again. Controllers and node agents re-list from
    the API servers when those answer. -> what was done."""
    from cluster.supervisor import hold

    if not path.is_file():
        raise EtcdOpError(f"{path}: no such file")
    try:
        checked = _snapshot_status(path)
    except EtcdOpError as exc:
        raise EtcdOpError(f"{path} is not an etcd snapshot: {exc}") from None
    members = [copy_name("etcd", k) for k in range(cfg.etcd_members)]
    apiservers = [copy_name("apiserver", k) for k in range(len(cfg.control_plane_ips))]
    initial = cfg.etcd_initial_cluster
    hold(cfg, members + apiservers)
    try:
        _stop(cfg, apiservers + members)
        fresh = []
        for k in range(cfg.etcd_members):
            target = cfg.etcd_data_dir(k)
            new = target.with_name(target.name + ".restoring")
            shutil.rmtree(new, ignore_errors=True)
            argv = ["etcdctl", "snapshot", "restore", str(path), "--name", cfg.etcd_member_name(k),
                    "--initial-cluster", initial,
                    "--initial-advertise-peer-urls", cfg.etcd_peer_url(k),
                    "--data-dir", str(new)]
            if cfg.etcd_members > 1:
                argv += ["--initial-cluster-token", cfg.etcd_cluster_token]
            res = subprocess.run(argv, capture_output=True, text=True, check=False,
                                 env={**os.environ, "ETCDCTL_API": "3"})
            if res.returncode != 0:
                raise EtcdOpError(f"restoring member {cfg.etcd_member_name(k)}: {res.stderr.strip()}")
            fresh.append((new, target))
        for new, target in fresh:
            old = target.with_name(target.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                target.rename(old)
            new.rename(target)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        hold(cfg, members + apiservers, held=False)
    _wait_healthy([f"http://{e}/health" for e in cfg.etcd_endpoints], timeout=60)
    _wait_healthy([u + "/readyz" for u in cfg.apiserver_urls], timeout=90, cafile=str(cfg.ca_file))
    revision = checked.get("revision")
    return f"etcd restored from {path} (revision {revision}) on {len(members)} member(s); API servers ready"
