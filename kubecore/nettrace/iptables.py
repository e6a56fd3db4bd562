"""A packet through `iptables-save` output: which rules of a table's chains it meets, in order,
and where it ends, as the kernel evaluates them for the first packet of a connection.

Pure: it reads the text a node's `iptables-save -c` prints and a `Packet`, and returns the
paths. Only the matches and targets that kube-proxy, the CNI plugins (ptp, portmap) and the
node agent write are understood; a rule with any other match is reported as not understood and
taken as not matching, so an account never claims more than it knows.

`-m statistic --mode random` is kube-proxy's load balancing: a packet takes the rule with its
probability. The walk forks there, so it returns every path a packet can take with the chance
of each (kube-proxy's 1/n, 1/(n-1), ... rules give each endpoint 1/n).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

BUILTIN = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
TERMINAL = frozenset({"ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT"})
_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]\s+")


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    """One `-A` line: its chain, the text as saved (without counters), packet and byte counters
    (with `iptables-save -c`), and the parsed matches and target."""

    chain: str
    text: str
    index: int  # 1-based position in its chain, as `iptables -L --line-numbers`
    packets: int | None
    bytes: int | None
    matches: tuple[tuple[str, bool, str], ...]  # (option, negated, value)
    target: str
    target_args: Mapping[str, str]
    comment: str = ""
    unknown: tuple[str, ...] = ()  # options this walker does not evaluate


class Table:
    """One table: its built-in chains' policies and its chains' rules. A chain's lines are parsed
    when first asked for (a trace reads a few chains of the thousands a big node has)."""

    def __init__(self, name: str, policies: Mapping[str, str], lines: Mapping[str, list[str]]) -> None:
        self.name = name
        self.policies = policies  # built-in chain -> policy
        self._lines = lines
        self._parsed: dict[str, tuple[Rule, ...]] = {}

    def __contains__(self, chain: str) -> bool:
        return chain in self._lines

    def chain_names(self) -> list[str]:
        return list(self._lines)

    def rules(self, chain: str) -> tuple[Rule, ...]:
        parsed = self._parsed.get(chain)
        if parsed is None:
            parsed = self._parsed[chain] = tuple(
                replace(parse_rule(line), index=i) for i, line in enumerate(self._lines.get(chain, ()), 1))
        return parsed

    def counters(self) -> dict[str, int]:
        """Each rule's text (as saved, without counters) -> its packet counter; cheap: no parsing."""
        out = {}
        for lines in self._lines.values():
            for line in lines:
                m = _COUNTERS.match(line)
                out[line[m.end():] if m else line] = int(m.group(1)) if m else 0
        return out


_CHAIN_OF = re.compile(r"^(?:\[\d+:\d+\]\s+)?-A\s+(\S+)")


def parse_save(text: str) -> dict[str, Table]:
    """`iptables-save [-c]` output -> its tables by name (rules parsed lazily, per chain)."""
    tables: dict[str, Table] = {}
    name: str | None = None
    policies: dict[str, str] = {}
    chains: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            name, policies, chains = line[1:], {}, {}
        elif line == "COMMIT":
            if name is None:
                raise ParseError("COMMIT outside a table")
            tables[name] = Table(name, policies, chains)
            name = None
        elif line.startswith(":"):
            chain, policy = (line[1:].split() + ["-"])[:2]
            chains.setdefault(chain, [])
            if policy != "-":
                policies[chain] = policy
        else:
            if name is None:
                raise ParseError(f"a rule outside a table: {line}")
            m = _CHAIN_OF.match(line)
            if m is None:
                raise ParseError(f"not a rule: {line}")
            chains.setdefault(m.group(1), []).append(line)
    return tables


_TOKEN = re.compile(r'"((?:\\.|[^"\\])*)"|(\S+)')


