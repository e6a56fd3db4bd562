"""In-memory iptables and conntrack for the proxy's tests, like kube-proxy's `iptablestest.NewFake()`.

`FakeIptables` keeps each table as chains of rule lines, applies `iptables-restore
--noflush` input to them as netfilter does, and answers `iptables-save -t` from them:

- declaring `:CHAIN` creates the chain, or flushes it if it exists;
- `-A`, `-I CHAIN N`, `-D` (by rule spec or number) and `-X` change the chains, and fail
  where the kernel refuses: an unknown chain, a jump to a chain that does not exist, a
  rule to delete that is not there, deleting a built-in, non-empty or referenced chain;
- one restore is one transaction: a failing line leaves every table as it was.

Every call is recorded (`calls`, and each restore input in `restores`), so tests assert
both what the proxy sent and what the tables hold afterwards. `fail_next_restore` makes
restores fail the way a broken iptables would.

Unlike the kernel it keeps rules exactly as written (iptables-save would print
`-d 10.96.0.10/32` for `-d 10.96.0.10` and add `-m tcp`) and keeps no counters; the
netns tests in tests/proxy cover the real normalisation.
"""
from __future__ import annotations

import copy
import shlex

from services.proxy.conntrack import UdpFlowFilter
from services.proxy.iptables import CommandError

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
# Targets that are extensions, not chains: a jump to anything else needs the chain.
EXTENSION_TARGETS = frozenset({
    "ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "SNAT", "MASQUERADE", "MARK", "LOG",
    "CONNMARK", "NOTRACK", "QUEUE",
})
RESTORE_ARGV = ("iptables-restore", "--noflush")

Tables = dict[str, dict[str, list[str]]]  # table -> chain -> rule specs (after "-A CHAIN ")


class RestoreError(Exception):
    """One line of restore input the kernel would refuse."""


class FakeIptables:
    """`services.proxy.iptables.Iptables` in memory."""

    def __init__(self, initial: str = "") -> None:
        """Start with the built-in chains of nat and filter, plus `initial` (restore
        input, applied without being recorded) for state left by others."""
        self.tables: Tables = {name: {chain: [] for chain in chains} for name, chains in BUILTIN_CHAINS.items()}
        self.calls: list[tuple[str, ...]] = []
        self.restores: list[str] = []  # every restore input, the failed ones too
        self._failures: list[str] = []
        if initial:
            self.tables = _applied(self.tables, initial)

    # -- the Iptables protocol ------------------------------------------------------------

    async def save(self, table: str) -> str:
        self.calls.append(("iptables-save", "-t", table))
        return self.dump(table)

    async def restore(self, text: str) -> None:
        self.calls.append(RESTORE_ARGV)
        self.restores.append(text)
        if self._failures:
            raise CommandError(RESTORE_ARGV, 1, self._failures.pop(0))
        try:
            self.tables = _applied(self.tables, text)
        except RestoreError as exc:
            raise CommandError(RESTORE_ARGV, 2, str(exc)) from None

    # -- for tests --------------------------------------------------------------------------

    def fail_next_restore(self, times: int = 1, stderr: str = "iptables-restore: line 1 failed") -> None:
        """The next `times` restores fail without changing anything."""
        self._failures.extend([stderr] * times)

    def dump(self, table: str) -> str:
        """What `iptables-save -t table` prints: built-in chains first, then the others by
        name, then every rule chain by chain (no counters, no comment lines)."""
        chains = self.tables.get(table)
        if chains is None:
            return ""
        builtin = BUILTIN_CHAINS.get(table, ())
        order = [c for c in builtin if c in chains] + sorted(c for c in chains if c not in builtin)
        lines = [f"*{table}"]
        lines.extend(f":{c} ACCEPT [0:0]" if c in builtin else f":{c} - [0:0]" for c in order)
        lines.extend(f"-A {c} {spec}" for c in order for spec in chains[c])
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def chains(self, table: str) -> set[str]:
        return set(self.tables.get(table, {}))

    def rules(self, table: str, chain: str) -> list[str]:
        """The chain's rules as `-A CHAIN ...` lines, in order."""
        return [f"-A {chain} {spec}" for spec in self.tables[table][chain]]

    def clear_calls(self) -> None:
        self.calls.clear()
        self.restores.clear()


