"""The proxier's sync against the in-memory iptables and conntrack (no root, no netns).

Each case drives the proxier through its informer handlers, as the watches would, and
checks three things: the commands it ran, the restore input it sent, and that the fake's
tables then hold exactly the rendered ruleset. The same behaviour against real netfilter
is covered by test_iptables_netns.py and test_datapath.py.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from services.proxy.cleanup import cleanup
from services.proxy.conntrack import UdpFlowFilter
from services.proxy.iptables import CommandError, IptablesApplier
from services.proxy.model import build_snapshot
from services.proxy.proxier import Proxier
from services.proxy.rules import NodeSettings, Ruleset, jump_rules, render
from services.proxy.runner import BoundedFrequencyRunner, SyncTrigger
from tests.fakes.iptables import FakeConntrack, FakeIptables
from tests.proxy.cases import ARTICLE_MYSVC, LEFTOVERS, TWO_SERVICES, UDP_DNS, ClusterState
from tests.proxy.objects import endpoint, endpoint_slice, slice_port

SETTINGS = NodeSettings(node_name="node-a", cluster_cidr="10.244.0.0/16")
SAVE_BOTH = [("iptables-save", "-t", "nat"), ("iptables-save", "-t", "filter")]
RESTORE = ("iptables-restore", "--noflush")
EMPTY = ClusterState("empty", [], [])

MYSVC_SVC = "KUBE-SVC-BM6F4AVTDKG47F3K"
MYSVC_SEPS = {"KUBE-SEP-CMSFOBEB7HHZOTBZ", "KUBE-SEP-VVWLMARALSB3FCZF", "KUBE-SEP-XGAC3VXZG7B73WCD"}
GONE_SEP = "KUBE-SEP-XGAC3VXZG7B73WCD"  # mysvc's endpoint 10.244.2.3:8080


def _without_endpoint(state: ClusterState, ip: str) -> ClusterState:
    slices = [{**s, "endpoints": [e for e in s["endpoints"] if e["addresses"] != [ip]]} for s in state.slices]
    return ClusterState(f"{state.id}-without-{ip}", state.services, slices)


MYSVC_FEWER = _without_endpoint(ARTICLE_MYSVC, "10.244.2.3")


def _ruleset(state: ClusterState) -> Ruleset:
    return render(build_snapshot(state.services, state.slices, node_name="node-a"), SETTINGS)


def _proxier(iptables: FakeIptables, conntrack: FakeConntrack | None = None) -> Proxier:
    return Proxier(SETTINGS, registry=CollectorRegistry(), iptables=iptables, conntrack=conntrack or FakeConntrack())


def _move_to(proxier: Proxier, before: ClusterState | None, after: ClusterState) -> None:
    """Deliver the informer events that turn `before` into `after`."""
    previous = before or EMPTY
    for gone in {_key(o) for o in previous.services} - {_key(o) for o in after.services}:
        proxier.on_service_deleted(_by_key(previous.services, gone))
    for gone in {_key(o) for o in previous.slices} - {_key(o) for o in after.slices}:
        proxier.on_endpoint_slice_deleted(_by_key(previous.slices, gone))
    for svc in after.services:
        proxier.on_service(svc)
    for eps in after.slices:
        proxier.on_endpoint_slice(eps)
    if before is None:
        proxier.mark_services_synced()
        proxier.mark_endpoint_slices_synced()


def _key(obj: dict[str, object]) -> str:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return f"{meta['namespace']}/{meta['name']}"


def _by_key(objs: list[dict[str, object]], key: str) -> dict[str, object]:
    return next(o for o in objs if _key(o) == key)


def _declared(restore_text: str) -> set[str]:
    return {line[1:].split()[0] for line in restore_text.splitlines() if line.startswith(":")}


def _deleted(restore_text: str) -> set[str]:
    return {line.split()[1] for line in restore_text.splitlines() if line.startswith("-X ")}


def assert_holds(iptables: FakeIptables, ruleset: Ruleset) -> None:
    """The fake's KUBE- chains are exactly the ruleset's, with its rules, and each jump
    from a built-in chain is there once."""
    for table in ruleset.tables():
        assert {c for c in iptables.chains(table.name) if c.startswith("KUBE-")} == set(table.chains)
        for chain, rules in table.chains.items():
            assert iptables.rules(table.name, chain) == list(rules), chain
    for jump in jump_rules():
        assert iptables.rules(jump.table, jump.chain).count(f"-A {jump.chain} {jump.spec()}") == 1, jump


@dataclass(frozen=True)
class Change:
    id: str
    before: ClusterState
    after: ClusterState
    written_nat: set[str]  # chains the partial sync declares in nat
    deleted_nat: set[str]  # chains it deletes


CHANGES = [
    Change("service-added", EMPTY, ARTICLE_MYSVC,
           written_nat={"KUBE-SERVICES", MYSVC_SVC, *MYSVC_SEPS}, deleted_nat=set()),
    Change("endpoint-removed", ARTICLE_MYSVC, MYSVC_FEWER,
           written_nat={MYSVC_SVC}, deleted_nat={GONE_SEP}),
    Change("service-deleted", ARTICLE_MYSVC, EMPTY,
           written_nat={"KUBE-SERVICES"}, deleted_nat={MYSVC_SVC, *MYSVC_SEPS}),
    Change("nothing-changed", TWO_SERVICES, TWO_SERVICES, written_nat=set(), deleted_nat=set()),
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.id for c in CHANGES])
async def test_change_is_one_partial_restore(change: Change) -> None:
    iptables = FakeIptables()
    proxier = _proxier(iptables)
    _move_to(proxier, None, change.before)
    await proxier.sync(SyncTrigger.CHANGED)
    # The first sync is full: it reads both tables, then writes everything at once.
    assert iptables.calls == [*SAVE_BOTH, RESTORE]
    assert proxier.ready
    assert_holds(iptables, _ruleset(change.before))

    iptables.clear_calls()
    _move_to(proxier, change.before, change.after)
    await proxier.sync(SyncTrigger.CHANGED)
    # Later changes read nothing back and write only the chains that changed.
    assert iptables.calls == [RESTORE]
    (text,) = iptables.restores
    nat, _filter = text.split("COMMIT\n")[:2]
    assert _declared(nat) - _deleted(nat) == change.written_nat
    assert _deleted(nat) == change.deleted_nat
    assert_holds(iptables, _ruleset(change.after))

    # A new proxy syncing `after` from scratch leaves the very same tables.
    fresh = FakeIptables()
    await IptablesApplier(iptables=fresh).apply(_ruleset(change.after))
    assert fresh.dump("nat") == iptables.dump("nat")
    assert fresh.dump("filter") == iptables.dump("filter")


@pytest.mark.parametrize("services_synced, slices_synced", [(False, False), (True, False), (False, True)],
                         ids=["neither", "services-only", "slices-only"])
async def test_nothing_runs_until_both_caches_synced(services_synced: bool, slices_synced: bool) -> None:
    iptables = FakeIptables()
    proxier = _proxier(iptables)
    proxier.on_service(ARTICLE_MYSVC.services[0])
    if services_synced:
        proxier.mark_services_synced()
    if slices_synced:
        proxier.mark_endpoint_slices_synced()
    await proxier.sync(SyncTrigger.CHANGED)
    assert iptables.calls == []
    assert not proxier.ready


@pytest.mark.parametrize("trigger", [SyncTrigger.PERIODIC, SyncTrigger.RETRY], ids=["periodic", "retry"])
async def test_periodic_and_retry_syncs_are_full_and_repair(trigger: SyncTrigger) -> None:
    iptables = FakeIptables()
    proxier = _proxier(iptables)
    _move_to(proxier, None, ARTICLE_MYSVC)
    await proxier.sync(SyncTrigger.CHANGED)
    # Someone else removes our jump from PREROUTING and an endpoint chain's rules.
    await iptables.restore(
        '*nat\n-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
        f":{GONE_SEP} - [0:0]\nCOMMIT\n"
    )
    iptables.clear_calls()

    await proxier.sync(trigger)
    assert iptables.calls == [*SAVE_BOTH, RESTORE]
    assert_holds(iptables, _ruleset(ARTICLE_MYSVC))


async def test_failed_restore_changes_nothing_and_the_retry_is_full() -> None:
    iptables = FakeIptables()
    proxier = _proxier(iptables)
    _move_to(proxier, None, ARTICLE_MYSVC)
    await proxier.sync(SyncTrigger.CHANGED)
    before = iptables.dump("nat"), iptables.dump("filter")

    _move_to(proxier, ARTICLE_MYSVC, TWO_SERVICES)
    iptables.fail_next_restore()
    iptables.clear_calls()
    with pytest.raises(CommandError, match="iptables-restore"):
        await proxier.sync(SyncTrigger.CHANGED)
    assert iptables.calls == [RESTORE]
    assert (iptables.dump("nat"), iptables.dump("filter")) == before

    iptables.clear_calls()
    await proxier.sync(SyncTrigger.CHANGED)  # even a CHANGED sync: what was written is unknown
    assert iptables.calls == [*SAVE_BOTH, RESTORE]
    assert_holds(iptables, _ruleset(TWO_SERVICES))


async def test_restore_the_kernel_refuses_is_a_command_error() -> None:
    iptables = FakeIptables()
    with pytest.raises(CommandError, match="KUBE-NO-SUCH-CHAIN"):
        await iptables.restore("*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-NO-SUCH-CHAIN\nCOMMIT\n")
    assert "KUBE-SERVICES" not in iptables.chains("nat")


async def test_runner_retries_a_failing_restore() -> None:
    iptables = FakeIptables()
    proxier = _proxier(iptables)
    proxier.runner = BoundedFrequencyRunner(proxier.sync, registry=CollectorRegistry(), min_interval=0.0,
                                            retry_initial=0.01)
    iptables.fail_next_restore(times=2)
    _move_to(proxier, None, ARTICLE_MYSVC)
    proxier.runner.start()
    try:
        async with asyncio.timeout(5):
            while not proxier.ready:
                await asyncio.sleep(0.005)
    finally:
        await proxier.runner.stop()
    assert proxier.runner.failures == 2
    # Every attempt was a full one, with the same input.
    assert iptables.calls == [*SAVE_BOTH, RESTORE] * 3
    assert len(set(iptables.restores)) == 1
    assert_holds(iptables, _ruleset(ARTICLE_MYSVC))


DNS_IP = "10.96.0.10"
NO_DNS_ENDPOINTS = _without_endpoint(_without_endpoint(UDP_DNS, "10.244.0.5"), "10.244.0.6")
DNS_MOVED = ClusterState("udp-moved", UDP_DNS.services, [endpoint_slice(
    "kube-dns", [endpoint("10.244.0.5"), endpoint("10.244.0.7")],
    [slice_port(53, name="dns", protocol="UDP")], namespace="kube-system")])


@pytest.mark.parametrize("before, after, deleted", [
    (UDP_DNS, DNS_MOVED, [UdpFlowFilter(orig_dst=DNS_IP, dst_nat="10.244.0.6")]),
    (NO_DNS_ENDPOINTS, UDP_DNS, [UdpFlowFilter(orig_dst=DNS_IP)]),
    (UDP_DNS, UDP_DNS, []),
    (ARTICLE_MYSVC, MYSVC_FEWER, []),
], ids=["udp-endpoint-gone", "udp-endpoints-appear", "udp-unchanged", "tcp-endpoint-gone"])
async def test_stale_udp_flows_are_deleted_after_the_rules(
    before: ClusterState, after: ClusterState, deleted: list[UdpFlowFilter]
) -> None:
    conntrack = FakeConntrack()
    proxier = _proxier(FakeIptables(), conntrack)
    _move_to(proxier, None, before)
    await proxier.sync(SyncTrigger.CHANGED)
    conntrack.deleted.clear()
    _move_to(proxier, before, after)
    await proxier.sync(SyncTrigger.CHANGED)
    assert conntrack.deleted == deleted


async def test_conntrack_failure_does_not_fail_the_sync() -> None:
    conntrack = FakeConntrack()
    conntrack.failing.add(UdpFlowFilter(orig_dst=DNS_IP, dst_nat="10.244.0.6"))
    iptables = FakeIptables()
    proxier = _proxier(iptables, conntrack)
    _move_to(proxier, None, UDP_DNS)
    await proxier.sync(SyncTrigger.CHANGED)
    _move_to(proxier, UDP_DNS, DNS_MOVED)
    await proxier.sync(SyncTrigger.CHANGED)
    assert_holds(iptables, _ruleset(DNS_MOVED))


async def test_first_sync_removes_leftovers_and_keeps_foreign_rules() -> None:
    iptables = FakeIptables(LEFTOVERS)
    proxier = _proxier(iptables)
    _move_to(proxier, None, ARTICLE_MYSVC)
    await proxier.sync(SyncTrigger.CHANGED)
    assert_holds(iptables, _ruleset(ARTICLE_MYSVC))
    assert "CNI-HOSTPORT-DNAT" in iptables.chains("nat")
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in iptables.rules("nat", "PREROUTING")
    assert iptables.rules("filter", "INPUT")[-1] == "-A INPUT -s 192.0.2.1/32 -j DROP"


async def test_cleanup_leaves_only_foreign_rules() -> None:
    iptables = FakeIptables(LEFTOVERS)
    await IptablesApplier(iptables=iptables).apply(_ruleset(TWO_SERVICES))
    plan = await cleanup(iptables=iptables)
    assert MYSVC_SVC not in plan.deleted_chains["nat"]
    assert {c for t in ("nat", "filter") for c in iptables.chains(t) if c.startswith("KUBE-")} == set()
    assert iptables.rules("nat", "PREROUTING") == ["-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"]
    assert iptables.rules("filter", "INPUT") == ["-A INPUT -s 192.0.2.1/32 -j DROP"]
    assert (await cleanup(iptables=iptables)).text == ""
