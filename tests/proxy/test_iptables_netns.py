"""The applier against real netfilter, inside namespaces created per test."""
from __future__ import annotations

from dataclasses import replace

import pytest

from services.proxy.iptables import CommandError, IptablesApplier
from services.proxy.model import build_snapshot
from services.proxy.restore import SavedTable, parse_iptables_save
from services.proxy.rules import NodeSettings, Ruleset, TableRules, jump_rules, render
from tests.proxy.cases import ARTICLE_MYSVC, LEFTOVERS, TWO_SERVICES, ClusterState
from tests.proxy.netns import NetnsLab

SETTINGS = NodeSettings(node_name="node-a", cluster_cidr="10.244.0.0/16")


def _ruleset(*states: ClusterState) -> Ruleset:
    services = [s for st in states for s in st.services]
    slices = [s for st in states for s in st.slices]
    return render(build_snapshot(services, slices, node_name="node-a"), SETTINGS)


def _save(lab: NetnsLab, ns: str) -> dict[str, SavedTable]:
    return parse_iptables_save(lab.exec(ns, ["iptables-save"]).stdout)


def _save_text(lab: NetnsLab, ns: str) -> str:
    """iptables-save without the timestamped comment lines."""
    return "".join(
        line + "\n" for line in lab.exec(ns, ["iptables-save"]).stdout.splitlines() if not line.startswith("#")
    )


def _rules(saved: dict[str, SavedTable], table: str, chain: str) -> list[str]:
    return [r for r in saved[table].rules if r.startswith(f"-A {chain} ")]


def _kube_chains(saved: dict[str, SavedTable], table: str) -> set[str]:
    return {c for c in saved[table].chains if c.startswith("KUBE-")}


def _assert_each_jump_once(saved: dict[str, SavedTable]) -> None:
    for jump in jump_rules():
        matching = [r for r in _rules(saved, jump.table, jump.chain) if f"-j {jump.target}" in r
                    and f'"{jump.comment}"' in r]
        assert len(matching) == 1, (jump, matching)


async def test_apply_writes_kube_proxy_chains(lab: NetnsLab) -> None:
    ns = lab.add_netns("node")
    await IptablesApplier(netns=ns).apply(_ruleset(ARTICLE_MYSVC))
    saved = _save(lab, ns)
    # The kernel reports the probabilities exactly as in the article's listing
    # of a real kube-proxy node (0.33333333349, 0.50000000000).
    assert _rules(saved, "nat", "KUBE-SVC-BM6F4AVTDKG47F3K") == [
        '-A KUBE-SVC-BM6F4AVTDKG47F3K ! -s 10.244.0.0/16 -d 10.96.62.22/32 -p tcp -m comment --comment "default/mysvc cluster IP" -m tcp --dport 8080 -j KUBE-MARK-MASQ',
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.1.2:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-CMSFOBEB7HHZOTBZ',
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.2.2:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-VVWLMARALSB3FCZF',
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.2.3:8080" -j KUBE-SEP-XGAC3VXZG7B73WCD',
    ]
    assert _rules(saved, "nat", "KUBE-SEP-CMSFOBEB7HHZOTBZ") == [
        '-A KUBE-SEP-CMSFOBEB7HHZOTBZ -s 10.244.1.2/32 -m comment --comment "default/mysvc" -j KUBE-MARK-MASQ',
        '-A KUBE-SEP-CMSFOBEB7HHZOTBZ -p tcp -m comment --comment "default/mysvc" -m tcp -j DNAT --to-destination 10.244.1.2:8080',
    ]
    assert _rules(saved, "nat", "KUBE-POSTROUTING")[-1] == (
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully'
    )
    assert _kube_chains(saved, "nat") == {
        "KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-SVC-BM6F4AVTDKG47F3K",
        "KUBE-SEP-CMSFOBEB7HHZOTBZ", "KUBE-SEP-VVWLMARALSB3FCZF", "KUBE-SEP-XGAC3VXZG7B73WCD",
    }
    assert _kube_chains(saved, "filter") == {"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD",
                                             "KUBE-PROXY-FIREWALL"}
    _assert_each_jump_once(saved)


