"""What a DaemonSet needs, decided from plain objects (kube's daemon_controller.go manage,
podsShouldBeOnNode, update.go rollingUpdate, updateDaemonSetStatus).

- `node_actions`: per node, the pods to create or delete. A node that should run the pod and
  has none gets one; failed and succeeded pods go (the controller backs off on failed ones);
  without surge only the oldest pod of a node stays, with surge an old pod stays beside the
  new one until the new one is available; a node that should no longer run it loses them all.
  A pod on its way out still holds its node: its replacement waits until it is gone.
- `rolling_update`: which old pods to delete (maxSurge 0: as many as maxUnavailable allows,
  counting every node without an available up-to-date pod) or which nodes get a surge pod
  (maxSurge > 0: as many as maxSurge allows beside available old pods, at once where the old
  pod is not available; an old pod goes once its replacement is available).
- `daemonset_status`: desired, current, misscheduled, ready, up-to-date, available and
  unavailable, counted on the oldest pod of each node.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubecore.api.types import Obj
from services.daemonset import placement
from services.daemonset.revisions import GENERATION_LABEL, HASH_LABEL

TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
BURST_REPLICAS = 250  # kube's DaemonSet controller: creations or deletions per sync
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- pods ------------------------------------------------------------------------------------

def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value.split(".")[0].rstrip("Z") + "Z",
                                 "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: Obj) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least minReadySeconds (by the Ready condition's transition)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def is_deleting(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def oldest_first(pods: Sequence[Obj]) -> list[Obj]:
    """kube's podByCreationTimestampAndPhase: bound pods first, then by age, then by name."""
    def rank(pod: Obj) -> tuple[bool, datetime, str]:
        meta = pod.get("metadata") or {}
        return (not (pod.get("spec") or {}).get("nodeName"),
                parse_time(meta.get("creationTimestamp")) or _EPOCH, str(meta.get("name", "")))
    return sorted(pods, key=rank)


def template_generation(ds: Obj) -> int | None:
    value = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def is_updated(pod: Obj, hash_: str, generation: int | None) -> bool:
    """The pod runs the current template: its hash label, or (pods of older controllers) its
    template generation label."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool((hash_ and labels.get(HASH_LABEL) == hash_)
                or (generation is not None and labels.get(GENERATION_LABEL) == str(generation)))


def new_pod(ds: Obj, node_name: str, hash_: str) -> Obj:
    """The pod for `node_name`: the template with the daemon tolerations, the revision labels
    and a required node affinity naming the node; the server finishes the name."""
    template = (ds.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta = ds["metadata"]
    labels = dict(tmeta.get("labels") or {})
    generation = template_generation(ds)
    if generation is not None:
        labels[GENERATION_LABEL] = str(generation)
    labels[HASH_LABEL] = hash_
    prefix = f"{meta['name']}-"[:58]  # generateName + 5 random characters stays a valid name
    pod_meta: Obj = {"generateName": prefix, "namespace": meta.get("namespace"), "labels": labels,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                          "name": meta["name"], "uid": meta["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]}
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec["tolerations"] = placement.with_daemon_tolerations(spec.get("tolerations") or [],
                                                            bool(spec.get("hostNetwork")))
    spec["affinity"] = placement.node_affinity_for(spec.get("affinity"), node_name)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


# -- the update budget ------------------------------------------------------------------------

def scaled(value: Any, total: int) -> int:
    """GetScaledValueFromIntOrPercent rounding up; ValueError for what is neither."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.endswith("%") and text[:-1].isdigit():
        return math.ceil(int(text[:-1]) * total / 100)
    raise ValueError(f"invalid value for IntOrString: invalid value {text!r}")


def _rolling(ds: Obj) -> Obj | None:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    ru = strategy.get("rollingUpdate")
    return ru if isinstance(ru, dict) else None


def allows_rolling(ds: Obj) -> bool:
    """RollingUpdate (OnDelete replaces a pod only when someone deletes it)."""
    return _rolling(ds) is not None


def allows_surge(ds: Obj) -> bool:
    ru = _rolling(ds)
    return ru is not None and scaled(ru.get("maxSurge"), 1) > 0


