"""What an operator does to the cluster's etcd (`minikubectl cluster etcd ...`), through
etcd's own API as etcdctl does it:

- `status`: each member's version, database size, Raft term and index, and which leads
  (etcdctl endpoint status);
- `snapshot save FILE`: the database of one member that answers, streamed by etcd's Snapshot
  call into FILE (written beside it, then renamed: a failed save leaves no half file), then
  checked with `etcdctl snapshot status`;
- `defrag`: each member's backend defragmented in turn, its free pages given back (etcdctl
  defrag); the API server compacts history every 5 minutes, defragmentation is the operator's.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aetcd


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
            status = await client.status()
            names = {m.id: m.name async for m in client.members()}
            me = await client.maintenancestub.Status(aetcd.rpc.StatusRequest(), timeout=5, metadata=client.metadata)
    except Exception as exc:  # aetcd raises its own and gRPC's: the member is down either way
        return MemberStatus(endpoint, "", "", 0, False, 0, 0, error=str(exc).splitlines()[0] if str(exc) else
                            type(exc).__name__)
    return MemberStatus(endpoint, names.get(me.header.member_id, "?"), status.version, status.db_size,
                        status.leader is not None and status.leader.id == me.header.member_id,
                        status.raft_term, status.raft_index)


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
    checked = subprocess.run(["etcdctl", "snapshot", "status", str(tmp), "-w", "json"], capture_output=True,
                             text=True, check=False, env={**os.environ, "ETCDCTL_API": "3"})
    if checked.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise EtcdOpError(f"the snapshot does not check out: {checked.stderr.strip() or checked.stdout.strip()}")
    os.replace(tmp, path)
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
