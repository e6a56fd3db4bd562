"""The API servers' own leases in etcd (kube-apiserver's `storageLeases`): each server keeps
a key `/registry/masterleases/<its address>` alive with an etcd lease of a few seconds, so
the keys listed are the servers alive now. The endpoint reconciler
(`registry/endpointreconciler.py`) publishes them as the `kubernetes` Service's endpoints.

The value is what kube-apiserver writes there: an Endpoints object holding the address, its
generation counted up on every refresh."""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

from kubecore.api.errors import unavailable
from services.apiserver.storage import etcd as E

log = logging.getLogger("apiserver")

MASTER_LEASES_PREFIX = "/registry/masterleases/"


class MasterLeases:
    """`Leases` over etcd: update (refresh or add) one address, list the live ones, remove."""

    def __init__(self, etcd: E.Etcd, *, ttl: int = 15, prefix: str = MASTER_LEASES_PREFIX) -> None:
        self.etcd, self.ttl, self.prefix = etcd, ttl, prefix

    async def update(self, ip: str) -> None:
        """Write the address's key again under a new lease of `ttl` seconds."""
        with _answering():
            await self._update(ip)

    async def _update(self, ip: str) -> None:
        key = self.prefix + ip
        kv, _ = await self.etcd.get(key)
        generation = 0
        if kv is not None:
            try:
                generation = int(json.loads(kv.value).get("metadata", {}).get("generation") or 0)
            except (ValueError, AttributeError):
                generation = 0
        value = json.dumps({"kind": "Endpoints", "apiVersion": "v1",
                            "metadata": {"generation": generation + 1, "creationTimestamp": None},
                            "subsets": [{"addresses": [{"ip": ip}]}]}, separators=(",", ":"))
        lease = await self.etcd.grant_lease(self.ttl)
        await self.etcd.txn_alone([], [E.put(key, value.encode(), lease)])

    async def list(self) -> list[str]:
        """The addresses whose key is alive, in key order."""
        with _answering():
            kvs, _, _ = await self.etcd.get_prefix(self.prefix)
        ips = []
        for kv in kvs:
            try:
                subsets = json.loads(kv.value).get("subsets") or []
                ip = subsets[0]["addresses"][0]["ip"]
            except (ValueError, AttributeError, LookupError, TypeError):
                log.warning("ignoring an unreadable master lease %s", kv.key.decode(errors="replace"))
                continue
            if ip:
                ips.append(str(ip))
        return ips

    async def remove(self, ip: str) -> None:
        with _answering():
            await self.etcd.txn_alone([], [E.delete(self.prefix + ip)])


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    """etcd not answering is the API's 503, as for every other storage call."""
    try:
        yield
    except E.EtcdUnavailable as exc:
        raise unavailable(f"etcd is not answering: {exc}") from exc
