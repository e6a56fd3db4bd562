"""What a Deployment needs, decided from plain values and objects.

- `pod_template_hash`: names the ReplicaSet of a template: FNV-32a over the template's
  canonical JSON (and the collision count, if any), its decimal digits mapped onto
  apimachinery's "safe" alphabet, as kube's ComputeHash + SafeEncodeString do.
- `surge_and_unavailable`: maxSurge rounds up, maxUnavailable down; both 0 means 1 unavailable.
- `rolling_update_step`, `recreate_step`, `scale_step`: one sync's ReplicaSet sizes.
  A step either scales up or scales down, never both; the next sync (driven by the
  ReplicaSets' status changing) takes the next step.
- `deployment_status` and `progress_conditions`: what `kubectl get deploy` shows.
- `history_to_delete`: old, empty ReplicaSets beyond revisionHistoryLimit.
"""
from __future__ import annotations

import copy
import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubecore.api.types import Obj
from services.deployments.replicaset_plan import parse_time

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET, _FNV32_PRIME = 0x811C9DC5, 0x01000193


# -- the template hash ---------------------------------------------------------------------

def fnv32a(data: bytes) -> int:
    h = _FNV32_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Each character onto the alphabet without vowels (no words) and without 0/1/3 (no
    look-alikes), as apimachinery's rand.SafeEncodeString."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def template_without_hash(template: Mapping[str, Any]) -> Obj:
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if labels and HASH_LABEL in labels:
        del labels[HASH_LABEL]
    return out


def pod_template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    canonical = json.dumps(template_without_hash(template), sort_keys=True,
                           separators=(",", ":")).encode()
    if collision_count:
        canonical += struct.pack("<I", collision_count & 0xFFFFFFFF)
    return safe_encode(str(fnv32a(canonical)))


