"""A pod network in memory: `cni.NetworkPlugin` without plugins, namespaces or root.

ADD hands out the next free address of the pod range (the first one is the gateway, as
host-local leaves it), DEL gives it back, CHECK fails for an attachment it does not hold. Every
call is recorded in `calls`; `fail_add` makes the next ADDs fail as a plugin would.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from services.nodeagent.cni import CniError, CniResult, RuntimeConf, parse_result


class FakeCni:
    def __init__(self, pod_cidr: str = "10.244.1.0/24", *, host_netns_path: str | None = None) -> None:
        self.network = ipaddress.ip_network(pod_cidr)
        self.host_netns_path = host_netns_path
        self.attached: dict[str, str] = {}  # container (sandbox) id -> address
        self.calls: list[tuple[str, str]] = []  # (command, container id)
        self.fail_add: CniError | None = None

    def _free_address(self) -> str:
        hosts = list(self.network.hosts())
        taken = set(self.attached.values())
        for host in hosts[1:]:  # hosts[0] is the gateway
            if str(host) not in taken:
                return str(host)
        raise CniError(msg=f"no IP addresses available in range set: {self.network}", code=11,
                       plugin="host-local", command="ADD")

    async def add(self, rt: RuntimeConf) -> CniResult:
        self.calls.append(("ADD", rt.container_id))
        if self.fail_add is not None:
            raise self.fail_add
        address = self.attached.get(rt.container_id) or self._free_address()
        self.attached[rt.container_id] = address
        gateway = next(self.network.hosts())
        return parse_result({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": rt.ifname, "sandbox": rt.netns}],
            "ips": [{"address": f"{address}/{self.network.prefixlen}", "gateway": str(gateway), "interface": 0}],
        })

    async def delete(self, rt: RuntimeConf, *, prev_result: Mapping[str, Any] | None = None) -> None:
        self.calls.append(("DEL", rt.container_id))
        self.attached.pop(rt.container_id, None)

    async def check(self, rt: RuntimeConf, *, prev_result: Mapping[str, Any]) -> None:
        self.calls.append(("CHECK", rt.container_id))
        if rt.container_id not in self.attached:
            raise CniError(msg=f"no attachment for {rt.container_id}", code=3, plugin="fake", command="CHECK")

    def addresses(self) -> list[str]:
        """The addresses held now, in order."""
        return sorted(self.attached.values(), key=ipaddress.ip_address)
