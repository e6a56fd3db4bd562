"""Pod traffic that leaves the cluster's pod range leaves with the node's address.

This is the ip-masq-agent's rule set, as kind's kindnet installs it on every node: POSTROUTING
sends everything not addressed to this node to the `IP-MASQ-AGENT` chain, which lets traffic
to the cluster CIDR (pod to pod, across nodes too) keep the pod's address and masquerades the
rest. It is needed where the machines a pod talks to outside the pod range cannot route back
to pod addresses: in compose, the API server and DNS containers sit on the node network with
no route to any node's pod range. The local launcher does not need it (the root namespace,
where the control plane runs, routes every pod range via its node) and does not turn it on.

`rules` is pure (the iptables-restore input); `ensure` writes it into the node's network
namespace without touching any other chain: the chain is declared (so flushed and refilled)
with `--noflush`, and the POSTROUTING jump is added only if `iptables -C` does not find it.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

from services.nodeagent import netns

log = logging.getLogger(__name__)

CHAIN = "IP-MASQ-AGENT"
JUMP = ("-m", "comment", "--comment",
        "ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom "
        "IP-MASQ-AGENT chain", "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", CHAIN)


def rules(cluster_cidr: str) -> str:
    """The nat table's IP-MASQ-AGENT chain for iptables-restore --noflush."""
    net = ipaddress.ip_network(cluster_cidr, strict=True)
    return "\n".join([
        "*nat",
        f":{CHAIN} - [0:0]",
        f'-A {CHAIN} -d {net} -m comment --comment "ip-masq-agent: local traffic is not subject to '
        f'MASQUERADE" -j RETURN',
        f'-A {CHAIN} -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE '
        f'(must be last in chain)" -j MASQUERADE',
        "COMMIT",
        "",
    ])


async def _run(argv: list[str], stdin: bytes | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(stdin)
    return proc.returncode or 0, err.decode(errors="replace").strip()


async def ensure(cluster_cidr: str, host_netns: str | None = None) -> None:
    """Install (or refresh) the chain and its POSTROUTING jump; raises RuntimeError on failure."""
    code, err = await _run(netns.nsenter_argv(host_netns, ["iptables-restore", "-w", "5", "--noflush"]),
                           rules(cluster_cidr).encode())
    if code != 0:
        raise RuntimeError(f"iptables-restore of {CHAIN}: {err}")
    check = netns.nsenter_argv(host_netns, ["iptables", "-w", "5", "-t", "nat", "-C", "POSTROUTING", *JUMP])
    if (await _run(check))[0] == 0:
        return
    code, err = await _run(netns.nsenter_argv(host_netns,
                                              ["iptables", "-w", "5", "-t", "nat", "-A", "POSTROUTING", *JUMP]))
    if code != 0:
        raise RuntimeError(f"iptables -A POSTROUTING -j {CHAIN}: {err}")
    log.info("pod traffic leaving %s is masqueraded (%s)", cluster_cidr, CHAIN)