@pytest.mark.parametrize("full", [False, True], ids=["partial", "full"])
async def test_changed_ruleset_removes_stale_chains(lab: NetnsLab, full: bool) -> None:
    ns = lab.add_netns("node")
    applier = IptablesApplier(netns=ns)
    await applier.apply(_ruleset(ARTICLE_MYSVC, TWO_SERVICES))
    before = _save(lab, ns)
    assert {"KUBE-SVC-4W74AMKD7BQ64LGF", "KUBE-SEP-I2MM2VLCD6ZLSLWB", "KUBE-SEP-XGAC3VXZG7B73WCD"} <= before["nat"].chains

    # prod/zeta is deleted and mysvc loses 10.244.2.3.
    mysvc_slice = ARTICLE_MYSVC.slices[0]
    fewer = {**mysvc_slice, "endpoints": [e for e in mysvc_slice["endpoints"] if e["addresses"] != ["10.244.2.3"]]}
    changed = _ruleset(
        ClusterState("changed", [*ARTICLE_MYSVC.services, TWO_SERVICES.services[1]],
                     [fewer, TWO_SERVICES.slices[1]])
    )
    plan = await applier.apply(changed, full=full)
    after = _save(lab, ns)

    assert plan.stale_chains["nat"] == {"KUBE-SVC-4W74AMKD7BQ64LGF", "KUBE-SEP-I2MM2VLCD6ZLSLWB",
                                        "KUBE-SEP-XGAC3VXZG7B73WCD"}
    assert _kube_chains(after, "nat") == set(changed.nat.chains)
    assert _rules(after, "nat", "KUBE-SVC-BM6F4AVTDKG47F3K")[1:] == [
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.1.2:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-CMSFOBEB7HHZOTBZ',
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.2.2:8080" -j KUBE-SEP-VVWLMARALSB3FCZF',
    ]
    if not full:
        # Only the chains whose rules changed were rewritten.
        assert plan.written_chains["nat"] == {"KUBE-SERVICES", "KUBE-SVC-BM6F4AVTDKG47F3K"}
        assert plan.written_chains["filter"] == frozenset()
    _assert_each_jump_once(after)

    # The same state applied from scratch by a new process gives the same kernel state.
    other = lab.add_netns("other")
    await IptablesApplier(netns=other).apply(changed)
    assert _save_text(lab, other) == _save_text(lab, ns)


async def test_reapply_is_idempotent(lab: NetnsLab) -> None:
    ns = lab.add_netns("node")
    ruleset = _ruleset(ARTICLE_MYSVC, TWO_SERVICES)
    applier = IptablesApplier(netns=ns)
    await applier.apply(ruleset)
    first = _save_text(lab, ns)
    partial = await applier.apply(ruleset)
    assert partial.text == "*nat\nCOMMIT\n*filter\nCOMMIT\n"
    for _ in range(3):
        full = await applier.apply(ruleset, full=True)
        assert full.inserted_jumps == ()
    assert _save_text(lab, ns) == first
    _assert_each_jump_once(_save(lab, ns))


async def test_duplicates_and_leftovers_are_cleaned_but_foreign_rules_kept(lab: NetnsLab) -> None:
    ns = lab.add_netns("node")
    # State left by a crashed earlier proxy plus rules that belong to others.
    lab.exec(ns, ["iptables-restore", "--noflush"], input=LEFTOVERS)
    plan = await IptablesApplier(netns=ns).apply(_ruleset(ARTICLE_MYSVC))
    saved = _save(lab, ns)
    assert plan.removed_duplicate_jumps == 1
    assert "KUBE-SVC-LEFTOVERLEFTOVER" not in saved["nat"].chains
    assert "KUBE-SEP-LEFTOVERLEFTOVER" not in saved["nat"].chains
    assert "CNI-HOSTPORT-DNAT" in saved["nat"].chains
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in saved["nat"].rules
    assert "-A INPUT -s 192.0.2.1/32 -j DROP" in saved["filter"].rules
    _assert_each_jump_once(saved)


async def test_failed_restore_changes_nothing_and_forces_full_sync(lab: NetnsLab) -> None:
    ns = lab.add_netns("node")
    applier = IptablesApplier(netns=ns)
    good = _ruleset(ARTICLE_MYSVC)
    await applier.apply(good)
    before = _save_text(lab, ns)

    two = _ruleset(ARTICLE_MYSVC, TWO_SERVICES)
    broken_nat = dict(two.nat.chains)
    broken_nat["KUBE-SERVICES"] = (*broken_nat["KUBE-SERVICES"], "-A KUBE-SERVICES -j KUBE-NO-SUCH-CHAIN")
    broken = replace(two, nat=TableRules("nat", broken_nat))
    with pytest.raises(CommandError, match="iptables-restore"):
        await applier.apply(broken)
    # One restore is one transaction: no new chain, no changed rule.
    assert _save_text(lab, ns) == before

    plan = await applier.apply(two)
    assert plan.written_chains["nat"] == frozenset(two.nat.chains), "after a failure the next sync is full"