def _tokens(line: str) -> list[str]:
    """Split a saved rule as iptables-save quotes it: double quotes around a value with
    spaces, backslash escapes inside them."""
    if '"' not in line:
        return line.split()
    out, pos = [], 0
    for m in _TOKEN.finditer(line):
        if line[pos:m.start()].strip():
            raise ParseError(f"unbalanced quotes: {line}")
        pos = m.end()
        quoted, bare = m.group(1), m.group(2)
        if quoted is not None:
            out.append(re.sub(r"\\(.)", r"\1", quoted))
        elif '"' in bare:
            raise ParseError(f"unbalanced quotes: {line}")
        else:
            out.append(bare)
    return out


_ARG_OPTIONS = {  # options whose value is one token
    "-s", "--source", "-d", "--destination", "-p", "--protocol", "-i", "--in-interface", "-o",
    "--out-interface", "--dport", "--destination-port", "--sport", "--source-port", "--comment",
    "--mode", "--probability", "--mark", "--dst-type", "--src-type", "--ctstate", "--to-destination",
    "--to-source", "--or-mark", "--xor-mark", "--set-xmark", "--set-mark", "--and-mark", "--reject-with",
    "--to-ports", "--dports", "--log-prefix", "-m", "--match", "-j", "--jump", "-g", "--goto",
    "--name", "--mask", "--seconds",
}
# informative, implied by what they introduce, or (`-m recent --set`, kube-proxy's ClientIP
# affinity) an action that changes nothing on this packet's path
_IGNORED = {"--comment", "--mode", "-m", "--name", "--mask", "--seconds", "--rsource", "--set", "--reap"}
_ALIASES = {"--source": "-s", "--destination": "-d", "--protocol": "-p", "--in-interface": "-i",
            "--out-interface": "-o", "--destination-port": "--dport", "--source-port": "--sport",
            "--match": "-m", "--jump": "-j", "--goto": "-g"}
_TARGET_FLAGS = {"--random-fully", "--random", "--persistent"}


