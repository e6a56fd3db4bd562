"""The `endpoints.kubernetes.io/last-change-trigger-time` annotation: when the change that
this write of a Service's Endpoints reflects happened, so a reader (kube's network
programming latency SLI, the proxies' own measurements) can tell how long it took to
reach them. As kube's TriggerTimeTracker:

- a Service seen for the first time: its creationTimestamp;
- after that, the earliest among the pods' Ready transitions and the Service's
  creationTimestamp that moved since the last sync of that Service;
- nothing moved: no annotation (the write is then not caused by a trigger we can date).

It remembers, per Service, what it saw at the last sync; `forget` drops a deleted Service.
Like kube's, it may date a sync wrongly when one object changed twice between two syncs.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubecore.api.types import Obj


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rfc3339nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds only when there are any, without
    trailing zeros."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def pod_trigger_time(pod: Obj) -> datetime | None:
    """The last transition of the pod's Ready condition."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return parse_time(cond.get("lastTransitionTime"))
    return None


@dataclass
class _ServiceState:
    service_time: datetime | None = None
    pod_times: dict[str, datetime] = field(default_factory=dict)


class TriggerTimeTracker:
    def __init__(self) -> None:
        self._states: dict[str, _ServiceState] = {}

    def compute(self, key: str, service: Obj, pods: Iterable[Obj]) -> str | None:
        """The annotation's value for this sync of `key` (None: leave it out); call it on
        every sync, written or not, so the next one compares with what this one saw."""
        state = self._states.get(key)
        known = state is not None
        state = state or _ServiceState()
        earliest: datetime | None = None
        pod_times: dict[str, datetime] = {}
        for pod in pods:
            moment = pod_trigger_time(pod)
            if moment is None:
                continue
            name = str((pod.get("metadata") or {}).get("name") or "")
            pod_times[name] = moment
            before = state.pod_times.get(name)
            if before is None or moment > before:
                earliest = moment if earliest is None else min(earliest, moment)
        created = parse_time((service.get("metadata") or {}).get("creationTimestamp"))
        if created is not None and (state.service_time is None or created > state.service_time):
            earliest = created if earliest is None else min(earliest, created)
        self._states[key] = _ServiceState(created, pod_times)
        if not known:
            return rfc3339nano(created) if created is not None else None
        return rfc3339nano(earliest) if earliest is not None else None

    def forget(self, key: str) -> None:
        self._states.pop(key, None)