class FakeConntrack:
    """`services.proxy.iptables.Conntrack` in memory: records the flow filters deleted."""

    def __init__(self) -> None:
        self.deleted: list[UdpFlowFilter] = []
        self.failing: set[UdpFlowFilter] = set()  # these raise, as a broken conntrack would

    async def delete(self, flow: UdpFlowFilter) -> None:
        if flow in self.failing:
            raise CommandError(("conntrack", *flow.conntrack_args()), 2, "conntrack v1.4.7: operation failed")
        self.deleted.append(flow)


# -- applying restore input -------------------------------------------------------------------

def _applied(tables: Tables, text: str) -> Tables:
    """`tables` after the restore input `text`; raises RestoreError, changing nothing."""
    staged = copy.deepcopy(tables)
    table: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("*"):
                table = line[1:]
                staged.setdefault(table, {})
            elif table is None:
                raise RestoreError("no table declared")
            elif line == "COMMIT":
                table = None
            elif line.startswith(":"):
                staged[table][line[1:].split()[0]] = []  # a new chain, or an existing one flushed
            else:
                _apply_command(table, staged[table], line)
        except RestoreError as exc:
            raise RestoreError(f"iptables-restore: line {number} failed: {exc}") from None
    if table is not None:
        raise RestoreError("iptables-restore: COMMIT expected at the end")
    return staged


def _apply_command(table: str, chains: dict[str, list[str]], line: str) -> None:
    """One `-A/-I/-D/-X CHAIN ...` line; rule specs are kept as written."""
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise RestoreError("bad command")
    command, chain, spec = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
    if chain not in chains:
        raise RestoreError(f"chain '{chain}' does not exist")
    if command == "-A":
        chains[chain].append(_checked(chains, spec))
    elif command == "-I":
        first, _, after = spec.partition(" ")
        position, spec = (int(first), after.strip()) if first.isdigit() else (1, spec)
        chains[chain].insert(position - 1, _checked(chains, spec))
    elif command == "-D":
        _delete_rule(chains[chain], spec)
    elif command == "-X" and not spec:
        _delete_chain(table, chains, chain)
    else:
        raise RestoreError(f"unknown command {command}")


def _checked(chains: dict[str, list[str]], spec: str) -> str:
    target = _target(spec)
    if target is not None and target not in EXTENSION_TARGETS and target not in chains:
        raise RestoreError(f"Couldn't load target `{target}'")
    return spec


def _target(spec: str) -> str | None:
    tokens = shlex.split(spec)
    for i, tok in enumerate(tokens[:-1]):
        if tok in ("-j", "--jump"):
            return tokens[i + 1]
    return None


def _delete_rule(rules: list[str], spec: str) -> None:
    if spec.isdigit():
        index = int(spec) - 1
        if not 0 <= index < len(rules):
            raise RestoreError("index of deletion too big")
        del rules[index]
        return
    wanted = shlex.split(spec)
    for index, rule in enumerate(rules):
        if shlex.split(rule) == wanted:
            del rules[index]
            return
    raise RestoreError("Bad rule (does a matching rule exist in that chain?)")


def _delete_chain(table: str, chains: dict[str, list[str]], chain: str) -> None:
    if chain in BUILTIN_CHAINS.get(table, ()):
        raise RestoreError(f"cannot delete built-in chain {chain}")
    if chains[chain]:
        raise RestoreError(f"chain {chain} is not empty")
    if any(_target(rule) == chain for rules in chains.values() for rule in rules):
        raise RestoreError(f"chain {chain} is still referenced")
    del chains[chain]