def parse_rule(line: str) -> Rule:
    packets = nbytes = None
    m = _COUNTERS.match(line)
    if m:
        packets, nbytes = int(m.group(1)), int(m.group(2))
        line = line[m.end():]
    tokens = _tokens(line)
    if len(tokens) < 2 or tokens[0] != "-A":
        raise ParseError(f"not a rule: {line}")
    chain = tokens[1]
    matches: list[tuple[str, bool, str]] = []
    target, target_args, comment, unknown = "", {}, "", []
    negate, i, in_target = False, 2, False
    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            negate, i = True, i + 1
            continue
        opt = _ALIASES.get(tok, tok)
        if opt in ("-j", "-g"):
            target, in_target, i = tokens[i + 1], True, i + 2
            continue
        if opt in _TARGET_FLAGS and in_target:
            target_args[opt] = ""
            i += 1
            continue
        value = tokens[i + 1] if opt in _ARG_OPTIONS and i + 1 < len(tokens) else ""
        i += 2 if opt in _ARG_OPTIONS else 1
        if in_target:
            target_args[opt] = value
        elif opt == "--comment":
            comment = value
        elif opt in _MATCHERS or opt == "--probability":
            matches.append((opt, negate, value))
        elif opt not in _IGNORED:
            unknown.append(opt)
        negate = False
    return Rule(chain=chain, text=line, index=0, packets=packets, bytes=nbytes, matches=tuple(matches),
                target=target, target_args=target_args, comment=comment, unknown=tuple(unknown))


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection as a hook sees it. `local` holds the node's own
    addresses (`-m addrtype --dst-type LOCAL`); `mark` is the packet mark the rules change."""

    src: str
    dst: str
    protocol: str  # tcp, udp, sctp
    dport: int
    sport: int = 40000
    in_iface: str = ""
    out_iface: str = ""
    mark: int = 0
    ctstate: str = "NEW"
    local: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Hit:
    """A rule the packet met, whether it matched, and (for a random rule) its chance."""

    table: str
    rule: Rule
    matched: bool
    probability: float | None = None


@dataclass(frozen=True)
class Path:
    """One way through a hook: the rules met in order, the verdict, the packet as it leaves
    (after DNAT, marks, SNAT) and how likely this path is."""

    hits: tuple[Hit, ...]
    verdict: str  # ACCEPT, DROP, REJECT
    packet: Packet
    probability: float = 1.0
    nat: str = ""  # "DNAT 10.244.1.3:80", "MASQUERADE", ... what the nat table did
    unknown: tuple[Rule, ...] = field(default=())  # rules skipped because not understood

    @property
    def matched(self) -> list[Hit]:
        return [h for h in self.hits if h.matched]


def _cidr_has(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _mark_matches(value: str, mark: int) -> bool:
    want, _, mask = value.partition("/")
    m = int(mask, 0) if mask else 0xFFFFFFFF
    return (mark & m) == (int(want, 0) & m)


def _port_in(spec: str, port: int) -> bool:
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        if (int(lo) if lo else 0) <= port <= (int(hi) if hi else int(lo)):
            return True
    return False


def _iface_matches(pattern: str, iface: str) -> bool:
    return iface.startswith(pattern[:-1]) if pattern.endswith("+") else iface == pattern


_MATCHERS: dict[str, Callable[[str, Packet], bool]] = {
    "-s": lambda v, p: _cidr_has(v, p.src),
    "-d": lambda v, p: _cidr_has(v, p.dst),
    "-p": lambda v, p: v.lower() in (p.protocol.lower(), "all"),
    "-i": lambda v, p: _iface_matches(v, p.in_iface),
    "-o": lambda v, p: _iface_matches(v, p.out_iface),
    "--dport": lambda v, p: _port_in(v, p.dport),
    "--dports": lambda v, p: _port_in(v, p.dport),
    "--sport": lambda v, p: _port_in(v, p.sport),
    "--mark": lambda v, p: _mark_matches(v, p.mark),
    "--dst-type": lambda v, p: v == "LOCAL" and p.dst in p.local,
    "--src-type": lambda v, p: v == "LOCAL" and p.src in p.local,
    "--ctstate": lambda v, p: p.ctstate in v.split(","),
    # `-m recent --rcheck`: the client's address on a ClientIP affinity list. The account follows
    # a client's first connection, for which no list holds it yet.
    "--rcheck": lambda v, p: False,
}


def _match_one(opt: str, value: str, p: Packet) -> bool:
    matcher = _MATCHERS.get(opt)
    return matcher is not None and matcher(value, p)


def matches(rule: Rule, p: Packet) -> bool:
    """Whether the packet matches every evaluated match (a random one is decided by the walk)."""
    return all(_match_one(opt, value, p) != negated
               for opt, negated, value in rule.matches if opt != "--probability")


def _apply_mark(rule: Rule, p: Packet) -> Packet:
    args, mark = rule.target_args, p.mark
    if "--or-mark" in args:
        mark |= int(args["--or-mark"], 0)
    if "--xor-mark" in args:
        mark ^= int(args["--xor-mark"], 0)
    if "--and-mark" in args:
        mark &= int(args["--and-mark"], 0)
    for key in ("--set-xmark", "--set-mark"):
        if key in args:
            value, _, mask = args[key].partition("/")
            m = int(mask, 0) if mask else 0xFFFFFFFF
            mark = (mark & ~m) ^ int(value, 0) if key == "--set-xmark" else (mark & ~m) | int(value, 0)
    return replace(p, mark=mark & 0xFFFFFFFF)


def _dnat(rule: Rule, p: Packet) -> Packet:
    to = rule.target_args.get("--to-destination", "")
    host, _, port = to.rpartition(":") if ":" in to else (to, "", "")
    return replace(p, dst=host or p.dst, dport=int(port) if port.isdigit() else p.dport)


@dataclass
class WalkState:
    """One way through a table so far (the nftables walker shares it)."""

    hits: list[Hit]
    packet: Packet
    probability: float
    nat: str
    unknown: list[Rule]


MAX_DEPTH = 32


def walk(table: Table, hook: str, packet: Packet) -> list[Path]:
    """Every path the packet can take through `table`'s built-in chain `hook`, most likely first."""
    if hook not in BUILTIN:
        raise ValueError(f"not a built-in chain: {hook}")
    out: list[Path] = []
    for state, ending in _chain(table, hook, WalkState([], packet, 1.0, "", []), 0):
        verdict = table.policies.get(hook, "ACCEPT") if ending in ("", "RETURN") else ending
        out.append(Path(tuple(state.hits), verdict, state.packet, state.probability, state.nat, tuple(state.unknown)))
    return sorted(out, key=lambda path: -round(path.probability, 6))  # stable among equals


