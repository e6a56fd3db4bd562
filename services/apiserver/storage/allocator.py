"""Range allocators kept in etcd: ClusterIPs, NodePorts, node pod CIDRs.

Each allocated value is a claim key (`/registry/ranges/<name>/<value as
fixed-width hex>`) and each range has a counter key holding the next value to
try. An allocation is not a separate step: the claim puts, the counter advance
and the object write go into the *same* etcd transaction, guarded by "claim
key absent". Two creators (also in two apiserver processes) that pick the same
value cannot both commit; the loser retries with the next free value. Since
the claim is written with the object, a create that fails leaks nothing, and a
delete releases its claims in the same transaction that removes the object.

Fixed-width hex keeps etcd's byte order equal to numeric order, so one range
read finds the next gap.
"""
from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.apiserver.storage import etcd as E

SCAN_PAGE = 512


class RangeFull(Exception):
    pass


@dataclass
class RangeAllocator:
    """Values first..last (inclusive), with `reserved` values only handed out on request."""

    name: str
    first: int
    last: int
    reserved: frozenset[int] = frozenset()
    _next: int | None = field(default=None, repr=False)
    _loading: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def prefix(self) -> str:
        return f"/registry/ranges/{self.name}/"

    @property
    def counter_key(self) -> str:
        return f"/registry/ranges/{self.name}-next"

    def claim_key(self, value: int) -> str:
        return f"{self.prefix}{value:08x}"

    def value_of(self, key: str | bytes) -> int:
        k = key.decode() if isinstance(key, bytes) else key
        return int(k.rsplit("/", 1)[1], 16)

    def contains(self, value: int) -> bool:
        return self.first <= value <= self.last

    async def _load_hint(self, etcd: E.Etcd) -> int:
        kv, _ = await etcd.get(self.counter_key)
        hint = int(kv.value.decode(), 16) if kv is not None else self.first
        return hint if self.contains(hint) else self.first

    def _advance(self, value: int) -> int:
        value += 1
        return self.first if value > self.last else value

    async def pick(self, etcd: E.Etcd) -> int:
        """A candidate value. In-process callers get distinct candidates without waiting;
        etcd decides in the transaction whether the candidate is really free."""
        if self._next is None:
            async with self._loading:  # the first burst of callers reads the counter once
                if self._next is None:
                    self._next = await self._load_hint(etcd)
        value = self._next
        while value in self.reserved:
            value = self._advance(value)
        self._next = self._advance(value)
        return value

    def _distance(self, start: int, value: int) -> int:
        return (value - start) % (self.last - self.first + 1)

    def _move_hint(self, lost: int, value: int) -> None:
        """Only move forward: values between here and our current hint were already handed
        to requests still in flight in this process."""
        if self._next is None or self._distance(lost, value) > self._distance(lost, self._next):
            self._next = value

    async def skip_taken(self, etcd: E.Etcd, lost: int) -> None:
        """After losing `lost`: move the hint to the first free value after it (scanning the
        claims in order, wrapping once); RangeFull when there is none."""
        counter, _ = await etcd.get(self.counter_key)
        start = self._advance(lost)
        if counter is not None:
            other = int(counter.value.decode(), 16)
            if self.contains(other) and other > start:
                start = other  # another process moved ahead: follow it
        for lo, hi in ((start, self.last), (self.first, start - 1)):
            value = lo
            while value <= hi:
                kvs = await etcd.get_range(self.claim_key(value), self.claim_key(hi + 1),
                                           limit=SCAN_PAGE)
                taken = [self.value_of(kv.key) for kv in kvs]
                for t in taken:
                    while value < t and value in self.reserved:
                        value += 1
                    if value < t:
                        self._move_hint(lost, value)
                        return
                    value = t + 1
                if len(kvs) < SCAN_PAGE:
                    while value <= hi and value in self.reserved:
                        value += 1
                    if value <= hi:
                        self._move_hint(lost, value)
                        return
                    break
        raise RangeFull(f"range {self.name} is full")

    def claim_ops(self, values: Iterable[int], owner: str, picked: Iterable[int] = ()
                  ) -> tuple[list[E.Compare], list[E.Op], dict[str, bytes]]:
        """Compares and puts that claim `values` for `owner`, and the counter's new value
        (a hint for `E.Etcd.txn`): past the last of `picked` (the values this allocator
        chose, not the user)."""
        compares, ops = [], []
        for value in values:
            key = self.claim_key(value)
            compares.append(E.absent(key))
            ops.append(E.put(key, owner.encode()))
        picked = list(picked)
        hints = {self.counter_key: f"{self._advance(picked[-1]):08x}".encode()} if picked else {}
        return compares, ops, hints

    def release_ops(self, values: Iterable[int]) -> list[E.Op]:
        return [E.delete(self.claim_key(v)) for v in values]

    async def taken(self, etcd: E.Etcd, values: Iterable[int]) -> set[int]:
        out = set()
        for v in values:
            kv, _ = await etcd.get(self.claim_key(v))
            if kv is not None:
                out.add(v)
        return out


def ip_allocator(name: str, cidr: str, reserved_offsets: Iterable[int] = ()) -> IPRange:
    return IPRange(name, ipaddress.IPv4Network(cidr), frozenset(reserved_offsets))


class IPRange:
    """IPv4 addresses of a network (network and broadcast address excluded)."""

    def __init__(self, name: str, network: ipaddress.IPv4Network, reserved_offsets: frozenset[int]):
        self.network = network
        base = int(network.network_address)
        self.alloc = RangeAllocator(name, base + 1, base + network.num_addresses - 2,
                                    frozenset(base + o for o in reserved_offsets))

    def to_int(self, ip: str) -> int:
        return int(ipaddress.IPv4Address(ip))

    def to_ip(self, value: int) -> str:
        return str(ipaddress.IPv4Address(value))

    def contains(self, ip: str) -> bool:
        try:
            return self.alloc.contains(self.to_int(ip))
        except ValueError:
            return False


class SubnetRange:
    """Fixed-size subnets of a network (node pod CIDRs: /24s of 10.244.0.0/16)."""

    def __init__(self, name: str, cidr: str, mask: int):
        self.network = ipaddress.IPv4Network(cidr)
        self.mask = mask
        count = 2 ** (mask - self.network.prefixlen)
        self.alloc = RangeAllocator(name, 0, count - 1)

    def to_cidr(self, index: int) -> str:
        size = 2 ** (32 - self.mask)
        return f"{ipaddress.IPv4Address(int(self.network.network_address) + index * size)}/{self.mask}"

    def index_of(self, cidr: str) -> int | None:
        try:
            net = ipaddress.IPv4Network(cidr)
        except ValueError:
            return None
        if net.prefixlen != self.mask or not net.subnet_of(self.network):
            return None
        return (int(net.network_address) - int(self.network.network_address)) // 2 ** (32 - self.mask)
