"""A StatefulSet pod's identity: its name `<set>-<ordinal>`, hostname and subdomain, the labels
that name it, and what a pod of a given revision looks like (kube's stateful_set_utils.go).

Pure: the planner and the controller build and check pods through these functions only.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime

from kubecore.api.types import Obj, nested

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
_STATEFUL_POD = re.compile(r"^(.*)-([0-9]+)$")
_INT32_MAX = 2**31 - 1


def parent_and_ordinal(name: str) -> tuple[str, int]:
    """The set a pod name belongs to and its ordinal; ("", -1) for a name no set makes."""
    m = _STATEFUL_POD.match(name)
    if m is None:
        return "", -1
    ordinal = int(m.group(2))
    return (m.group(1), ordinal) if ordinal <= _INT32_MAX else (m.group(1), -1)


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(nested(pod, "metadata", "name") or "")[1]


def is_member_of(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(nested(pod, "metadata", "name") or "")[0] == str(sts["metadata"]["name"])


def start_ordinal(sts: Obj) -> int:
    start = nested(sts, "spec", "ordinals", "start")
    return start if isinstance(start, int) and start > 0 else 0


def replica_count(sts: Obj) -> int:
    replicas = nested(sts, "spec", "replicas")
    return replicas if isinstance(replicas, int) and replicas > 0 else 0


def in_ordinal_range(sts: Obj, pod: Obj) -> bool:
    start = start_ordinal(sts)
    return start <= ordinal_of(pod) < start + replica_count(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def claim_name(sts: Obj, claim: str, ordinal: int) -> str:
    return f"{claim}-{sts['metadata']['name']}-{ordinal}"


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """kube's identityMatches: named for this set and ordinal, in its namespace, labelled."""
    meta = pod.get("metadata") or {}
    parent, ordinal = parent_and_ordinal(meta.get("name") or "")
    return (ordinal >= 0 and parent == sts["metadata"]["name"]
            and meta.get("namespace") == sts["metadata"].get("namespace")
            and (meta.get("labels") or {}).get(POD_NAME_LABEL) == meta.get("name"))


def identity_labels(pod: Obj) -> dict[str, str]:
    """The labels updateIdentity sets on a pod of the set."""
    name = nested(pod, "metadata", "name") or ""
    return {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(parent_and_ordinal(name)[1])}


def owner_reference(sts: Obj) -> Obj:
    meta = sts["metadata"]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": meta["name"],
            "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def new_pod(sts: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """kube's newStatefulSetPod + setPodRevision: the template's pod named for `ordinal`, with
    hostname and subdomain (the headless Service's name), the identity labels, the revision
    label, and a volume per claim template naming the claim `<claim>-<set>-<ordinal>` (the claims
    themselves are not made: no storage provisioner serves them here). It has no status: the
    planner counts it as not created yet."""
    tmeta = template.get("metadata") or {}
    meta = sts["metadata"]
    name = pod_name(sts, ordinal)
    labels = dict(tmeta.get("labels") or {})
    labels.update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision})
    pod_meta: Obj = {"name": name, "generateName": f"{meta['name']}-", "namespace": meta.get("namespace"),
                     "labels": labels, "ownerReferences": [owner_reference(sts)]}
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    spec: Obj = copy.deepcopy(template.get("spec") or {})
    spec["hostname"] = name
    service = nested(sts, "spec", "serviceName")
    if service:
        spec["subdomain"] = service
    claims = [c for c in nested(sts, "spec", "volumeClaimTemplates") or []
              if isinstance(c, dict) and nested(c, "metadata", "name")]
    if claims:
        names = {c["metadata"]["name"] for c in claims}
        volumes = [{"name": c["metadata"]["name"],
                    "persistentVolumeClaim": {"claimName": claim_name(sts, c["metadata"]["name"], ordinal)}}
                   for c in claims]
        spec["volumes"] = volumes + [v for v in spec.get("volumes") or [] if v.get("name") not in names]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


# --- a pod's state, as the controller reads it ---------------------------------------------

def revision_of(pod: Obj) -> str:
    return str((nested(pod, "metadata", "labels") or {}).get(REVISION_LABEL, ""))


def phase(pod: Obj) -> str:
    return str(nested(pod, "status", "phase") or "")


def is_created(pod: Obj) -> bool:
    """In the API server (it gave the pod a phase); a pod the planner made up is not."""
    return phase(pod) != ""


def is_finished(pod: Obj) -> bool:
    return phase(pod) in ("Failed", "Succeeded")


def is_terminating(pod: Obj) -> bool:
    return bool(nested(pod, "metadata", "deletionTimestamp"))


def _ready_condition(pod: Obj) -> Obj | None:
    for cond in nested(pod, "status", "conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return None


def is_running_and_ready(pod: Obj) -> bool:
    cond = _ready_condition(pod)
    return phase(pod) == "Running" and cond is not None and cond.get("status") == "True"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def is_running_and_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Running and Ready for at least minReadySeconds (podutil.IsPodAvailable)."""
    if not is_running_and_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = _parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)