def _chain(table: Table, chain: str, state: WalkState, depth: int) -> Iterator[tuple[WalkState, str]]:
    """Yield (state, verdict) for each way out of `chain`: verdict "" falls off its end."""
    if depth > MAX_DEPTH:
        raise ParseError(f"chains nest deeper than {MAX_DEPTH} at {chain}")
    yield from _rules(table, table.rules(chain), 0, state, depth)


def fork(state: WalkState) -> WalkState:
    """A copy to follow the other branch of a random choice."""
    return WalkState(list(state.hits), state.packet, state.probability, state.nat, list(state.unknown))


def _rules(table: Table, rules: Sequence[Rule], start: int, state: WalkState,
           depth: int) -> Iterator[tuple[WalkState, str]]:
    for i in range(start, len(rules)):
        rule = rules[i]
        if rule.unknown:
            state.hits.append(Hit(table.name, rule, False))
            state.unknown.append(rule)
            continue
        if not matches(rule, state.packet):
            state.hits.append(Hit(table.name, rule, False))
            continue
        chance = next((float(v) for opt, _, v in rule.matches if opt == "--probability"), None)
        if chance is not None and chance < 1.0:
            skipped = fork(state)  # the packet that does not draw this rule goes on below
            skipped.probability *= 1.0 - chance
            skipped.hits.append(Hit(table.name, rule, False, chance))
            state.probability *= chance
            state.hits.append(Hit(table.name, rule, True, chance))
            yield from _take(table, rules, i, rule, state, depth)
            yield from _rules(table, rules, i + 1, skipped, depth)
            return
        state.hits.append(Hit(table.name, rule, True, chance))
        yield from _take(table, rules, i, rule, state, depth)
        return
    yield state, ""


def _take(table: Table, rules: Sequence[Rule], i: int, rule: Rule, state: WalkState,
          depth: int) -> Iterator[tuple[WalkState, str]]:
    """The packet matched `rule`: apply its target, then go on (in this chain or out of it)."""
    target = rule.target
    if target in ("ACCEPT", "DROP", "REJECT"):
        yield state, target
        return
    if target == "RETURN":
        yield state, "RETURN"
        return
    if target in ("DNAT", "SNAT", "MASQUERADE", "REDIRECT"):
        if target == "DNAT":
            state.packet = _dnat(rule, state.packet)
            state.nat = f"DNAT {rule.target_args.get('--to-destination', '')}"
        else:
            state.nat = target if target != "SNAT" else f"SNAT {rule.target_args.get('--to-source', '')}"
        yield state, "ACCEPT"  # a nat target ends the table's traversal
        return
    if target == "MARK":
        state.packet = _apply_mark(rule, state.packet)
    elif target in table:
        goto = "-g" in rule.text.split() or "--goto" in rule.text.split()
        for sub, verdict in _chain(table, target, state, depth + 1):
            if verdict and verdict != "RETURN":
                yield sub, verdict
            elif goto:
                yield sub, verdict  # a goto returns to the caller's caller
            else:
                yield from _rules(table, rules, i + 1, sub, depth)
        return
    # MARK, LOG, CT and other non-terminating targets: on to the next rule
    yield from _rules(table, rules, i + 1, state, depth)
