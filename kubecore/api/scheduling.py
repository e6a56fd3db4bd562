"""The pod-to-node matching rules kube keeps in component-helpers/scheduling/corev1 (v1helper):
whether a toleration tolerates a taint, and whether a node's labels and name satisfy a node
selector term. The scheduler (which node a pod may go to) and the DaemonSet controller (which
nodes should run a daemon pod) both decide with them."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NAME_FIELD = "metadata.name"  # the one field `matchFields` may name


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """kube's Toleration.ToleratesTaint: the effect (if given) and key must match; an empty key
    with operator Exists tolerates every taint; Equal (the default) also compares the value."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def requirement_matches(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against `values`."""
    key, op = req.get("key", ""), req.get("operator")
    wanted = [str(v) for v in req.get("values") or []]
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, limit = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > limit if op == "Gt" else have < limit
    return False


def term_matches(term: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    """A NodeSelectorTerm: every matchExpression on the labels and every matchField on the
    node's name; an empty term matches nothing, as in kube."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return (all(requirement_matches(e, labels) for e in exprs)
            and all(requirement_matches(f, {NAME_FIELD: name}) for f in fields))
