"""Node staleness and the status rewrites that follow from it. Pure: `now` is passed in."""
from __future__ import annotations

import copy
from datetime import UTC, datetime

from kubecore.api.types import Obj

UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_REASON = "NodeStatusNeverUpdated"
NEVER_MESSAGE = "Kubelet never posted node status."
POD_REASON = "NodeNotReady"


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(obj: Obj, kind: str) -> Obj | None:
    conditions: list[Obj] = (obj.get("status") or {}).get("conditions") or []
    for cond in conditions:
        if cond.get("type") == kind:
            return cond
    return None


def ready_status(obj: Obj) -> str:
    """"True", "False" or "Unknown" (no Ready condition at all counts as Unknown)."""
    cond = condition(obj, "Ready")
    return str(cond.get("status")) if cond else "Unknown"


def last_heartbeat(node: Obj) -> datetime | None:
    """When the node agent last posted status: the Ready condition's heartbeat, else the
    node's creation (a node that never posted is given the same grace from its birth)."""
    cond = condition(node, "Ready")
    beat = parse_time(cond.get("lastHeartbeatTime")) if cond else None
    return beat or parse_time((node.get("metadata") or {}).get("creationTimestamp"))


def seconds_until_stale(node: Obj, now: datetime, grace: float) -> float:
    """<= 0: the node is stale now. A node without any time at all is stale."""
    beat = last_heartbeat(node)
    if beat is None:
        return 0.0
    return grace - (now - beat).total_seconds()


def mark_unknown(node: Obj, now: datetime) -> Obj | None:
    """The node with every condition set Unknown (heartbeats kept: they say when the agent
    last spoke), or None when that is what it already says."""
    if condition(node, "Ready") is not None and ready_status(node) == "Unknown":
        return None
    out = copy.deepcopy(node)
    conditions = out.setdefault("status", {}).setdefault("conditions", [])
    stamp = format_time(now)
    if not any(c.get("type") == "Ready" for c in conditions):
        conditions.append({"type": "Ready", "status": "Unknown", "reason": NEVER_REASON,
                           "message": NEVER_MESSAGE, "lastTransitionTime": stamp})
    for cond in conditions:
        if cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE,
                        lastTransitionTime=stamp)
    return out


def mark_pod_not_ready(pod: Obj, node_name: str, now: datetime) -> Obj | None:
    """The pod with Ready=False, or None when it is not Ready=True now (nothing to take
    away; a pod still without a Ready condition is not served anyway)."""
    if ready_status(pod) != "True":
        return None
    out = copy.deepcopy(pod)
    for cond in out["status"]["conditions"]:
        if cond.get("type") == "Ready":
            cond.update(status="False", reason=POD_REASON,
                        message=f"Node {node_name} is not ready: {UNKNOWN_MESSAGE}",
                        lastTransitionTime=format_time(now))
    return out
