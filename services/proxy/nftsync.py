"""The side-effect half of the nftables mode: what the table holds, and one transaction per sync.

`NftablesApplier` remembers, per Service, the ports it last programmed and the rules they
became. A sync is then:

- full (the first one, and after any failure): the table's base, every chain rewritten
  (flushed first if the kernel has it, then its block of rules), every map refilled, in one
  transaction; chains and affinity sets the kernel has but nothing uses any more are found
  by listing the table;
- partial (every other one): only the Services changed since the last sync are rendered;
  a chain is rewritten only when its rules differ, map elements are added, replaced or
  deleted one by one. One endpoint change at 10,000 Services is a handful of statements.

A chain that is no longer used is flushed at once but deleted only by a sync at least a
second later, in a transaction of its own after that sync's (kube-proxy's staleChains:
kernels before 6.2 may still see a reference from a map element deleted in the same
transaction). No sync is scheduled for it: an empty chain costs nothing, and a wake-up of
its own would make the next change wait out the minimum sync interval.

nftables sits behind the narrow `Nft` Protocol (run a transaction, list chain and set names,
delete the table) like the iptables mode's `Iptables`; `NftCommands` hands transactions to
libnftables (kubecore/nftables.py) in a named network namespace when given, and lists and
deletes with the nft binary.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kubecore.nftables import NftError, nft_runner
from services.proxy.iptables import CommandError, run_command
from services.proxy.model import ServiceKey, ServicePort
from services.proxy.nftables import (
    FAMILY,
    TABLE,
    TABLE_REF,
    Element,
    NftSettings,
    ServiceRules,
    Transaction,
    base_statements,
    is_affinity_set,
    is_service_chain,
    render_service_port,
)

log = logging.getLogger(__name__)

# which Service owns each (container, key) element, and the element itself
Owned = dict[tuple[str, str], tuple[Element, ServiceKey]]

STALE_CHAIN_GRACE = 1.0  # seconds a flushed chain waits before it is deleted


class Nft(Protocol):
    """The `ip kube-proxy` table of one network namespace."""

    async def run(self, text: str) -> None:
        """`nft -f -`: apply `text` in one transaction, or raise CommandError."""
        ...

    async def list_names(self, what: str) -> list[str]:
        """The names of our table's `chains` or `sets` (none when the table does not exist)."""
        ...

    async def delete_table(self) -> bool:
        """Delete our table; False when there was none."""
        ...


class NftCommands:
    """`Nft` in `netns` (if given): transactions through libnftables (kubecore.nftables),
    listings and the table's deletion through the nft binary (they are rare)."""

    def __init__(self, *, netns: str | None = None) -> None:
        self.netns = netns
        self.runner = nft_runner(netns)

    async def run(self, text: str) -> None:
        try:
            await self.runner.run(text)
        except NftError as exc:
            raise CommandError(["nft", "-f", "-"], exc.returncode, exc.stderr) from None

    async def list_names(self, what: str) -> list[str]:
        # `list chains ip` names every chain of the family without their rules; ours are
        # picked out by table (listing the table itself would print every rule)
        result = await run_command(["nft", "--json", "list", what, FAMILY], netns=self.netns)
        kind = what.rstrip("s")
        names = []
        for item in json.loads(result.stdout or "{}").get("nftables", ()):
            obj = item.get(kind) if isinstance(item, dict) else None
            if isinstance(obj, dict) and obj.get("table") == TABLE and isinstance(obj.get("name"), str):
                names.append(obj["name"])
        return names

    async def delete_table(self) -> bool:
        try:
            await run_command(["nft", "delete", "table", FAMILY, TABLE], netns=self.netns)
        except FileNotFoundError:
            return False  # no nft here (and so no table of ours either)
        except CommandError as exc:
            if "No such file or directory" in exc.stderr:
                return False
            raise
        return True


@dataclass(frozen=True, slots=True)
class Applied:
    """What one Service's ports became in the table."""

    ports: tuple[ServicePort, ...]
    rules: ServiceRules


