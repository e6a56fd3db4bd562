"""Plan one `iptables-restore --noflush` input from the desired and the existing rules.

Pure: it reads `iptables-save` text and returns text.  The applier in
`iptables.py` runs the commands.

Why `--noflush` with explicit chain declarations: the nat and filter tables
are shared with the CNI, the node agent and the administrator.  Declaring
`:KUBE-SVC-X - [0:0]` flushes (or creates) exactly our chain; everything we do
not mention is left alone.  Rules in built-in chains are only ever inserted
when missing or deleted when duplicated, never rewritten.
"""
from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.proxy.rules import OWNED_PREFIXES, JumpRule, Ruleset

BUILTIN_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})


@dataclass(frozen=True, slots=True)
class SavedTable:
    """One table of `iptables-save` output: chain names and `-A` lines."""

    name: str
    chains: frozenset[str]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """The restore input plus what it will do, for logs and metrics."""

    text: str
    written_chains: Mapping[str, frozenset[str]]
    stale_chains: Mapping[str, frozenset[str]]
    inserted_jumps: tuple[JumpRule, ...]
    removed_duplicate_jumps: int = field(default=0)


def parse_iptables_save(text: str) -> dict[str, SavedTable]:
    """Split iptables-save output into tables; comments and counters are ignored."""
    tables: dict[str, SavedTable] = {}
    name: str | None = None
    chains: set[str] = set()
    rules: list[str] = []
    for line in text.splitlines():
        if line.startswith("*"):
            name, chains, rules = line[1:].strip(), set(), []
        elif line.startswith(":") and name is not None:
            chains.add(line[1:].split(None, 1)[0])
        elif line.startswith("-A ") and name is not None:
            rules.append(line)
        elif line.strip() == "COMMIT" and name is not None:
            tables[name] = SavedTable(name, frozenset(chains), tuple(rules))
            name = None
    return tables


def rule_fields(line: str) -> tuple[str, str | None, str | None]:
    """(chain, jump target, comment) of an `-A` line, tolerant of any option order."""
    tokens = shlex.split(line)
    chain = tokens[1] if len(tokens) > 1 else ""
    target = comment = None
    for i, tok in enumerate(tokens[:-1]):
        if tok in ("-j", "--jump"):
            target = tokens[i + 1]
        elif tok == "--comment":
            comment = tokens[i + 1]
    return chain, target, comment


def existing_jumps(saved: SavedTable, jump: JumpRule) -> list[str]:
    """The saved lines that implement `jump` (same built-in chain, target and comment)."""
    found = []
    for line in saved.rules:
        if not line.startswith(f"-A {jump.chain} "):
            continue
        chain, target, comment = rule_fields(line)
        if chain == jump.chain and target == jump.target and comment == jump.comment:
            found.append(line)
    return found


def stale_chains(desired: Ruleset, existing: Mapping[str, SavedTable]) -> dict[str, frozenset[str]]:
    """Our chains (KUBE-SVC-/KUBE-SEP-) present in the kernel but not desired any more."""
    result: dict[str, frozenset[str]] = {}
    for table in desired.tables():
        saved = existing.get(table.name)
        if saved is None:
            result[table.name] = frozenset()
            continue
        result[table.name] = frozenset(
            chain
            for chain in saved.chains
            if chain.startswith(OWNED_PREFIXES) and chain not in table.chains
        )
    return result


def plan_restore(
    desired: Ruleset,
    existing: Mapping[str, SavedTable] | None,
    *,
    unchanged: Mapping[str, Iterable[str]] | None = None,
    previously_written: Mapping[str, Iterable[str]] | None = None,
) -> RestorePlan:
    """Build the single restore input that moves the kernel to `desired`.

    Full sync (`existing` is the parsed iptables-save of nat and filter):
    every desired chain is written, every owned chain the kernel has but we
    do not want is deleted, and the jumps from built-in chains are inserted
    if missing and de-duplicated if present more than once.

    Partial sync (`existing` is None, so nothing is read from the kernel):
    chains listed in `unchanged` already hold exactly the desired rules (the
    applier remembers what it wrote) and are not declared, so `--noflush`
    leaves them untouched and a one-endpoint change rewrites a handful of
    chains instead of thousands.  Stale chains are those we wrote last time
    and no longer want.  Jumps are not re-checked: like kube-proxy, they are
    only verified on full syncs, which run periodically and after failures.
    """
    unchanged = unchanged or {}
    previously_written = previously_written or {}
    lines: list[str] = []
    written: dict[str, frozenset[str]] = {}
    stale: dict[str, frozenset[str]] = {}
    inserted: list[JumpRule] = []
    removed = 0
    full_stale = stale_chains(desired, existing) if existing is not None else {}
    for table in desired.tables():
        if existing is not None:
            to_write = list(table.chains)
            to_delete = sorted(full_stale.get(table.name, frozenset()))
        else:
            skip = set(unchanged.get(table.name, ()))
            to_write = [chain for chain in table.chains if chain not in skip]
            to_delete = sorted(
                chain
                for chain in previously_written.get(table.name, ())
                if chain.startswith(OWNED_PREFIXES) and chain not in table.chains
            )
        stale[table.name] = frozenset(to_delete)
        written[table.name] = frozenset(to_write)

        lines.append(f"*{table.name}")
        # Declaring a stale chain flushes it first, so chains that jump to
        # each other can all be deleted afterwards in any order.
        lines.extend(f":{chain} - [0:0]" for chain in [*to_write, *to_delete])
        for chain in to_write:
            lines.extend(table.chains[chain])
        if existing is not None:
            saved = existing.get(table.name, SavedTable(table.name, frozenset(), ()))
            for jump in desired.jumps:
                if jump.table != table.name:
                    continue
                present = existing_jumps(saved, jump)
                if not present:
                    lines.append(f"-I {jump.chain} 1 {jump.spec()}")
                    inserted.append(jump)
                for duplicate in present[1:]:
                    lines.append("-D " + duplicate[len("-A "):])
                    removed += 1
        lines.extend(f"-X {chain}" for chain in to_delete)
        lines.append("COMMIT")
    return RestorePlan(
        text="\n".join(lines) + "\n",
        written_chains=written,
        stale_chains=stale,
        inserted_jumps=tuple(inserted),
        removed_duplicate_jumps=removed,
    )
