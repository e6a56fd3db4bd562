"""A container's `resources` as cgroup settings (OCI `linux.resources`), with kubelet's formulas:

- `requests.cpu` -> cpu shares, 1024 per CPU, at least 2 (milliCPUToShares; none: 2);
- `limits.cpu` -> a CFS quota per 100 ms period, at least 1 ms (milliCPUToQuota);
- `limits.memory` -> the memory limit in bytes: beyond it the kernel's OOM killer ends the
  container (reported as OOMKilled);
- the OOM score adjustment by QoS class: Guaranteed -997, BestEffort 1000, Burstable
  1000 - 1000 * memory request / the node's memory, kept within 3..999 (kubelet's qos policy).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kubecore.api import quantity

MIN_SHARES, SHARES_PER_CPU, MAX_SHARES = 2, 1024, 262144
QUOTA_PERIOD, MIN_QUOTA_PERIOD = 100_000, 1000
GUARANTEED_OOM_SCORE_ADJ, BESTEFFORT_OOM_SCORE_ADJ = -997, 1000


def _milli(resources: Mapping[str, Any], kind: str, name: str) -> int | None:
    value = (resources.get(kind) or {}).get(name)
    if value in (None, ""):
        return None
    return quantity.milli_value(quantity.parse(value))


def _bytes(resources: Mapping[str, Any], kind: str, name: str) -> int | None:
    value = (resources.get(kind) or {}).get(name)
    if value in (None, ""):
        return None
    return quantity.value(quantity.parse(value))


def cpu_shares(milli: int | None) -> int:
    if not milli:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli * SHARES_PER_CPU // 1000))


def cpu_quota(milli: int) -> int:
    return max(MIN_QUOTA_PERIOD, milli * QUOTA_PERIOD // 1000)


def linux_resources(container: Mapping[str, Any]) -> dict[str, Any]:
    """The OCI `linux.resources` (without the device rules) for a container's `resources`."""
    res = container.get("resources") or {}
    out: dict[str, Any] = {"cpu": {"shares": cpu_shares(_milli(res, "requests", "cpu"))}}
    limit = _milli(res, "limits", "cpu")
    if limit:
        out["cpu"].update({"quota": cpu_quota(limit), "period": QUOTA_PERIOD})
    memory = _bytes(res, "limits", "memory")
    if memory:
        out["memory"] = {"limit": memory}
    return out


def qos_class(pod: Mapping[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, as the API server computes status.qosClass."""
    containers = [*((pod.get("spec") or {}).get("containers") or ()),
                  *((pod.get("spec") or {}).get("initContainers") or ())]
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        for name in ("cpu", "memory"):
            request, limit = (res.get("requests") or {}).get(name), (res.get("limits") or {}).get(name)
            any_set = any_set or request is not None or limit is not None
            if limit is None or (request is not None and quantity.parse(request) != quantity.parse(limit)):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def node_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def oom_score_adj(pod: Mapping[str, Any], container: Mapping[str, Any], memory_capacity: int) -> int:
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BESTEFFORT_OOM_SCORE_ADJ
    request = _bytes(container.get("resources") or {}, "requests", "memory") or 0
    adj = 1000 - (1000 * request) // max(memory_capacity, 1)
    return int(max(1000 + GUARANTEED_OOM_SCORE_ADJ, min(BESTEFFORT_OOM_SCORE_ADJ - 1, adj)))
