"""What a DELETE means: its options, and what it does to the object, as kube-apiserver's
generic registry decides it (BeforeDelete, deletionFinalizersForGarbageCollection,
markAsDeleting). Pure: the generic store (`store.py`) turns the outcome into storage
calls.

- Options come from the body (a DeleteOptions) when there is one, else from the query,
  never from both: kube-apiserver reads one or the other.
- The propagation policy becomes finalizers the garbage collector acts on (`orphan`,
  `foregroundDeletion`; `kubecore.api.propagation`). An object with finalizers is only marked
  (deletionTimestamp, deletionGracePeriodSeconds 0) and goes once they are all removed.
- Pods are deleted gracefully: marked with a deadline their node honours, at once when no
  node runs them; finalizers still hold them after the node is done.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta

from kubecore.api import propagation as P
from kubecore.api import resources as R
from kubecore.api.errors import Cause, bad_request, invalid
from kubecore.api.types import Obj
from kubecore.api.validation import go_bool
from services.apiserver.registry.meta import format_rfc3339, parse_rfc3339

DRY_RUN_ALL = "All"


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"  # already going, at least as soon: nothing to write
    MARKED = "marked"        # write it back: it waits for finalizers or a grace period
    DELETE = "delete"        # remove it now


# --- options -------------------------------------------------------------------------------

def read_options(query: Mapping[str, str], body: Obj | None) -> Obj:
    """The DeleteOptions of a request, checked: 400 for what does not parse, 422 for
    values kube-apiserver refuses. `query` may be a multidict (dryRun repeats)."""
    opts = _from_body(body) if body is not None else _from_query(query)
    validate(opts)
    return opts


def _from_body(body: Obj) -> Obj:
    expected = {"gracePeriodSeconds": int, "propagationPolicy": str, "orphanDependents": bool,
                "preconditions": dict, "dryRun": list}
    for name, kind in expected.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise bad_request(f"json: cannot unmarshal {type(value).__name__} into Go struct "
                              f"field DeleteOptions.{name}")
    return {k: v for k, v in body.items() if v is not None}


def _from_query(query: Mapping[str, str]) -> Obj:
    opts: Obj = {}
    grace = query.get("gracePeriodSeconds")
    if grace:
        try:
            opts["gracePeriodSeconds"] = int(grace)
        except ValueError:
            raise bad_request(f'invalid value for gracePeriodSeconds: "{grace}" is not an '
                              "integer") from None
    if query.get("propagationPolicy"):
        opts["propagationPolicy"] = query["propagationPolicy"]
    orphan = query.get("orphanDependents")
    if orphan:
        value = go_bool(orphan)
        if value is None:
            raise bad_request(f'strconv.ParseBool: parsing "{orphan}": invalid syntax')
        opts["orphanDependents"] = value
    getall = getattr(query, "getall", None)
    dry_run = getall("dryRun", []) if getall else ([query["dryRun"]] if "dryRun" in query else [])
    if dry_run:
        opts["dryRun"] = list(dry_run)
    return opts


def validate(opts: Obj) -> None:
    """kube's ValidateDeleteOptions: one of orphanDependents and propagationPolicy, a known
    policy, dryRun only All."""
    causes: list[Cause] = []
    policy = opts.get("propagationPolicy")
    if policy is not None and opts.get("orphanDependents") is not None:
        causes.append(Cause("propagationPolicy", f'Invalid value: "{policy}": orphanDependents '
                            "and deletionPropagation cannot be both set"))
    if policy is not None and policy not in P.POLICIES:
        supported = ", ".join(f'"{p}"' for p in (*P.POLICIES, "nil"))
        causes.append(Cause("propagationPolicy", f'Unsupported value: "{policy}": supported '
                            f"values: {supported}", "FieldValueNotSupported"))
    dry_run = opts.get("dryRun") or []
    if any(v != DRY_RUN_ALL for v in dry_run):
        listed = ", ".join(f'"{v}"' for v in dry_run)
        causes.append(Cause("dryRun", f'Unsupported value: []string{{{listed}}}: supported '
                            f'values: "{DRY_RUN_ALL}"', "FieldValueNotSupported"))
    if causes:
        raise invalid("DeleteOptions", "", causes, "meta.k8s.io")


def dry_run(opts: Obj) -> bool:
    return DRY_RUN_ALL in (opts.get("dryRun") or [])


# --- propagation ---------------------------------------------------------------------------

def _explicit_policy(opts: Obj) -> str | None:
    if opts.get("orphanDependents") is not None:  # deprecated, and wins when set
        return P.ORPHAN if opts["orphanDependents"] else P.BACKGROUND
    return opts.get("propagationPolicy")


def finalizers_after_delete(finalizers: list[str], opts: Obj, default: str = P.BACKGROUND) -> list[str]:
    """The finalizers an object keeps or gets when deleted with `opts`: a policy named in
    the request wins, then a GC finalizer the object already has, then the kind's default
    (Background; Orphan for batch/v1 Jobs). Other finalizers are left as they are."""
    policy = _explicit_policy(opts)
    if policy is None:
        for f in finalizers:
            if f in P.GC_FINALIZERS:
                policy = P.ORPHAN if f == P.ORPHAN_FINALIZER else P.FOREGROUND
                break
    if policy is None:
        # kube orphans by default only for core/v1 ReplicationControllers, batch/v1 Jobs and
        # the beta versions of the apps kinds; the other kinds served here (apps/v1
        # Deployments and ReplicaSets included) delete their dependents in the background.
        policy = default
    kept = [f for f in finalizers if f not in P.GC_FINALIZERS]
    if policy == P.ORPHAN:
        kept.append(P.ORPHAN_FINALIZER)
    elif policy == P.FOREGROUND:
        kept.append(P.FOREGROUND_FINALIZER)
    return kept


# --- marking ---------------------------------------------------------------------------------

def _bump_generation(meta: Obj) -> None:
    """The first mark counts as a change of the object (kube: observers see a new generation)."""
    if not meta.get("deletionTimestamp") and isinstance(meta.get("generation"), int) \
            and meta["generation"] > 0:
        meta["generation"] += 1


class _Grace(enum.Enum):
    PENDING = "pending"      # already counting down, at least as soon: leave it
    MARKED = "marked"        # deadline set or brought forward
    NOT_GRACEFUL = "none"    # deleted with no grace period: as any other kind


def _graceful_mark(obj: Obj, wanted: int | None, now: datetime) -> _Grace:
    """A pod's deadline (kube's BeforeDelete with the pod strategy's CheckGracefulDelete)."""
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if wanted is not None and wanted < 0:
        wanted = 1
    if meta.get("deletionTimestamp"):
        current = meta.get("deletionGracePeriodSeconds")
        if not current:
            return _Grace.NOT_GRACEFUL  # a mark of 0 left behind: finish it
        if wanted is None or wanted >= current:
            return _Grace.PENDING  # only a shorter grace period may be asked for
        started = parse_rfc3339(meta["deletionTimestamp"]) - timedelta(seconds=current)
        meta["deletionTimestamp"] = format_rfc3339(started + timedelta(seconds=wanted))
        meta["deletionGracePeriodSeconds"] = wanted
        return _Grace.MARKED
    period = wanted if wanted is not None else spec.get("terminationGracePeriodSeconds", 30)
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        period = 0  # no node runs it (any more): nothing to wait for
    if period < 0:
        period = 1
    _bump_generation(meta)
    meta["deletionTimestamp"] = format_rfc3339(now + timedelta(seconds=period))
    meta["deletionGracePeriodSeconds"] = period
    return _Grace.MARKED