@dataclass
class NftPlan:
    """One sync's transaction, and how much it touched (for the log and the benchmarks)."""

    full: bool
    text: str
    services: int = 0  # services rendered
    chains_written: int = 0
    elements_changed: int = 0
    stale_chains: list[str] = field(default_factory=list)


def merge_rules(rules: Iterable[ServiceRules]) -> ServiceRules:
    """One Service's ports' rules as one (chain names never collide between ports)."""
    chains: dict[str, tuple[str, ...]] = {}
    elements: list[Element] = []
    affinity: dict[str, int] = {}
    for r in rules:
        chains.update(r.chains)
        elements.extend(r.elements)
        affinity.update(r.affinity_sets)
    return ServiceRules(chains, tuple(elements), affinity)


class NftablesApplier:
    """Moves one network namespace's `ip kube-proxy` table to the desired service ports."""

    def __init__(self, settings: NftSettings, *, nft: Nft | None = None, netns: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.nft: Nft = nft if nft is not None else NftCommands(netns=netns)
        self.clock = clock
        self._applied: dict[ServiceKey, Applied] | None = None  # None: the next sync is full
        self._elements: Owned = {}
        self._stale: dict[str, float] = {}
        self._base_recreated = False

    def forget(self) -> None:
        """Force the next apply to be a full one."""
        self._applied = None

    def applied(self, key: ServiceKey) -> Applied | None:
        """What the last successful sync programmed for one Service (None: nothing, or unknown)."""
        return (self._applied or {}).get(key)

    async def apply(self, ports: Mapping[ServiceKey, tuple[ServicePort, ...]],
                    changed: Iterable[ServiceKey], *, full: bool = False) -> NftPlan:
        """Program `ports` (every Service's), rewriting only `changed` ones unless full."""
        full = full or self._applied is None
        if full:
            plan, applied, elements = await self._plan_full(ports)
        else:
            assert self._applied is not None
            applied, elements = dict(self._applied), dict(self._elements)
            plan = self._plan_partial(ports, set(changed), applied, elements)
        # until nft has taken the transaction, what we remember cannot be trusted
        self._applied = None
        if plan.text:
            await self.nft.run(plan.text)
        self._applied, self._elements = applied, elements
        if full:
            self._base_recreated = True
        # after the sync's own transaction, so that the change it carries does not wait for
        # nft to load its chain cache (which deleting a chain needs)
        await self._delete_stale_chains()
        now = self.clock()
        for chain in plan.stale_chains:
            self._stale.setdefault(chain, now)
        return plan

    async def _delete_stale_chains(self) -> None:
        due = [c for c, since in self._stale.items() if self.clock() - since >= STALE_CHAIN_GRACE]
        if not due:
            return
        for chain in due:
            del self._stale[chain]
        text = "".join(f"delete chain {TABLE_REF} {chain}\n" for chain in due)
        try:
            await self.nft.run(text)
        except CommandError as exc:
            # a full sync lists the table and finds them again
            log.warning("deleting %d stale nftables chains failed: %s", len(due), exc.stderr.strip())
            self._applied = None

    async def _plan_full(self, ports: Mapping[ServiceKey, tuple[ServicePort, ...]]
                         ) -> tuple[NftPlan, dict[ServiceKey, Applied], Owned]:
        existing_chains = await self.nft.list_names("chains")
        existing_sets = await self.nft.list_names("sets")
        tx = Transaction(base=base_statements(self.settings, recreate_base_chains=not self._base_recreated))
        applied = self._render_all(ports)
        elements: Owned = {}
        existing = set(existing_chains)
        for key, a in applied.items():
            for chain, chain_rules in a.rules.chains.items():
                tx.write_chain(chain, chain_rules, new=chain not in existing)
            for name, timeout in a.rules.affinity_sets.items():
                tx.add_affinity_set(name, timeout)
            for element in a.rules.elements:
                elements[(element.container, element.key)] = (element, key)
        for element, _ in elements.values():
            tx.add_element(element)
        active = {chain for a in applied.values() for chain in a.rules.chains}
        stale = [c for c in existing_chains if is_service_chain(c) and c not in active]
        tx.flush_chains.extend(stale)
        for chain in active:
            self._stale.pop(chain, None)
        active_sets = {name for a in applied.values() for name in a.rules.affinity_sets}
        tx.delete_sets.extend(s for s in existing_sets if is_affinity_set(s) and s not in active_sets)
        plan = NftPlan(full=True, text=tx.text(), services=len(ports), chains_written=len(active),
                       elements_changed=len(elements), stale_chains=stale)
        return plan, applied, elements

    def _render_all(self, ports: Mapping[ServiceKey, tuple[ServicePort, ...]]) -> dict[ServiceKey, Applied]:
        """Every Service's rules, reusing the last ones of a Service whose ports are unchanged."""
        previous = self._applied or {}
        applied: dict[ServiceKey, Applied] = {}
        for key in sorted(ports):
            group = ports[key]
            old = previous.get(key)
            rules = old.rules if old is not None and old.ports == group else merge_rules(
                render_service_port(sp, self.settings) for sp in group)
            applied[key] = Applied(group, rules)
        return applied

    def _plan_partial(self, ports: Mapping[ServiceKey, tuple[ServicePort, ...]], changed: set[ServiceKey],
                      applied: dict[ServiceKey, Applied],
                      elements: Owned) -> NftPlan:
        tx = Transaction()
        plan = NftPlan(full=False, text="")
        for key in sorted(changed):
            group = ports.get(key, ())
            old = applied.get(key)
            if (old.ports if old is not None else ()) == group:
                continue
            plan.services += 1
            rules = merge_rules(render_service_port(sp, self.settings) for sp in group)
            before = old.rules if old is not None else ServiceRules({}, (), {})
            plan.chains_written += _diff_chains(tx, before, rules, plan.stale_chains)
            for chain in rules.chains:
                self._stale.pop(chain, None)
            _diff_affinity(tx, before, rules)
            plan.elements_changed += _diff_elements(tx, key, before, rules, elements)
            if group:
                applied[key] = Applied(group, rules)
            else:
                applied.pop(key, None)
        plan.text = tx.text()
        return plan


def _diff_chains(tx: Transaction, before: ServiceRules, after: ServiceRules, stale: list[str]) -> int:
    written = 0
    for chain, rules in after.chains.items():
        old = before.chains.get(chain)
        if old != rules:
            tx.write_chain(chain, rules, new=old is None)
            written += 1
    for chain in before.chains:
        if chain not in after.chains:
            tx.flush_chains.append(chain)
            stale.append(chain)
    return written


def _diff_affinity(tx: Transaction, before: ServiceRules, after: ServiceRules) -> None:
    """A set's timeout cannot change in place: a changed one is deleted and added again,
    after the rules using it were flushed (the transaction orders it so). Every set the
    Service's rules name is declared, the unchanged ones too: a chain rewritten here may
    name them, and nft must know their type (`chain_statement`)."""
    for name, timeout in before.affinity_sets.items():
        if after.affinity_sets.get(name) != timeout:
            tx.delete_sets.append(name)
    for name, timeout in after.affinity_sets.items():
        tx.add_affinity_set(name, timeout)


def _diff_elements(tx: Transaction, key: ServiceKey, before: ServiceRules, after: ServiceRules,
                   elements: Owned) -> int:
    """Add, replace or delete this Service's elements. An element another Service now owns
    (two Services claiming one external IP and port) is left to that Service."""
    changed = 0
    wanted = {(e.container, e.key): e for e in after.elements}
    for element in before.elements:
        slot = (element.container, element.key)
        current = elements.get(slot)
        if slot not in wanted and current is not None and current[1] == key:
            tx.delete_element(current[0])
            del elements[slot]
            changed += 1
    for slot, element in wanted.items():
        current = elements.get(slot)
        if current is not None and current[0] == element:
            elements[slot] = (element, key)
            continue
        if current is not None:
            tx.delete_element(current[0])
        tx.add_element(element)
        elements[slot] = (element, key)
        changed += 1
    return changed
