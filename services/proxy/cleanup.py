"""Removing everything the proxy ever put into a namespace (`python -m services.proxy --cleanup`).

For cluster teardown, not for restarts: a restarting proxy keeps its rules, and its first
full sync rewrites them in place. The planner is pure (iptables-save in, restore text out);
one `iptables-restore --noflush` then removes, in one transaction per table:

- every rule outside our chains that jumps to one of them (the jumps from PREROUTING,
  OUTPUT, POSTROUTING, INPUT, FORWARD, and any leftover of an older layout), since a chain
  that is still referenced cannot be deleted;
- our chains: the fixed ones the renderer declares and every KUBE-SVC-/KUBE-SEP- chain.

Running it again finds nothing and changes nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.proxy.iptables import Iptables, IptablesCommands, read_tables
from services.proxy.restore import SavedTable, rule_fields
from services.proxy.rules import (
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
    KUBE_MARK_MASQ,
    KUBE_NODEPORTS,
    KUBE_POSTROUTING,
    KUBE_PROXY_FIREWALL,
    KUBE_SERVICES,
    OWNED_PREFIXES,
)

FIXED_CHAINS: Mapping[str, frozenset[str]] = {
    "nat": frozenset({KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ}),
    "filter": frozenset({KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_PROXY_FIREWALL}),
}


@dataclass(frozen=True, slots=True)
class CleanupPlan:
    text: str  # "" when there is nothing to remove
    deleted_rules: int
    deleted_chains: Mapping[str, frozenset[str]]


def owned_chains(table: SavedTable) -> frozenset[str]:
    fixed = FIXED_CHAINS.get(table.name, frozenset())
    return frozenset(c for c in table.chains if c in fixed or c.startswith(OWNED_PREFIXES))


def plan_cleanup(existing: Mapping[str, SavedTable]) -> CleanupPlan:
    lines: list[str] = []
    deleted_rules = 0
    deleted: dict[str, frozenset[str]] = {}
    for name in sorted(existing):
        table = existing[name]
        ours = owned_chains(table)
        references = [
            line for line in table.rules
            if (fields := rule_fields(line))[0] not in ours and fields[1] in ours
        ]
        if not ours and not references:
            continue
        deleted[name] = ours
        deleted_rules += len(references)
        lines.append(f"*{name}")
        lines.extend("-D " + line[len("-A "):] for line in references)
        # Declaring a chain flushes it, so chains jumping to each other go in any order.
        lines.extend(f":{chain} - [0:0]" for chain in sorted(ours))
        lines.extend(f"-X {chain}" for chain in sorted(ours))
        lines.append("COMMIT")
    return CleanupPlan(
        text="\n".join(lines) + "\n" if lines else "",
        deleted_rules=deleted_rules,
        deleted_chains=deleted,
    )


async def cleanup(*, netns: str | None = None, iptables: Iptables | None = None) -> CleanupPlan:
    """Remove the proxy's chains and jumps from the nat and filter tables of `netns`
    (or of `iptables`, when given)."""
    iptables = iptables if iptables is not None else IptablesCommands(netns=netns)
    plan = plan_cleanup(await read_tables(iptables))
    if plan.text:
        await iptables.restore(plan.text)
    return plan
