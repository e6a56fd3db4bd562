"""One query in, one response out: the cache hit path, then the full miss path.

No sockets here, so the whole behaviour (including malformed input) is testable by calling
``QueryHandler.answer`` with bytes. The only outcome that needs I/O is forwarding a name we do
not own; that comes back as a :class:`Forward` for the server to carry out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from dnslib import RCODE, DNSLabel

from . import wire
from .answers import ZoneSettings, dependency, resolve
from .cache import Entry, ResponseCache
from .qname import parse_qname
from .records import RecordReader

log = logging.getLogger(__name__)

QCLASS_IN = 1
QCLASS_ANY = 255


@dataclass(frozen=True, slots=True)
class Forward:
    """Send this query upstream; ``question`` is the wire question, to check the reply;
    ``udp_size`` what the reply may take over UDP (``wire.Query.udp_size``)."""

    question: bytes
    udp_size: int = wire.NO_EDNS_UDP_SIZE


@dataclass(slots=True)
class QueryStats:
    by_type_rcode: dict[tuple[int, int], int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    dropped: int = 0
    forwarded: int = 0
    forward_failures: int = 0
    internal_errors: int = 0

    def count(self, qtype: int, rcode: int) -> None:
        key = (qtype, rcode)
        self.by_type_rcode[key] = self.by_type_rcode.get(key, 0) + 1


class QueryHandler:
    def __init__(
        self,
        reader: RecordReader,
        *,
        zone: str = "cluster.local",
        ttl: int = 5,
        forwarding: bool = False,
        cache_size: int = 50_000,
        soa_serial: int | None = None,
    ) -> None:
        self._reader = reader
        # The SOA serial is fixed per run: cached negative answers may live on while other
        # names change, and nothing here transfers zones, so a moving serial would buy nothing.
        serial = (int(time.time()) if soa_serial is None else soa_serial) % 2**32
        self._zone = ZoneSettings(
            zone=tuple(zone.strip(".").lower().split(".")), ttl=ttl, serial=serial
        )
        self._forwarding = forwarding
        self.cache = ResponseCache(reader, max_entries=cache_size)
        self.stats = QueryStats()

    def answer(self, data: bytes, tcp: bool = False) -> bytes | Forward | None:
        """The response bytes, a Forward, or None to drop the packet. Never raises."""
        try:
            if type(data) is not bytes:
                data = bytes(data)
            guess = wire.guessed_cache_key(data, tcp)
            if guess is not None:
                entry = self.cache.get(guess[0])
                if entry is not None:
                    return self._from_cache(data, entry, guess[1])
            # Queries the guess cannot read (EDNS options such as cookies, trailing bytes)
            # may still be cached under the key a full walk finds.
            found = wire.cache_key(data, tcp)
            if found is not None and found != guess:
                entry = self.cache.get(found[0])
                if entry is not None:
                    return self._from_cache(data, entry, found[1])
            return self._answer_miss(data, tcp, found)
        except Exception:
            self.stats.internal_errors += 1
            log.exception("failed to answer a query")
            if len(data) < wire.HEADER_LEN or data[2] & 0x80:
                return None
            return wire.error_response(data, RCODE.SERVFAIL)

    def _from_cache(self, data: bytes, entry: Entry, qname_end: int) -> bytes:
        head, tail, stat, _, _ = entry
        stats = self.stats
        stats.cache_hits += 1
        counts = stats.by_type_rcode
        counts[stat] = counts.get(stat, 0) + 1
        return data[:2] + head + data[12:qname_end] + tail

    def _answer_miss(
        self, data: bytes, tcp: bool, found: tuple[bytes, int] | None
    ) -> bytes | Forward | None:
        self.stats.cache_misses += 1
        found = wire.cache_key(data, tcp)
        try:
            query = wire.parse_query(data, tcp)
        except wire.DropPacket:
            self.stats.dropped += 1
            return None
        except wire.QueryError as exc:
            self.stats.count(0, exc.rcode)
            return wire.error_response(data, exc.rcode)
        if query.edns and query.edns_version != 0:
            return self._respond(query, wire.RCODE_BADVERS, found=None)
        if query.qclass not in (QCLASS_IN, QCLASS_ANY):
            return self._respond(query, RCODE.REFUSED, found=found)
        labels = tuple(label.lower().decode("latin-1") for label in query.labels)
        name = parse_qname(labels, self._zone.zone)
        result = resolve(name, query.qtype, DNSLabel(query.labels), self._reader, self._zone)
        if result.outside and self._forwarding:
            question_len = sum(len(label) + 1 for label in query.labels) + 5
            return Forward(data[wire.HEADER_LEN:wire.HEADER_LEN + question_len], query.udp_size)
        response = wire.build_response(
            query,
            rcode=result.rcode,
            answer=result.answer,
            authority=result.authority,
            additional=result.additional,
            authoritative=result.authoritative,
            recursion_available=self._forwarding,
        )
        stat = (query.qtype, result.rcode)
        self.stats.by_type_rcode[stat] = self.stats.by_type_rcode.get(stat, 0) + 1
        if found is not None:
            self.cache.put(found[0], response, found[1], stat, dependency(name))
        return response

    def _respond(
        self, query: wire.Query, rcode: int, *, found: tuple[bytes, int] | None
    ) -> bytes:
        response = wire.build_response(
            query,
            rcode=rcode,
            answer=[],
            authority=[],
            additional=[],
            authoritative=False,
            recursion_available=self._forwarding,
        )
        self.stats.count(query.qtype, rcode)
        if found is not None:
            self.cache.put(found[0], response, found[1], (query.qtype, rcode), None)
        return response
