"""Response cache: finished wire bytes keyed by what makes a response differ.

The key (see ``wire.cache_key``) is the lower-cased qname, qtype, qclass and a variant byte
(EDNS, the client's size class, RD/CD). A hit copies the stored bytes with only the query id
and the qname's case taken from the query.

Each entry remembers the one piece of the index its answer was built from and that piece's
version; when a change touches the piece, the entry is dropped on its next lookup. So answers
never outlive the data, while changes to other names leave the entry alone. A new ``epoch``
(the caches syncing, say) drops everything.
"""

from __future__ import annotations

from .records import Dependency, RecordReader

# header after the id, bytes after the qname, stat key, dependency, its version
Entry = tuple[bytes, bytes, tuple[int, int], Dependency | None, int]


class ResponseCache:
    def __init__(self, reader: RecordReader, *, max_entries: int = 50_000) -> None:
        self._reader = reader
        self._max_entries = max_entries
        self._entries: dict[bytes, Entry] = {}
        self._epoch = reader.epoch

    def get(self, key: bytes) -> Entry | None:
        reader = self._reader
        if self._epoch != reader.epoch:
            self._entries.clear()
            self._epoch = reader.epoch
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        dependency = entry[3]
        if dependency is not None and reader.version(dependency) != entry[4]:
            del self._entries[key]
            return None
        return entry

    def put(
        self,
        key: bytes,
        wire: bytes,
        qname_end: int,
        stat: tuple[int, int],
        dependency: Dependency | None,
    ) -> None:
        reader = self._reader
        if self._epoch != reader.epoch:
            self._entries.clear()
            self._epoch = reader.epoch
        if self._max_entries <= 0:
            return
        if len(self._entries) >= self._max_entries:
            # Oldest first: dicts keep insertion order, so this is FIFO without bookkeeping.
            del self._entries[next(iter(self._entries))]
        version = reader.version(dependency) if dependency is not None else 0
        self._entries[key] = (wire[2:12], wire[qname_end:], stat, dependency, version)

    def __len__(self) -> int:
        return len(self._entries)
