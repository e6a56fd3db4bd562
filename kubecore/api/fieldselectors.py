"""The fields each kind can be selected by (`?fieldSelector=spec.nodeName=node-1`), with the
function reading each from an object, as kube-apiserver's per-kind GetAttrs."""
from __future__ import annotations

from kubecore.api.selectors import FieldGetter
from kubecore.api.types import nested

COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": lambda o: nested(o, "metadata", "name"),
    "metadata.namespace": lambda o: nested(o, "metadata", "namespace"),
}
POD_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "spec.nodeName": lambda o: nested(o, "spec", "nodeName"),
    "status.phase": lambda o: nested(o, "status", "phase"),
    "spec.schedulerName": lambda o: nested(o, "spec", "schedulerName"),
    "spec.restartPolicy": lambda o: nested(o, "spec", "restartPolicy"),
    "status.podIP": lambda o: nested(o, "status", "podIP"),
}
NODE_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "spec.unschedulable": lambda o: str(bool(nested(o, "spec", "unschedulable"))).lower(),
}
SERVICE_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "spec.clusterIP": lambda o: nested(o, "spec", "clusterIP"),
    "spec.type": lambda o: nested(o, "spec", "type"),
}


def _involved_object(field: str) -> FieldGetter:
    return lambda o: nested(o, "involvedObject", field)


EVENT_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    **{f"involvedObject.{f}": _involved_object(f)
       for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": lambda o: nested(o, "reason"),
    "type": lambda o: nested(o, "type"),
    "source": lambda o: nested(o, "source", "component"),
    "reportingComponent": lambda o: nested(o, "reportingComponent"),
}
NAMESPACE_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "status.phase": lambda o: nested(o, "status", "phase"),
}
SECRET_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "type": lambda o: nested(o, "type"),
}
JOB_FIELDS: dict[str, FieldGetter] = {
    **COMMON_FIELDS,
    "status.successful": lambda o: str(nested(o, "status", "succeeded") or 0),
}
