"""A packet through an nftables table (`nft -j list table ...`): which rules of its base chains
it meets, in the kernel's order, and where it ends - the nftables twin of `iptables.walk`.

Pure: it reads the JSON nft prints (and, for display, the same table as `nft -a list table`
text, whose `# handle N` comments tie each line to its rule) and a `Packet`, and returns the
same `Path`s the iptables walker returns, so an account mixes both (a node in nftables mode
still has the CNI plugins' and the node agent's iptables rules).

The expressions understood are those the proxy's nftables mode writes (kube-proxy's): address,
protocol and port matches, prefixes, named and anonymous sets, verdict maps on concatenations
(`ip daddr . meta l4proto . th dport vmap @service-ips`), `fib ... type local`, `ct state`,
marks, `numgen random mod N` (where the walk forks, with the chance of each branch), jump,
goto, return, accept, drop, reject, dnat, masquerade. A rule with anything else is reported as
not understood and taken as not matching.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kubecore.nettrace.iptables import Hit, Packet, ParseError, Path, Rule, WalkState, fork

Obj = Mapping[str, Any]
MAX_DEPTH = 32
NAT_PRIORITY_NAMES = {"dstnat": -100, "srcnat": 100, "filter": 0, "raw": -300, "mangle": -150}


class Unknown(Exception):
    """An expression this walker does not evaluate."""


@dataclass(frozen=True)
class BaseChain:
    name: str
    type: str  # filter, nat, route
    hook: str  # prerouting, input, forward, output, postrouting
    priority: int
    policy: str  # accept or drop


@dataclass(frozen=True)
class NftTable:
    """One table: its base chains, every chain's rules (as `Rule`s for display plus their
    JSON expressions), and its named sets and maps."""

    label: str  # "ip kube-proxy"
    base: tuple[BaseChain, ...]
    rules: Mapping[str, tuple[Rule, ...]]
    exprs: Mapping[tuple[str, int], Sequence[Obj]]  # (chain, index) -> the rule's expressions
    sets: Mapping[str, Sequence[Any]]  # name -> elements (JSON values)
    maps: Mapping[str, Sequence[tuple[Any, Any]]]  # name -> (key, verdict) elements


_HANDLE = re.compile(r"^\s*(.*?)\s+# handle (\d+)$")


def _texts_by_handle(text: str) -> dict[int, str]:
    out = {}
    for line in text.splitlines():
        m = _HANDLE.match(line)
        if m and not line.lstrip().startswith(("chain ", "set ", "map ", "table ")):
            out[int(m.group(2))] = m.group(1)
    return out


def _priority(value: Any) -> int:
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\w+)\s*(?:([+-])\s*(\d+))?\s*", str(value))
    if not m or m.group(1) not in NAT_PRIORITY_NAMES:
        raise ParseError(f"chain priority {value!r} not understood")
    base = NAT_PRIORITY_NAMES[m.group(1)]
    return base + (int(m.group(3)) * (1 if m.group(2) == "+" else -1) if m.group(2) else 0)


def parse_nft(doc: Obj, text: str = "") -> NftTable:
    """`nft -j list table <family> <name>` (and optionally its `nft -a list table` text)."""
    items = doc.get("nftables")
    if not isinstance(items, list):
        raise ParseError("not nft JSON (no 'nftables' list)")
    texts = _texts_by_handle(text)
    label, base = "", []
    rules: dict[str, list[Rule]] = {}
    exprs: dict[tuple[str, int], Sequence[Obj]] = {}
    sets: dict[str, Sequence[Any]] = {}
    maps: dict[str, Sequence[tuple[Any, Any]]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if "table" in item:
            label = f"{item['table'].get('family')} {item['table'].get('name')}"
        elif "chain" in item:
            c = item["chain"]
            rules.setdefault(c["name"], [])
            if "hook" in c:
                base.append(BaseChain(c["name"], c.get("type", "filter"), c["hook"], _priority(c.get("prio", 0)),
                                      c.get("policy", "accept")))
        elif "rule" in item:
            r = item["rule"]
            chain = rules.setdefault(r["chain"], [])
            index = len(chain) + 1
            shown = texts.get(int(r.get("handle", -1)), "") or _render(r.get("expr") or [])
            comment = r.get("comment") or ""
            chain.append(Rule(r["chain"], shown, index, None, None, (), "", {}, comment))
            exprs[(r["chain"], index)] = r.get("expr") or []
        elif "set" in item:
            sets[item["set"]["name"]] = item["set"].get("elem") or []
        elif "map" in item:
            maps[item["map"]["name"]] = [tuple(e) for e in item["map"].get("elem") or () if len(e) == 2]
    return NftTable(label, tuple(sorted(base, key=lambda b: b.priority)),
                    {c: tuple(r) for c, r in rules.items()}, exprs, sets, maps)


def _render(exprs: Sequence[Obj]) -> str:
    """A rough text of a rule when nft's own text is not at hand."""
    return " ".join(str(e) for e in exprs)