def templates_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from the pod-template-hash label (which only the ReplicaSet carries)."""
    return _normalised(template_without_hash(a)) == _normalised(template_without_hash(b))


def _normalised(template: Obj) -> Obj:
    meta = template.get("metadata") or {}
    template["metadata"] = {k: v for k, v in meta.items() if v not in (None, {}, [])}
    return template


# -- maxSurge / maxUnavailable ---------------------------------------------------------------

def resolve_int_or_percent(value: int | str | None, total: int, *, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        fraction = float(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def surge_and_unavailable(replicas: int, strategy: Mapping[str, Any] | None) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; Recreate: (0, replicas)."""
    strategy = strategy or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    ru = strategy.get("rollingUpdate") or {}
    surge = resolve_int_or_percent(ru.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve_int_or_percent(ru.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # a rollout must be able to move
    return surge, min(unavailable, replicas)


# -- ReplicaSet sizes ------------------------------------------------------------------------

@dataclass(frozen=True)
class RSState:
    """What a step needs to know of one ReplicaSet."""
    name: str
    replicas: int  # spec.replicas: what it is meant to have
    pods: int = 0  # status.replicas: what it still has (more, while scaling down)
    available: int = 0
    order: str = ""  # oldest sorts first (creationTimestamp, then name)

    @property
    def occupied(self) -> int:
        """Pods counted against the surge: meant to exist, or not yet gone."""
        return max(self.replicas, self.pods)


def new_rs_replicas(replicas: int, max_surge: int, new: RSState, all_rs: Sequence[RSState]) -> int:
    """How far the new ReplicaSet may grow now without passing replicas + maxSurge.

    Unlike kube, pods an old ReplicaSet has not deleted yet still count, so the surge
    bound holds for pods, not only for ReplicaSet specs."""
    if new.replicas >= replicas:
        return replicas
    max_total = replicas + max_surge
    current = sum(rs.occupied for rs in all_rs)
    if current >= max_total:
        return new.replicas
    return new.replicas + min(max_total - current, replicas - new.replicas)


def rolling_update_step(replicas: int, max_surge: int, max_unavailable: int, new: RSState,
                        olds: Sequence[RSState]) -> dict[str, int]:
    """One rolling-update step: ReplicaSet name -> replicas to set (only what changes)."""
    all_rs = [new, *olds]
    if new.replicas != replicas:
        target = new_rs_replicas(replicas, max_surge, new, all_rs)
        if target != new.replicas:
            return {new.name: target}
    if sum(o.replicas for o in olds) == 0:
        return {}
    min_available = replicas - max_unavailable
    new_unavailable = new.replicas - new.available
    max_scaled_down = sum(rs.replicas for rs in all_rs) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    targets = {o.name: o.replicas for o in olds}
    oldest_first = sorted(olds, key=lambda o: (o.order, o.name))
    # First the old pods that are not available anyway: removing them costs nothing.
    budget = max_scaled_down
    for o in oldest_first:
        if budget <= 0:
            break
        unhealthy = targets[o.name] - o.available
        if unhealthy > 0:
            down = min(budget, unhealthy)
            targets[o.name] -= down
            budget -= down
    # Then available ones, as far as maxUnavailable allows.
    available = sum(rs.available for rs in all_rs)
    allowed = available - min_available
    for o in oldest_first:
        if allowed <= 0:
            break
        down = min(targets[o.name], allowed)
        targets[o.name] -= down
        allowed -= down
    before = {o.name: o.replicas for o in olds}
    return {name: n for name, n in targets.items() if n != before[name]}


def recreate_step(replicas: int, new: RSState | None, olds: Sequence[RSState],
                  old_pods: int) -> dict[str, int] | None:
    """Old ReplicaSets to 0 first; the new one only once no old pod is left.
    None: the new ReplicaSet is wanted now (create it if it does not exist)."""
    scale_down = {o.name: 0 for o in olds if o.replicas > 0}
    if scale_down:
        return scale_down
    if old_pods > 0:
        return {}
    if new is None:
        return None
    return {new.name: replicas} if new.replicas != replicas else {}


def is_scaling_event(replicas: int, active_desired: Iterable[int | None]) -> bool:
    """The Deployment's replicas changed since its active ReplicaSets were last sized
    (their desired-replicas annotation says what they were sized for)."""
    return any(d is not None and d != replicas for d in active_desired)


def scale_step(replicas: int, max_surge: int, new: RSState | None,
               olds: Sequence[RSState]) -> dict[str, int]:
    """Resize for a changed `replicas` without rolling: one active ReplicaSet takes it all;
    several share the change in proportion to their size (kube's proportional scaling)."""
    all_rs = ([new] if new else []) + list(olds)
    if not all_rs:
        return {}
    active = [rs for rs in all_rs if rs.replicas > 0]
    if len(active) <= 1:
        target = active[0] if active else (new or max(olds, key=lambda o: (o.order, o.name)))
        return {target.name: replicas} if target.replicas != replicas else {}
    if new is not None and new.replicas == replicas and new.available >= replicas:
        return {o.name: 0 for o in olds if o.replicas > 0}
    return _proportional_shares(active, replicas + max_surge)


def _proportional_shares(active: Sequence[RSState], allowed: int) -> dict[str, int]:
    """Share the difference between `allowed` and the active ReplicaSets' total among them
    in proportion to their size; returns only the sizes that change."""
    total = sum(rs.replicas for rs in active)
    delta = allowed - total
    if delta == 0:
        return {}
    # Bigger first (newer on ties) gets its share and the rounding leftover.
    newer_first = sorted(active, key=lambda rs: (rs.order, rs.name), reverse=True)
    ordered = sorted(newer_first, key=lambda rs: -rs.replicas)
    targets = {rs.name: rs.replicas for rs in active}
    before = dict(targets)
    given = 0
    for rs in ordered:
        share = int(round(rs.replicas * delta / total))
        if abs(given + share) > abs(delta):
            share = delta - given
        share = max(share, -targets[rs.name])
        targets[rs.name] += share
        given += share
    leftover = delta - given
    if leftover:
        first = ordered[0].name
        targets[first] = max(0, targets[first] + leftover)
    return {name: n for name, n in targets.items() if n != before[name]}


# -- revisions and history --------------------------------------------------------------------

def revision_of(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def next_revision(old_rs: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in old_rs), default=0) + 1


def history_to_delete(old_rs: Sequence[Obj], limit: int) -> list[Obj]:
    """Oldest-revision first, the old ReplicaSets beyond `limit` that are empty and settled."""
    live = [rs for rs in old_rs if not rs["metadata"].get("deletionTimestamp")]
    excess = len(live) - max(0, limit)
    if excess <= 0:
        return []
    out = []
    oldest = sorted(live, key=lambda r: (revision_of(r), r["metadata"].get("creationTimestamp", "")))
    for rs in oldest[:excess]:  # a busy one among them is skipped, not replaced (as kube)
        status = rs.get("status") or {}
        if ((rs.get("spec") or {}).get("replicas", 0) != 0 or status.get("replicas", 0) != 0
                or rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0)):
            continue
        out.append(rs)
    return out


# -- the new ReplicaSet ------------------------------------------------------------------------

# Deployment annotations that stay off its ReplicaSets (kube's annotationsToSkip); every
# other one is copied, so `kubectl rollout history` shows a revision's change-cause and
# `rollout undo` brings it back.
ANNOTATIONS_TO_SKIP = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION,
                                 "deployment.kubernetes.io/revision-history", DESIRED_REPLICAS,
                                 MAX_REPLICAS, "deprecated.deployment.rollback.to"})


