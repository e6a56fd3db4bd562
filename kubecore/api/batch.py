"""batch/v1 as data: the label, annotation and finalizer names Jobs and CronJobs share with
their pods, what the API server adds to a Job on create (kube's job strategy), and the
questions asked of a Job's conditions by the API server, the printers and the controllers.

The selector generation is kube-apiserver's `generateSelector`: unless `manualSelector` is
true, the pod template gets the Job's uid and name under the prefixed labels and the legacy
ones, and the selector matches the uid. Kube defaults the Job's own labels from the
template's whenever it has none, and it defaults again when it reads the object back, so a
Job shows the generated labels too; here they are copied once, on create.
"""
from __future__ import annotations

from typing import Any

from kubecore.api.types import Obj, nested

GROUP = "batch"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"  # annotation and label
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
CRONJOB_SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"

# condition types, as kube 1.31 writes them
COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"
FAILURE_TARGET = "FailureTarget"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"


def generate_job_selector(job: Obj) -> None:
    """kube's PrepareForCreate of a Job: the generated selector and labels (unless
    manualSelector), an empty status. Runs after the uid is assigned."""
    spec = job.get("spec")
    meta = job.get("metadata") or {}
    if not isinstance(spec, dict):
        return
    job["status"] = {}
    # kube's defaults made the Job's labels the template's very map, so what is generated
    # below shows on the Job too
    shared = not meta.get("labels") or meta.get("labels") == nested(spec, "template", "metadata",
                                                                      "labels")
    if spec.get("manualSelector") is not True:
        _generate(spec, str(meta.get("name") or ""), str(meta.get("uid") or ""))
    labels = nested(spec, "template", "metadata", "labels")
    if shared and isinstance(labels, dict) and labels:
        meta["labels"] = dict(labels)


def _generate(spec: Obj, name: str, uid: str) -> None:
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    tmeta = template.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = template["metadata"] = {}
    labels = tmeta.get("labels")
    if not isinstance(labels, dict):
        labels = tmeta["labels"] = {}
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match = selector.get("matchLabels")
    if not isinstance(match, dict):
        match = selector["matchLabels"] = {}
    match.setdefault(CONTROLLER_UID_LABEL, uid)


def condition(job: Obj, ctype: str) -> Obj | None:
    """The Job's condition of this type that is True, if any."""
    for cond in nested(job, "status", "conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype and cond.get("status") == "True":
            return cond
    return None


def is_finished(job: Obj) -> bool:
    """Complete or Failed (kube's IsJobFinished)."""
    return condition(job, COMPLETE) is not None or condition(job, FAILED) is not None


def finished_condition(job: Obj) -> Obj | None:
    return condition(job, COMPLETE) or condition(job, FAILED)


def is_indexed(job: Obj) -> bool:
    return bool(nested(job, "spec", "completionMode") == "Indexed")


def int_field(obj: Any, *path: str, default: int = 0) -> int:
    value = nested(obj, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else default
