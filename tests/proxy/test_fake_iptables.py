"""The in-memory iptables accepts and refuses restore input as netfilter does.

Each case is run against `tests.fakes.iptables.FakeIptables`, and against the real
iptables-restore of a scratch network namespace (when the machine allows one), so the
fake the proxier's fast tests rely on is held to the kernel's behaviour.
"""
from __future__ import annotations

import pytest

from services.proxy.iptables import CommandError, Iptables, IptablesCommands
from services.proxy.restore import parse_iptables_save
from tests.fakes.iptables import FakeIptables
from tests.proxy.netns import NetnsLab

SETUP = (
    "*nat\n"
    ":KUBE-SERVICES - [0:0]\n"
    ":KUBE-SVC-A - [0:0]\n"
    ":KUBE-SEP-A - [0:0]\n"
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
    "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A\n"
    "-A KUBE-SVC-A -j KUBE-SEP-A\n"
    "-A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.244.0.2:80\n"
    "COMMIT\n"
)

# (id, restore input, accepted, KUBE- chains of nat afterwards)
CASES = [
    ("declare-flushes", "*nat\n:KUBE-SEP-A - [0:0]\nCOMMIT\n", True,
     {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
    ("flush-then-delete-chain-pair", "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-A - [0:0]\n"
     "-X KUBE-SVC-A\n-X KUBE-SEP-A\nCOMMIT\n", True, {"KUBE-SERVICES"}),
    ("delete-referenced-chain", "*nat\n:KUBE-SEP-A - [0:0]\n-X KUBE-SEP-A\nCOMMIT\n", False,
     {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
    ("delete-non-empty-chain", "*nat\n-X KUBE-SEP-A\nCOMMIT\n", False, {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
    ("jump-to-missing-chain", "*nat\n:KUBE-SVC-B - [0:0]\n-A KUBE-SVC-B -j KUBE-SEP-B\nCOMMIT\n", False,
     {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
    ("append-to-missing-chain", "*nat\n-A KUBE-SVC-B -j KUBE-SEP-A\nCOMMIT\n", False,
     {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
    ("delete-existing-jump", '*nat\n-D PREROUTING -m comment --comment "kubernetes service portals" '
     "-j KUBE-SERVICES\nCOMMIT\n", True, {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
    ("delete-missing-rule", "*nat\n-D PREROUTING -j KUBE-SVC-A\nCOMMIT\n", False,
     {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
    ("insert-and-new-chain", "*nat\n:KUBE-SVC-B - [0:0]\n-I OUTPUT 1 -j KUBE-SVC-B\nCOMMIT\n", True,
     {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A", "KUBE-SVC-B"}),
    ("one-bad-line-undoes-all", "*nat\n:KUBE-SVC-B - [0:0]\n-A KUBE-SVC-B -j KUBE-SEP-A\n-X KUBE-SVC-Z\nCOMMIT\n",
     False,
     {"KUBE-SERVICES", "KUBE-SVC-A", "KUBE-SEP-A"}),
]


async def _check(iptables: Iptables, text: str, accepted: bool, chains: set[str]) -> None:
    await iptables.restore(SETUP)
    if accepted:
        await iptables.restore(text)
    else:
        with pytest.raises(CommandError):
            await iptables.restore(text)
    saved = parse_iptables_save(await iptables.save("nat"))
    assert {c for c in saved["nat"].chains if c.startswith("KUBE-")} == chains


@pytest.mark.parametrize("text, accepted, chains", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_fake(text: str, accepted: bool, chains: set[str]) -> None:
    await _check(FakeIptables(), text, accepted, chains)


@pytest.mark.parametrize("text, accepted, chains", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_kernel_agrees(lab: NetnsLab, text: str, accepted: bool, chains: set[str]) -> None:
    await _check(IptablesCommands(netns=lab.add_netns("node")), text, accepted, chains)
