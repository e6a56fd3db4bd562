"""The side-effect half of the proxy: iptables-save, iptables-restore, conntrack.

Every command can run inside a named network namespace (`ip netns exec <ns>`),
which is how the tests and benchmarks exercise real netfilter without touching
the host's rules.

One sync is one `iptables-save` per table (to find stale chains and check the
jumps from built-in chains) and exactly one `iptables-restore --noflush` with
both tables, so the kernel never sees a half-written service.

The commands sit behind two narrow Protocols, `Iptables` (save one table, restore
text) and `Conntrack` (delete one UDP flow filter), like kube-proxy's
`utiliptables.Interface`: the applier and the proxier take them as arguments, so
their tests run against the in-memory fakes of `tests/fakes/iptables.py`, and the
real implementations here (`IptablesCommands`, `ConntrackCommands`) are exercised
in network namespaces.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.proxy.conntrack import UdpFlowFilter
from services.proxy.restore import RestorePlan, SavedTable, parse_iptables_save, plan_restore
from services.proxy.rules import Ruleset

log = logging.getLogger(__name__)

TABLES = ("nat", "filter")
COMMAND_TIMEOUT = 30.0  # seconds; iptables-restore of thousands of rules takes well under 1


class CommandError(RuntimeError):
    """A command exited with an unexpected status; stderr is kept for the log."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)!s} exited {returncode}: {stderr.strip()}")
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def in_netns(argv: Sequence[str], netns: str | None) -> list[str]:
    """Prefix a command so it runs in `netns` (or unchanged for the current namespace)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


async def run_command(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    stdin: str | None = None,
    ok_codes: Iterable[int] = (0,),
    timeout: float = COMMAND_TIMEOUT,
) -> CommandResult:
    """Run one command without a shell; raise CommandError unless its status is in ok_codes.
    A command that hangs (the xtables lock held, a wedged netns) is killed after `timeout`
    and is a CommandError, so one stuck call does not stop every later sync; a cancelled
    caller takes its command down with it."""
    full = in_netns(argv, netns)
    proc = await asyncio.create_subprocess_exec(
        *full,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    except TimeoutError:
        await _reap(proc)
        raise CommandError(full, -9, f"no answer in {timeout:g}s: killed") from None
    except BaseException:
        await _reap(proc)
        raise
    result = CommandResult(tuple(full), proc.returncode or 0, out.decode(), err.decode())
    if result.returncode not in tuple(ok_codes):
        raise CommandError(full, result.returncode, result.stderr)
    return result


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())


class Iptables(Protocol):
    """iptables of one network namespace, as the proxy uses it."""

    async def save(self, table: str) -> str:
        """`iptables-save -t <table>`: the table's chains and rules as text."""
        ...

    async def restore(self, text: str) -> None:
        """`iptables-restore --noflush`: apply `text` in one transaction, or raise CommandError."""
        ...


class Conntrack(Protocol):
    """The conntrack table of one network namespace."""

    async def delete(self, flow: UdpFlowFilter) -> None:
        """Delete the entries `flow` matches (none matching is fine); raise CommandError or
        OSError when the deletion itself failed."""
        ...


class IptablesCommands:
    """`Iptables` by running iptables-save and iptables-restore (in `netns`, if given)."""

    def __init__(self, *, netns: str | None = None) -> None:
        self.netns = netns

    async def save(self, table: str) -> str:
        return (await run_command(["iptables-save", "-t", table], netns=self.netns)).stdout

    async def restore(self, text: str) -> None:
        await run_command(["iptables-restore", "--noflush"], netns=self.netns, stdin=text)


class ConntrackCommands:
    """`Conntrack` by running the conntrack tool (in `netns`, if given)."""

    def __init__(self, *, netns: str | None = None) -> None:
        self.netns = netns

    async def delete(self, flow: UdpFlowFilter) -> None:
        # conntrack exits 1 with "0 flow entries have been deleted" when nothing matched,
        # which is the common case and not an error.
        argv = ["conntrack", *flow.conntrack_args()]
        result = await run_command(argv, netns=self.netns, ok_codes=(0, 1))
        if result.returncode == 1 and "0 flow entries" not in result.stderr:
            raise CommandError(result.argv, result.returncode, result.stderr)


async def read_tables(iptables: Iptables) -> dict[str, SavedTable]:
    """Current nat and filter tables (a table nobody has used yet comes back empty)."""
    outputs = await asyncio.gather(*(iptables.save(table) for table in TABLES))
    tables: dict[str, SavedTable] = {}
    for text in outputs:
        tables.update(parse_iptables_save(text))
    return tables


async def supports_random_fully(*, netns: str | None = None) -> bool:
    """MASQUERADE --random-fully needs iptables >= 1.6.2 (kube-proxy checks the same)."""
    result = await run_command(["iptables", "--version"], netns=netns)
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", result.stdout)
    if not match:
        return False
    return tuple(int(part) for part in match.groups()) >= (1, 6, 2)


async def delete_udp_flows(flows: Iterable[UdpFlowFilter], conntrack: Conntrack) -> int:
    """Delete conntrack entries; returns how many filters failed.

    A failure is logged and counted but does not fail the sync: the rules are already in.
    """
    failed = 0
    for flow in flows:
        try:
            await conntrack.delete(flow)
        except CommandError as exc:
            if exc.returncode == 1:  # ran, and said why nothing was deleted
                log.warning("conntrack %s failed: %s", flow.conntrack_args(), exc.stderr.strip())
            else:
                log.warning("conntrack delete failed: %s", exc)
            failed += 1
        except OSError as exc:
            log.warning("conntrack delete failed: %s", exc)
            failed += 1
    return failed


class IptablesApplier:
    """Moves one network namespace's nat/filter tables to a desired Ruleset.

    It remembers the chains it last wrote successfully.  A partial sync skips
    chains whose rules are unchanged; a full sync (first sync, periodic
    resync, after any failure) rewrites every chain, repairing whatever was
    changed behind our back.
    """

    def __init__(self, *, netns: str | None = None, iptables: Iptables | None = None) -> None:
        self.netns = netns
        self.iptables: Iptables = iptables if iptables is not None else IptablesCommands(netns=netns)
        self._written: dict[str, Mapping[str, tuple[str, ...]]] | None = None

    def forget(self) -> None:
        """Force the next apply to be a full rewrite."""
        self._written = None

    def written(self) -> Mapping[str, Mapping[str, tuple[str, ...]]] | None:
        """Table -> chain -> the `-A` lines of the last successful apply (None: unknown)."""
        return self._written

    async def apply(self, desired: Ruleset, *, full: bool = False) -> RestorePlan:
        """Apply `desired` with one iptables-restore; a partial apply reads nothing back."""
        previous = self._written
        if full or previous is None:
            plan = plan_restore(desired, await read_tables(self.iptables))
        else:
            unchanged = {
                table.name: [
                    chain
                    for chain, rules in table.chains.items()
                    if previous.get(table.name, {}).get(chain) == rules
                ]
                for table in desired.tables()
            }
            plan = plan_restore(
                desired,
                None,
                unchanged=unchanged,
                previously_written={name: list(chains) for name, chains in previous.items()},
            )
        # Until the restore is known to have succeeded, nothing we remember can
        # be trusted: the next apply must then be a full one.
        self._written = None
        await self.iptables.restore(plan.text)
        self._written = {table.name: dict(table.chains) for table in desired.tables()}
        return plan