# --- evaluation -----------------------------------------------------------------------------

def _value(expr: Any, p: Packet) -> Any:
    """The packet's value of a left-hand expression."""
    if not isinstance(expr, dict):
        return expr
    if "payload" in expr:
        fields = {"saddr": p.src, "daddr": p.dst, "dport": p.dport, "sport": p.sport}
        return _known(fields, expr["payload"].get("field"), expr)
    if "meta" in expr:
        keys = {"l4proto": p.protocol, "mark": p.mark, "iifname": p.in_iface, "oifname": p.out_iface,
                "protocol": "ip", "nfproto": "ipv4"}
        return _known(keys, expr["meta"].get("key"), expr)
    if "ct" in expr and expr["ct"].get("key") == "state":
        return {p.ctstate.lower()}
    if "fib" in expr and expr["fib"].get("result") == "type":
        addr = p.src if "saddr" in (expr["fib"].get("flags") or ()) else p.dst
        return "local" if addr in p.local else "unicast"
    if "concat" in expr:
        return tuple(_value(e, p) for e in expr["concat"])
    if "&" in expr:
        a, b = (_value(e, p) for e in expr["&"])
        return int(a) & int(b)
    return _unknown(expr)


def _known(values: Mapping[str, Any], key: Any, expr: Any) -> Any:
    if key not in values:
        return _unknown(expr)
    return values[key]


def _unknown(expr: Any) -> Any:
    raise Unknown(str(expr))


def _ip_in(value: Any, spec: Any) -> bool:
    """`value` (an address) against an address, a prefix or a range."""
    try:
        ip = ipaddress.ip_address(str(value))
        if isinstance(spec, dict) and "prefix" in spec:
            net = ipaddress.ip_network(f"{spec['prefix']['addr']}/{spec['prefix']['len']}", strict=False)
            return ip in net
        if isinstance(spec, dict) and "range" in spec:
            lo, hi = (int(ipaddress.ip_address(str(v))) for v in spec["range"])
            return lo <= int(ip) <= hi
        return ip == ipaddress.ip_address(str(spec))
    except ValueError:
        return False


def _equal(value: Any, spec: Any) -> bool:
    if isinstance(value, tuple):
        if isinstance(spec, dict) and "concat" in spec:
            spec = spec["concat"]
        return isinstance(spec, list) and len(spec) == len(value) and all(map(_equal, value, spec))
    if isinstance(value, set):  # ct state
        wanted = spec if isinstance(spec, list) else [spec]
        return bool(value & {str(w) for w in wanted})
    if isinstance(spec, dict) and ("prefix" in spec or "range" in spec):
        return _in_interval(value, spec)
    if isinstance(value, int) or isinstance(spec, int):
        try:
            return int(value) == int(spec)
        except (TypeError, ValueError):
            return False
    if isinstance(value, str) and _looks_ip(value) and isinstance(spec, str) and _looks_ip(spec):
        return _ip_in(value, spec)
    return str(value) == str(spec)


def _in_interval(value: Any, spec: Obj) -> bool:
    """`value` in a prefix, or in a range of ports or addresses."""
    if "range" in spec and isinstance(value, int):
        lo, hi = spec["range"]
        return int(lo) <= value <= int(hi)
    return _ip_in(value, spec)


