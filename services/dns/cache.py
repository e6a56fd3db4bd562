"""Response cache: finished wire bytes keyed by what makes a response differ.

The key (see ``wire.cache_key``) is the lower-cased qname, qtype, qclass and a variant byte
(EDNS, the client's size class, RD/CD). A hit copies the stored bytes with only the query id
and the qname's case taken from the query. Any change to the records bumps the reader's
generation, and the first lookup after that drops every entry: answers never outlive the data.
"""

from __future__ import annotations

from .records import RecordReader

Entry = tuple[bytes, bytes, tuple[int, int]]  # header after the id, bytes after the qname, stat


class ResponseCache:
    def __init__(self, reader: RecordReader, *, max_entries: int = 50_000) -> None:
        self._reader = reader
        self._max_entries = max_entries
        self._entries: dict[bytes, Entry] = {}
        self._generation = reader.generation

    def get(self, key: bytes) -> Entry | None:
        if self._generation != self._reader.generation:
            self._entries.clear()
            self._generation = self._reader.generation
            return None
        return self._entries.get(key)

    def put(self, key: bytes, wire: bytes, qname_end: int, stat: tuple[int, int]) -> None:
        if self._generation != self._reader.generation:
            self._entries.clear()
            self._generation = self._reader.generation
        if self._max_entries <= 0:
            return
        if len(self._entries) >= self._max_entries:
            # Oldest first: dicts keep insertion order, so this is FIFO without bookkeeping.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (wire[2:12], wire[qname_end:], stat)

    def __len__(self) -> int:
        return len(self._entries)