def mark_for_deletion(rt: R.ResourceType, obj: Obj, opts: Obj, now: datetime) -> Outcome:
    """Apply a DELETE with `opts` to `obj` (changed in place) and say what to store."""
    meta = obj["metadata"]
    grace = _Grace.NOT_GRACEFUL
    if rt.graceful_delete:
        grace = _graceful_mark(obj, opts.get("gracePeriodSeconds"), now)
        if grace is _Grace.PENDING:
            return Outcome.UNCHANGED  # finalizers cannot change once a countdown runs
    current = list(meta.get("finalizers") or [])
    wanted = finalizers_after_delete(current, opts, rt.default_propagation)
    if set(wanted) != set(current):
        if wanted:
            meta["finalizers"] = wanted
        else:
            meta.pop("finalizers", None)
    pending = bool(meta.get("finalizers"))
    if grace is _Grace.MARKED:
        return Outcome.MARKED if pending or meta["deletionGracePeriodSeconds"] > 0 \
            else Outcome.DELETE
    if not pending:
        return Outcome.DELETE
    _bump_generation(meta)
    if not meta.get("deletionTimestamp") or parse_rfc3339(meta["deletionTimestamp"]) > now:
        meta["deletionTimestamp"] = format_rfc3339(now)
    meta["deletionGracePeriodSeconds"] = 0
    return Outcome.MARKED


def released(rt: R.ResourceType, obj: Obj) -> bool:
    """Marked for deletion, no finalizer left and no grace period running: it goes now
    (after an update removed its last finalizer)."""
    meta = obj.get("metadata") or {}
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    return not rt.graceful_delete or not meta.get("deletionGracePeriodSeconds")
