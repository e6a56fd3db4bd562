"""`--cleanup`: the proxy's chains and jumps go, everyone else's rules stay."""
from __future__ import annotations

from services.proxy.cleanup import cleanup, plan_cleanup
from services.proxy.iptables import IptablesApplier
from services.proxy.model import build_snapshot
from services.proxy.restore import parse_iptables_save
from services.proxy.rules import NodeSettings, jump_rules, render
from tests.proxy.cases import ARTICLE_MYSVC
from tests.proxy.netns import NetnsLab

FOREIGN = (
    "*nat\n"
    ":CNI-HOSTPORT-DNAT - [0:0]\n"
    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
    "COMMIT\n"
    "*filter\n"
    ":KUBE-FIREWALL-NOT-OURS - [0:0]\n"
    "-A INPUT -s 192.0.2.1/32 -j DROP\n"
    "COMMIT\n"
)


def test_plan_of_a_clean_namespace_is_empty() -> None:
    saved = parse_iptables_save(FOREIGN)
    assert plan_cleanup(saved).text == ""


async def test_cleanup_removes_ours_and_keeps_foreign_rules(lab: NetnsLab) -> None:
    ns = lab.add_netns("node")
    lab.exec(ns, ["iptables-restore", "--noflush"], input=FOREIGN)
    settings = NodeSettings(node_name="node-a", cluster_cidr="10.244.0.0/16")
    snapshot = build_snapshot(ARTICLE_MYSVC.services, ARTICLE_MYSVC.slices, node_name="node-a")
    await IptablesApplier(netns=ns).apply(render(snapshot, settings))
    # A leftover jump of an older layout, which would keep the chain from being deleted.
    lab.exec(ns, ["iptables", "-t", "nat", "-A", "OUTPUT", "-j", "KUBE-SERVICES"])

    plan = await cleanup(netns=ns)
    assert plan.deleted_rules == len(jump_rules()) + 1  # our jumps and the leftover
    assert "KUBE-SVC-BM6F4AVTDKG47F3K" in plan.deleted_chains["nat"]

    after = lab.exec(ns, ["iptables-save"]).stdout
    saved = parse_iptables_save(after)
    assert {c for t in saved.values() for c in t.chains if c.startswith("KUBE-")} == {
        "KUBE-FIREWALL-NOT-OURS"
    }
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in saved["nat"].rules
    assert "-A INPUT -s 192.0.2.1/32 -j DROP" in saved["filter"].rules
    assert not [r for t in saved.values() for r in t.rules if "KUBE-" in r]

    again = await cleanup(netns=ns)
    assert again.text == ""
    assert parse_iptables_save(lab.exec(ns, ["iptables-save"]).stdout) == saved