def _looks_ip(s: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+", s))


def _elements(table: NftTable, spec: Any) -> Sequence[Any] | None:
    """The elements of a set operand: `@name` or an anonymous `{"set": [...]}`."""
    if isinstance(spec, str) and spec.startswith("@"):
        name = spec[1:]
        if name not in table.sets:
            if name.startswith("affinity-"):
                return []  # kernel-filled (dynamic); what a probe's client is in is not known here
            raise Unknown(spec)
        return [e.get("elem", {}).get("val", e) if isinstance(e, dict) and "elem" in e else e
                for e in table.sets[name]]
    if isinstance(spec, dict) and "set" in spec:
        return spec["set"] if isinstance(spec["set"], list) else [spec["set"]]
    return None


def _match(table: NftTable, m: Obj, p: Packet) -> bool:
    value = _value(m.get("left"), p)
    spec = m.get("right")
    members = _elements(table, spec)
    hit = any(_equal(value, e) for e in members) if members is not None else _equal(value, spec)
    op = m.get("op", "==")
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    raise Unknown(f"op {op}")


def _lookup(table: NftTable, vmap: Obj, p: Packet) -> Any | None:
    """The verdict a `vmap` gives the packet (None: no element matches)."""
    key = _value(vmap.get("key"), p)
    data = vmap.get("data")
    if isinstance(data, str) and data.startswith("@"):
        if data[1:] not in table.maps:
            raise Unknown(data)
        elements = table.maps[data[1:]]
    elif isinstance(data, dict) and "set" in data:
        elements = [tuple(e) for e in data["set"]]
    else:
        raise Unknown(str(data))
    for element, verdict in elements:
        k = element.get("elem", {}).get("val", element) if isinstance(element, dict) and "elem" in element \
            else element
        if _equal(key, k):
            return verdict
    return None


def _mangle_mark(stmt: Obj, p: Packet) -> Packet:
    value = stmt.get("value")
    if isinstance(value, dict):
        (op, (_, operand)), = value.items()
        mark = {"|": p.mark | int(operand), "^": p.mark ^ int(operand), "&": p.mark & int(operand)}[op]
    elif isinstance(value, int):
        mark = value
    else:
        raise Unknown(f"mark value {value!r}")
    return replace(p, mark=mark & 0xFFFFFFFF)


def walk_nft(table: NftTable, type_: str, hook: str, packet: Packet) -> list[Path]:
    """Every path the packet can take through the table's base chains of `type_` at `hook`
    (in priority order), most likely first. A nat chain that rewrote the packet ends the hook;
    a drop or reject ends it with that verdict."""
    states: list[tuple[WalkState, str]] = [(WalkState([], packet, 1.0, "", []), "accept")]
    for base in (b for b in table.base if b.type == type_ and b.hook == hook):
        following: list[tuple[WalkState, str]] = []
        for state, verdict in states:
            if verdict != "accept" or (type_ == "nat" and state.nat):
                following.append((state, verdict))
                continue
            for sub, ending in _chain(table, base.name, state, 0):
                following.append((sub, base.policy if ending in ("", "return") else ending))
        states = following
    out = [Path(tuple(s.hits), v.upper(), s.packet, s.probability, s.nat, tuple(s.unknown)) for s, v in states]
    return sorted(out, key=lambda path: -round(path.probability, 6))


def _chain(table: NftTable, chain: str, state: WalkState, depth: int) -> Iterator[tuple[WalkState, str]]:
    if depth > MAX_DEPTH:
        raise ParseError(f"chains nest deeper than {MAX_DEPTH} at {chain}")
    if chain not in table.rules:
        raise ParseError(f"a rule jumps to chain {chain}, which the table does not have")
    yield from _rules(table, chain, table.rules[chain], 0, state, depth)


def _rules(table: NftTable, chain: str, rules: Sequence[Rule], start: int, state: WalkState,
           depth: int) -> Iterator[tuple[WalkState, str]]:
    for i in range(start, len(rules)):
        rule = rules[i]
        try:
            yield from _rule(table, chain, rules, i, rule, list(table.exprs[(chain, rule.index)]), state, depth)
            return
        except _NoMatch:
            continue
        except Unknown:
            state.hits.append(Hit(table.label, rule, False))
            state.unknown.append(rule)
            continue
    yield state, ""


class _NoMatch(Exception):
    pass


def _rule(table: NftTable, chain: str, rules: Sequence[Rule], i: int, rule: Rule, exprs: list[Obj],
          state: WalkState, depth: int) -> Iterator[tuple[WalkState, str]]:
    """One rule: its matches in order (a numgen match forks the walk), then its statements.
    Raises _NoMatch (after noting the miss) when the packet does not match."""
    for n, e in enumerate(exprs):
        if "match" in e and not _is_numgen(e["match"]):
            if not _match(table, e["match"], state.packet):
                state.hits.append(Hit(table.label, rule, False))
                raise _NoMatch
        elif "match" in e:
            chance = 1.0 / int(e["match"]["left"]["numgen"]["mod"])
            skipped = fork(state)
            skipped.probability *= 1.0 - chance
            skipped.hits.append(Hit(table.label, rule, False, chance))
            state.probability *= chance
            state.hits.append(Hit(table.label, rule, True, chance))
            yield from _statements(table, chain, rules, i, exprs[n + 1:], state, depth)
            yield from _rules(table, chain, rules, i + 1, skipped, depth)
            return
    state.hits.append(Hit(table.label, rule, True))
    yield from _statements(table, chain, rules, i, [e for e in exprs if "match" not in e], state, depth)


def _is_numgen(m: Obj) -> bool:
    """`numgen random mod N == offset`: true for one packet in N."""
    left, right = m.get("left"), m.get("right")
    return (isinstance(left, dict) and "numgen" in left and left["numgen"].get("mode") == "random"
            and isinstance(right, int) and right == int(left["numgen"].get("offset", 0)))


def _statements(table: NftTable, chain: str, rules: Sequence[Rule], i: int, stmts: list[Obj], state: WalkState,
                depth: int) -> Iterator[tuple[WalkState, str]]:
    for n, s in enumerate(stmts):
        if "match" in s:  # a match after a numgen one
            if not _match(table, s["match"], state.packet):
                yield from _rules(table, chain, rules, i + 1, state, depth)
                return
            continue
        (kind, arg), = s.items()
        if kind in ("counter", "set", "log", "notrack"):
            continue
        if kind == "mangle" and (arg.get("key") or {}).get("meta", {}).get("key") == "mark":
            state.packet = _mangle_mark(arg, state.packet)
            continue
        if kind in ("accept", "drop", "reject", "return"):
            yield state, kind
            return
        if kind == "dnat":
            port = arg.get("port")
            state.packet = replace(state.packet, dst=str(arg.get("addr", state.packet.dst)),
                                   dport=int(port) if port is not None else state.packet.dport)
            state.nat = f"DNAT {state.packet.dst}:{state.packet.dport}"
            yield state, "accept"
            return
        if kind in ("masquerade", "snat"):
            state.nat = "MASQUERADE" if kind == "masquerade" else f"SNAT {arg.get('addr', '')}"
            yield state, "accept"
            return
        if kind in ("jump", "goto"):
            yield from _call(table, chain, rules, i, arg["target"], kind == "goto", stmts[n + 1:], state, depth)
            return
        if kind == "vmap":
            verdict = _lookup(table, arg, state.packet)
            if verdict is None:  # no element: the rule did not match after all; on to the next
                if state.hits and state.hits[-1].rule is rules[i]:
                    state.hits[-1] = replace(state.hits[-1], matched=False)
                yield from _rules(table, chain, rules, i + 1, state, depth)
                return
            yield from _statements(table, chain, rules, i, [_verdict_stmt(verdict)], state, depth)
            return
        raise Unknown(kind)
    yield from _rules(table, chain, rules, i + 1, state, depth)


def _verdict_stmt(verdict: Any) -> Obj:
    if isinstance(verdict, dict):
        return verdict
    return {str(verdict): None}


def _call(table: NftTable, chain: str, rules: Sequence[Rule], i: int, target: str, goto: bool,
          rest: list[Obj], state: WalkState, depth: int) -> Iterator[tuple[WalkState, str]]:
    for sub, verdict in _chain(table, target, state, depth + 1):
        if verdict and verdict != "return":
            yield sub, verdict
        elif goto:
            yield sub, "return"  # a goto returns to the caller's caller
        elif rest:
            yield from _statements(table, chain, rules, i, rest, sub, depth)
        else:
            yield from _rules(table, chain, rules, i + 1, sub, depth)