def surge_and_unavailable(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods out of `desired`; both 0 means 1 unavailable."""
    ru = _rolling(ds)
    surge = scaled(ru.get("maxSurge"), desired) if ru is not None else 0
    unavailable = scaled(ru.get("maxUnavailable"), desired) if ru is not None else 0
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


# -- per node --------------------------------------------------------------------------------

@dataclass
class Actions:
    create_on: list[str] = field(default_factory=list)  # node names
    delete: list[Obj] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)  # failed pods: deleted with a backoff
    succeeded: list[Obj] = field(default_factory=list)

    def extend(self, other: Actions) -> None:
        self.create_on += other.create_on
        self.delete += other.delete
        self.failed += other.failed
        self.succeeded += other.succeeded


def _surge_keepers(ds: Obj, running: Sequence[Obj], hash_: str, now: datetime) -> list[Obj]:
    """With surge: the oldest new and oldest old pod may stay, the rest go; the old one goes
    too once it is not ready or the new one is available."""
    newest: Obj | None = None
    oldest_old: Obj | None = None
    doomed: list[Obj] = []
    for pod in oldest_first(running):
        if ((pod.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL) == hash_:
            if newest is None:
                newest = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        doomed.append(pod)
    if newest is not None and oldest_old is not None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if not is_ready(oldest_old) or is_available(newest, min_ready, now):
            doomed.append(oldest_old)
    return doomed


def actions_on_node(ds: Obj, node: Obj, pods: Sequence[Obj], hash_: str, now: datetime) -> Actions:
    """kube's podsShouldBeOnNode for one node and the DaemonSet's pods meant for it."""
    run, keep = placement.should_run(ds, node)
    name = str((node.get("metadata") or {}).get("name", ""))
    out = Actions()
    if run and not pods:
        out.create_on.append(name)
    elif keep:
        running: list[Obj] = []
        for pod in pods:
            if is_deleting(pod):
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Failed":
                out.failed.append(pod)
            elif phase == "Succeeded":
                out.succeeded.append(pod)
            else:
                running.append(pod)
        if not allows_surge(ds):
            out.delete += oldest_first(running)[1:]
        elif not running and run:
            out.create_on.append(name)
        elif len(running) > 1:
            out.delete += _surge_keepers(ds, running, hash_, now)
    elif pods:
        out.delete += [p for p in pods if not is_deleting(p)]
    return out


def node_actions(ds: Obj, nodes: Sequence[Obj], pods_by_node: Mapping[str, Sequence[Obj]],
                 hash_: str, now: datetime) -> Actions:
    """kube's manage: every node's actions, and unbound pods meant for nodes that are gone."""
    out = Actions()
    names = set()
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name", ""))
        names.add(name)
        out.extend(actions_on_node(ds, node, pods_by_node.get(name, ()), hash_, now))
    for name in sorted(set(pods_by_node) - names):
        out.delete += [p for p in pods_by_node[name]
                       if not (p.get("spec") or {}).get("nodeName") and not is_deleting(p)]
    return out


# -- the rolling update ----------------------------------------------------------------------

def _updated_and_old(pods: Sequence[Obj], hash_: str, generation: int | None
                     ) -> tuple[Obj | None, Obj | None, bool]:
    """findUpdatedPodsOnNode: at most one live new and one live old pod, else not ok."""
    new: Obj | None = None
    old: Obj | None = None
    for pod in pods:
        if is_deleting(pod):
            continue
        if is_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _desired_nodes(ds: Obj, nodes: Sequence[Obj], pods_by_node: Mapping[str, Sequence[Obj]]
                   ) -> tuple[dict[str, Sequence[Obj]], dict[str, bool]]:
    """Every node with pods and every node that should run one; whether each should."""
    by_node: dict[str, Sequence[Obj]] = dict(pods_by_node)
    runs: dict[str, bool] = {}
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name", ""))
        runs[name] = placement.should_run(ds, node)[0]
        if runs[name]:
            by_node.setdefault(name, ())
    return by_node, runs


def rolling_update(ds: Obj, nodes: Sequence[Obj], pods_by_node: Mapping[str, Sequence[Obj]],
                   hash_: str, now: datetime) -> Actions:
    """kube's rollingUpdate: the deletions (and, with surge, creations) this sync may make."""
    by_node, runs = _desired_nodes(ds, nodes, pods_by_node)
    surge, unavailable = surge_and_unavailable(ds, sum(runs.values()))
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    if surge == 0:
        return _replace_within_unavailable(by_node, hash_, generation, unavailable, min_ready, now)
    return _surge_new_pods(by_node, runs, hash_, generation, surge, min_ready, now)


def _replace_within_unavailable(by_node: Mapping[str, Sequence[Obj]], hash_: str,
                                generation: int | None, max_unavailable: int, min_ready: int,
                                now: datetime) -> Actions:
    unavailable = 0
    replace: list[Obj] = []  # old pods that are not available anyway
    candidates: list[Obj] = []
    for name in sorted(by_node):
        new, old, ok = _updated_and_old(by_node[name], hash_, generation)
        if not ok or (new is None) == (old is None):
            unavailable += 1  # the per-node loop sorts this node out first
        elif new is not None:
            unavailable += 0 if is_available(new, min_ready, now) else 1
        elif old is not None and not is_available(old, min_ready, now):
            replace.append(old)
            unavailable += 1
        elif old is not None and unavailable < max_unavailable:
            candidates.append(old)
    room = max(0, min(max_unavailable - unavailable, len(candidates)))
    return Actions(delete=replace + candidates[:room])


def _surge_new_pods(by_node: Mapping[str, Sequence[Obj]], runs: Mapping[str, bool], hash_: str,
                    generation: int | None, max_surge: int, min_ready: int,
                    now: datetime) -> Actions:
    out = Actions()
    surging, available = 0, 0
    allowed: list[str] = []  # nodes whose old pod is not available: a new pod at once
    candidates: list[str] = []
    leaving: list[Obj] = []  # old pods on nodes that should no longer run them
    for name in sorted(by_node):
        new, old, ok = _updated_and_old(by_node[name], hash_, generation)
        if not ok:
            surging += 1
            continue
        counted = old if old is not None else new
        if counted is not None and is_available(counted, min_ready, now):
            available += 1
        if old is None:
            continue
        if new is None:
            if not runs.get(name, False):
                (leaving if is_available(old, min_ready, now) else out.delete).append(old)
            elif not is_available(old, min_ready, now):
                allowed.append(name)
            elif surging < max_surge:
                candidates.append(name)
        elif not is_available(new, min_ready, now):
            surging += 1
        else:
            out.delete.append(old)
    # An old pod on a node that no longer wants it goes only while enough others are available.
    deletable = max(0, min(available - sum(runs.values()), len(leaving)))
    out.delete += leaving[:deletable]
    room = max(0, min(max_surge - surging, len(candidates)))
    out.create_on = allowed + candidates[:room]
    return out


# -- status ----------------------------------------------------------------------------------

_OMITTED_WHEN_ZERO = ("observedGeneration", "updatedNumberScheduled", "numberAvailable",
                      "numberUnavailable")


def daemonset_status(ds: Obj, nodes: Sequence[Obj], pods_by_node: Mapping[str, Sequence[Obj]],
                     hash_: str, now: datetime, *, observed: bool) -> Obj:
    """The status the pods make (kube's updateDaemonSetStatus), keeping what it does not count.
    `observed`: this sync acted on the current spec, so observedGeneration moves up to it."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    counts = dict.fromkeys(("desiredNumberScheduled", "currentNumberScheduled",
                            "numberMisscheduled", "numberReady", "updatedNumberScheduled",
                            "numberAvailable"), 0)
    for node in nodes:
        run, _ = placement.should_run(ds, node)
        pods = pods_by_node.get(str((node.get("metadata") or {}).get("name", ""))) or ()
        if not run:
            counts["numberMisscheduled"] += 1 if pods else 0
            continue
        counts["desiredNumberScheduled"] += 1
        if not pods:
            continue
        counts["currentNumberScheduled"] += 1
        pod = oldest_first(pods)[0]
        counts["numberReady"] += is_ready(pod)
        counts["numberAvailable"] += is_available(pod, min_ready, now)
        counts["updatedNumberScheduled"] += is_updated(pod, hash_, generation)
    status = dict(ds.get("status") or {})
    status.update(counts)
    status["numberUnavailable"] = counts["desiredNumberScheduled"] - counts["numberAvailable"]
    if observed:
        status["observedGeneration"] = (ds.get("metadata") or {}).get("generation", 0)
    for name in _OMITTED_WHEN_ZERO:
        if not status.get(name):
            status.pop(name, None)
    return status


def seconds_until_available(ds: Obj, pods: Sequence[Obj], now: datetime) -> float | None:
    """For ready pods not yet available: how long until the first is (to look again then)."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    waits = []
    for pod in pods:
        since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
        if min_ready > 0 and is_ready(pod) and since is not None:
            left = min_ready - (now - since).total_seconds()
            if left > 0:
                waits.append(left)
    return min(waits) if waits else None