def copied_annotations(deployment: Obj) -> dict[str, str]:
    """The Deployment's annotations its new ReplicaSet carries."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k not in ANNOTATIONS_TO_SKIP}


def new_replicaset_annotations(deployment: Obj, rs: Obj, revision: int) -> dict[str, str]:
    """What the new ReplicaSet's annotations must gain to carry `revision` and the
    Deployment's copied annotations (kube's SetNewReplicaSetAnnotations); empty if nothing."""
    have = (rs.get("metadata") or {}).get("annotations") or {}
    wanted = {**copied_annotations(deployment), REVISION: str(revision)}
    return {k: v for k, v in wanted.items() if have.get(k) != v}

def new_replicaset(deployment: Obj, template_hash: str, replicas: int, revision: int,
                   max_surge: int) -> Obj:
    meta, spec = deployment["metadata"], deployment["spec"]
    template = copy.deepcopy(spec["template"])
    tmeta = template.setdefault("metadata", {})
    tmeta.setdefault("labels", {})[HASH_LABEL] = template_hash
    selector = copy.deepcopy(spec["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = template_hash
    rs_spec: Obj = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    d_replicas = spec.get("replicas", 1)
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{template_hash}", "namespace": meta.get("namespace"),
            "labels": dict(tmeta["labels"]),
            "annotations": {**copied_annotations(deployment), REVISION: str(revision),
                            DESIRED_REPLICAS: str(d_replicas), MAX_REPLICAS: str(d_replicas + max_surge)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                 "name": meta["name"], "uid": meta["uid"], "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": rs_spec,
    }


# -- status -----------------------------------------------------------------------------------

def _rs_status(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def deployment_status(deployment: Obj, new_rs: Obj | None, all_rs: Sequence[Obj],
                      now: datetime) -> Obj:
    spec = deployment.get("spec") or {}
    replicas = spec.get("replicas", 1)
    _, max_unavailable = surge_and_unavailable(replicas, spec.get("strategy"))
    previous = deployment.get("status") or {}
    available = sum(_rs_status(rs, "availableReplicas") for rs in all_rs)
    total_spec = sum((rs.get("spec") or {}).get("replicas", 0) for rs in all_rs)
    status: Obj = {
        "observedGeneration": (deployment.get("metadata") or {}).get("generation", 0),
        "replicas": sum(_rs_status(rs, "replicas") for rs in all_rs),
        "updatedReplicas": _rs_status(new_rs, "replicas") if new_rs else 0,
        "readyReplicas": sum(_rs_status(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total_spec - available),
    }
    if previous.get("collisionCount"):
        status["collisionCount"] = previous["collisionCount"]
    conditions = {c.get("type"): c for c in previous.get("conditions") or []}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if available >= replicas - max_unavailable:
        conditions["Available"] = _condition(conditions.get("Available"), "Available", "True",
                                             "MinimumReplicasAvailable",
                                             "Deployment has minimum availability.", stamp)
    else:
        conditions["Available"] = _condition(conditions.get("Available"), "Available", "False",
                                             "MinimumReplicasUnavailable",
                                             "Deployment does not have minimum availability.", stamp)
    progressing = progress_condition(deployment, new_rs, status, previous,
                                     conditions.get("Progressing"), now)
    if progressing is not None:
        conditions["Progressing"] = progressing
    status["conditions"] = [conditions[t] for t in ("Available", "Progressing", "ReplicaFailure")
                            if t in conditions]
    return status


def is_complete(deployment: Obj, status: Mapping[str, Any]) -> bool:
    replicas = (deployment.get("spec") or {}).get("replicas", 1)
    return (status.get("updatedReplicas") == replicas and status.get("replicas") == replicas
            and status.get("availableReplicas") == replicas
            and bool(status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)))


def progress_condition(deployment: Obj, new_rs: Obj | None, status: Mapping[str, Any],
                       previous: Mapping[str, Any], current: Obj | None,
                       now: datetime) -> Obj | None:
    """Progressing: True while the rollout moves, NewReplicaSetAvailable once complete,
    False (ProgressDeadlineExceeded) when it has not moved for progressDeadlineSeconds."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    rs_name = new_rs["metadata"]["name"] if new_rs else ""
    if new_rs is None:
        return current
    if is_complete(deployment, status):
        return _condition(current, "Progressing", "True", "NewReplicaSetAvailable",
                          f'ReplicaSet "{rs_name}" has successfully progressed.', stamp)
    moved = any(status.get(f) != previous.get(f) for f in
                ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                 "unavailableReplicas"))
    if current is None or moved or (current.get("reason") == "NewReplicaSetAvailable"):
        return _condition(current, "Progressing", "True", "ReplicaSetUpdated",
                          f'ReplicaSet "{rs_name}" is progressing.', stamp, touch=True)
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    if deadline is not None and current.get("status") == "True":
        since = parse_time(current.get("lastUpdateTime"))
        if since is not None and (now - since).total_seconds() > deadline:
            return _condition(current, "Progressing", "False", "ProgressDeadlineExceeded",
                              f'ReplicaSet "{rs_name}" has timed out progressing.', stamp)
    return current


def _condition(current: Obj | None, ctype: str, status: str, reason: str, message: str,
               stamp: str, *, touch: bool = False) -> Obj:
    """The condition, keeping its times unless it says something new (or `touch`)."""
    if (current is not None and current.get("status") == status
            and current.get("reason") == reason and current.get("message") == message
            and not touch):
        return current
    transition = stamp
    if current is not None and current.get("status") == status:
        transition = current.get("lastTransitionTime", stamp)
    return {"type": ctype, "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": transition, "reason": reason, "message": message}
