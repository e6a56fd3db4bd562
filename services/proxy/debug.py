"""`GET /debug/rules?service=<namespace>/<name>` on the proxy's health port: the rules this
proxy last programmed for one Service, in the mode it runs in.

What an operator greps `iptables-save` or `nft list table ip kube-proxy` for, without the
thousands of lines of every other Service:

- iptables mode: every rule whose comment names one of the Service's ports (kube-proxy puts
  `ns/name:port` in each), and the whole of each KUBE-SVC-/SVL-/SEP-/EXT-/FW- chain those
  rules live in, grouped by table in iptables-save's form;
- nftables mode: the Service's chains and its elements of the shared maps and sets, in
  `nft list` form.

It reads the proxy's memory of what it wrote (the applier's), not the kernel: the kernel's
own view is `iptables-save` / `nft list table` in the node's namespace.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from aiohttp import web

from services.proxy.nftables import TABLE_REF, ServiceRules
from services.proxy.proxier import Proxier

SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-")


def iptables_rules(written: Mapping[str, Mapping[str, tuple[str, ...]]], port_names: Iterable[str]) -> str:
    """The lines of `written` (table -> chain -> `-A` lines) that belong to the ports named."""
    names = list(port_names)
    if not names:
        return ""
    comment = re.compile(r'--comment "?(?:masquerade traffic for )?(?:' + "|".join(map(re.escape, names))
                         + r')(?=[ "]|$)')
    out: list[str] = []
    for table, chains in written.items():
        own = {chain for chain, rules in chains.items() if chain.startswith(SERVICE_CHAIN_PREFIXES)
               and any(comment.search(rule) for rule in rules)}
        lines = [rule for chain, rules in chains.items() for rule in rules
                 if chain in own or comment.search(rule)]
        if lines:
            out += [f"*{table}", *lines]
    return "\n".join(out) + "\n" if out else ""


def nftables_rules(rules: ServiceRules) -> str:
    """One Service's chains and elements as `nft list` would print them."""
    lines = [f"table {TABLE_REF} {{"]
    for name, timeout in rules.affinity_sets.items():
        lines += [f"\tset {name} {{", "\t\ttype ipv4_addr", "\t\tflags dynamic,timeout",
                  f"\t\ttimeout {timeout}s", "\t}"]
    for chain, chain_rules in rules.chains.items():
        lines += [f"\tchain {chain} {{", *(f"\t\t{rule}" for rule in chain_rules), "\t}"]
    lines.append("}")
    lines += [f"element {TABLE_REF} {e.container} {{ {e.text()} }}" for e in rules.elements]
    return "\n".join(lines) + "\n"


def rules_for(proxier: Proxier, namespace: str, name: str) -> str | None:
    """The Service's programmed rules, or None when this proxy has programmed none for it."""
    key = (namespace, name)
    if proxier.mode == "nftables":
        applied = proxier.nft_applier.applied(key)
        return nftables_rules(applied.rules) if applied is not None else None
    ports = proxier.index.ports().get(key, ())
    written = proxier.applier.written()
    text = iptables_rules(written, sorted({str(sp.name) for sp in ports})) if written is not None else ""
    return text or None


def add_debug_routes(app: web.Application, proxier: Proxier) -> None:
    async def get_rules(request: web.Request) -> web.Response:
        service = request.query.get("service", "")
        namespace, _, name = service.partition("/")
        if not namespace or not name or "/" in name:
            return web.Response(status=400, text="give the Service as ?service=<namespace>/<name>\n")
        text = rules_for(proxier, namespace, name)
        if text is None:
            return web.Response(status=404, text=f"no rules programmed for Service {namespace}/{name} "
                                                 f"({proxier.mode} mode)\n")
        return web.Response(text=f"# Service {namespace}/{name}, {proxier.mode} mode, node "
                                 f"{proxier.settings.node_name}\n{text}")

    app.router.add_get("/debug/rules", get_rules)
