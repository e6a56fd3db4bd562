"""batch/v1 validation: Job and CronJob, as kube's pkg/apis/batch/validation (1.31) words it.

A Job's pods must not restart for ever (restartPolicy OnFailure or Never), its selector is
the generated one unless `manualSelector`, and what decides which pods it owns and how it
counts them (selector, template, completions, completionMode) never changes; only a
suspended Job that never started may have its pods' scheduling directives changed. A
CronJob's schedule is checked by the cron parser kube uses (`kubecore.api.cron`), its
`timeZone` by Go's zone lookup, and its name leaves room for the `-<minutes>` suffix of the
Jobs it makes (52 characters).
"""
from __future__ import annotations

import copy
import re
from typing import Any

from kubecore.api import batch as B
from kubecore.api import cron
from kubecore.api.errors import Cause
from kubecore.api.formats import go_quote
from kubecore.api.selectors import labels_match, selector_from_label_selector
from kubecore.api.types import Obj, nested
from kubecore.api.validation.core import pod_spec_causes, uses_relaxed_env_names
from kubecore.api.validation.meta import label_map_causes

MAX_INDEXED = 100_000
COMPLETION_MODES = ("NonIndexed", "Indexed")
REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
CRONJOB_NAME_MAX = 63 - 11
_ZONE_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")
# what a suspended Job that never started may change in its pod template
_SCHEDULING_DIRECTIVES = (("spec", "nodeSelector"), ("spec", "affinity"), ("spec", "tolerations"),
                          ("spec", "schedulingGates"), ("metadata", "labels"),
                          ("metadata", "annotations"))


def _go_value(value: Any) -> str:
    """A bad value as kube's field errors print it: numbers and booleans bare, strings
    quoted, nil as null, a map of strings as Go's %#v."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        items = ", ".join(f"{go_quote(str(k))}:{go_quote(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + items + "}"
    return str(value)


def _not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    allowed = ", ".join(f'"{s}"' for s in supported)
    return Cause(path, f"Unsupported value: {_go_value(value)}: supported values: {allowed}",
                 "FieldValueNotSupported")


def _not_negative(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [Cause(path, f"Invalid value: {value}: must be greater than or equal to 0")]
    return []


def _immutable(path: str, new: Any, old: Any, *, show: bool = True) -> list[Cause]:
    if new == old:
        return []
    shown = f"{_go_value(new)}: " if show else ""
    return [Cause(path, f"Invalid value: {shown}field is immutable")]


# --- Job ---------------------------------------------------------------------------------

def job_spec_causes(spec: Obj, path: str, *, old_template: Obj | None = None) -> list[Cause]:
    """validateJobSpec: counts, completion mode, replacement policy, the pod template."""
    causes: list[Cause] = []
    for name in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                 "ttlSecondsAfterFinished"):
        causes += _not_negative(f"{path}.{name}", spec.get(name))
    causes += _completion_mode_causes(spec, path)
    policy = spec.get("podReplacementPolicy")
    if policy is not None:
        allowed = ("Failed",) if spec.get("podFailurePolicy") is not None else REPLACEMENT_POLICIES
        if policy not in allowed:
            causes.append(_not_supported(f"{path}.podReplacementPolicy", policy, allowed))
    template = spec.get("template") or {}
    causes += label_map_causes(f"{path}.template.metadata.labels",
                               nested(template, "metadata", "labels"))
    causes += pod_spec_causes(template.get("spec") or {}, f"{path}.template.spec",
                              relaxed_env=uses_relaxed_env_names(old_template))
    restart = nested(template, "spec", "restartPolicy")
    if restart not in ("OnFailure", "Never"):
        causes.append(_not_supported(f"{path}.template.spec.restartPolicy", restart or "",
                                     ("OnFailure", "Never")))
    return causes


def _completion_mode_causes(spec: Obj, path: str) -> list[Cause]:
    mode = spec.get("completionMode")
    if mode is None:
        return []
    if mode not in COMPLETION_MODES:
        return [_not_supported(f"{path}.completionMode", mode, COMPLETION_MODES)]
    if mode != "Indexed":
        return []
    causes: list[Cause] = []
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if completions is None:
        causes.append(Cause(f"{path}.completions", "Required value: when completion mode is "
                            "Indexed", "FieldValueRequired"))
    if isinstance(parallelism, int) and parallelism > MAX_INDEXED:
        causes.append(Cause(f"{path}.parallelism", f"Invalid value: {parallelism}: must be less "
                            f"than or equal to {MAX_INDEXED} when completion mode is Indexed"))
    if isinstance(completions, int) and completions > MAX_INDEXED:
        causes.append(Cause(f"{path}.completions", f"Invalid value: {completions}: must be less "
                            f"than or equal to {MAX_INDEXED} when completion mode is Indexed"))
    return causes


def _generated_selector_causes(job: Obj, *, prefixed: bool) -> list[Cause]:
    """validateGeneratedSelector: the template carries the generated labels, the selector
    selects them."""
    spec = job.get("spec") or {}
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = job.get("metadata") or {}
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    causes: list[Cause] = []
    if not uid:
        causes.append(Cause("metadata.uid", "Required value", "FieldValueRequired"))
    labels = nested(spec, "template", "metadata", "labels") or {}
    expected = {B.LEGACY_CONTROLLER_UID_LABEL: uid, B.LEGACY_JOB_NAME_LABEL: name}
    if prefixed:
        expected.update({B.CONTROLLER_UID_LABEL: uid, B.JOB_NAME_LABEL: name})
    for key, value in expected.items():
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            causes.append(Cause(path, f"Required value: {key}", "FieldValueRequired"))
        elif labels[key] != value:
            causes.append(Cause(path, f"Invalid value: {_go_value(labels)}: must be '{value}'"))
    try:
        selects = labels_match(selector_from_label_selector(spec["selector"]), expected)
    except KeyError:
        selects = True  # an unknown operator is reported by the selector's own check
    if not selects:
        causes.append(Cause("spec.selector", "Invalid value: `selector` not auto-generated"))
    return causes


def _selector_causes(spec: Obj) -> list[Cause]:
    selector = spec.get("selector")
    if selector is None:
        return [Cause("spec.selector", "Required value", "FieldValueRequired")]
    causes = label_map_causes("spec.selector.matchLabels", selector.get("matchLabels"))
    labels = nested(spec, "template", "metadata", "labels") or {}
    try:
        ok = labels_match(selector_from_label_selector(selector), labels)
    except KeyError:
        return causes + [Cause("spec.selector.matchExpressions", "Invalid value: unknown operator")]
    if not ok:
        causes.append(Cause("spec.template.metadata.labels", f"Invalid value: {_go_value(labels)}: "
                            "`selector` does not match template `labels`"))
    return causes


def validate_job(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateJob, and on an update ValidateJobSpecUpdate."""
    spec = obj.get("spec") or {}
    old_spec = (old.get("spec") or {}) if old is not None else None
    prefixed = True
    if old_spec is not None:  # Jobs made before the prefixed labels are held to the old ones
        old_labels = nested(old_spec, "template", "metadata", "labels") or {}
        prefixed = B.JOB_NAME_LABEL in old_labels and B.CONTROLLER_UID_LABEL in old_labels
    causes = _generated_selector_causes(obj, prefixed=prefixed)
    causes += job_spec_causes(spec, "spec", old_template=nested(old_spec, "template", "spec"))
    causes += _selector_causes(spec)
    if old is not None and old_spec is not None:
        causes += _job_update_causes(spec, old_spec, old)
    return causes


def _job_update_causes(spec: Obj, old_spec: Obj, old: Obj) -> list[Cause]:
    causes: list[Cause] = []
    indexed = spec.get("completionMode") == "Indexed"
    if indexed and spec.get("completions") != old_spec.get("completions"):
        if spec.get("completions") is not None and spec.get("completions") != spec.get("parallelism"):
            causes.append(Cause("spec.completions", f"Invalid value: {spec.get('completions')}: "
                                "can only be modified in tandem with spec.parallelism"))
    else:
        causes += _immutable("spec.completions", spec.get("completions"), old_spec.get("completions"))
    causes += _immutable("spec.selector", spec.get("selector"), old_spec.get("selector"), show=False)
    template, old_template = spec.get("template"), old_spec.get("template")
    if _may_change_scheduling(old):
        template, old_template = _without_directives(template), _without_directives(old_template)
    causes += _immutable("spec.template", template, old_template, show=False)
    causes += _immutable("spec.completionMode", spec.get("completionMode"),
                         old_spec.get("completionMode"))
    for name in ("podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        causes += _immutable(f"spec.{name}", spec.get(name), old_spec.get(name), show=False)
    return causes


def _may_change_scheduling(old: Obj) -> bool:
    """A Job suspended before it ever started may have its pods placed elsewhere."""
    return nested(old, "spec", "suspend") is True and not nested(old, "status", "startTime")


def _without_directives(template: Any) -> Any:
    if not isinstance(template, dict):
        return template
    out = copy.deepcopy(template)
    for section, name in _SCHEDULING_DIRECTIVES:
        part = out.get(section)
        if isinstance(part, dict):
            part.pop(name, None)
    return out


def validate_job_status(obj: Obj, old: Obj | None) -> list[Cause]:
    """The counters are never negative (ValidateJobStatus)."""
    status = obj.get("status") or {}
    causes: list[Cause] = []
    for name in ("active", "succeeded", "failed", "ready", "terminating"):
        causes += _not_negative(f"status.{name}", status.get(name))
    return causes


# --- CronJob -------------------------------------------------------------------------------

def schedule_causes(schedule: Any, old_schedule: Any, time_zone: Any) -> list[Cause]:
    """validateScheduleFormat: the parser's verdict; TZ in the schedule only where it was."""
    if not schedule:
        return [Cause("spec.schedule", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    try:
        cron.parse(schedule)
    except cron.CronError as exc:
        causes.append(Cause("spec.schedule", f"Invalid value: {go_quote(schedule)}: {exc}"))
    allow_tz = isinstance(old_schedule, str) and "TZ" in old_schedule
    if allow_tz and "TZ" in schedule and time_zone is not None:
        causes.append(Cause("spec.schedule", f"Invalid value: {go_quote(schedule)}: cannot use "
                            "both timeZone field and TZ or CRON_TZ in schedule"))
    elif not allow_tz and "TZ" in schedule:
        causes.append(Cause("spec.schedule", f"Invalid value: {go_quote(schedule)}: cannot use "
                            "TZ or CRON_TZ in schedule, use timeZone field instead"))
    return causes


def time_zone_causes(zone: Any) -> list[Cause]:
    """validateTimeZone: nil, or a zone Go's time.LoadLocation knows."""
    if zone is None:
        return []
    path = "spec.timeZone"
    if zone == "":
        return [Cause(path, 'Invalid value: "": timeZone must be nil or non-empty string')]
    for part in zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _ZONE_PART.match(part):
            return [Cause(path, f"Invalid value: {go_quote(zone)}: unknown time zone {zone}")]
    try:
        cron.load_zone(zone)
    except cron.CronError as exc:
        return [Cause(path, f"Invalid value: {go_quote(zone)}: {exc}")]
    return []


def job_template_causes(template: Obj) -> list[Cause]:
    """ValidateJobTemplateSpec: a Job's spec whose selector the Job will generate."""
    spec = template.get("spec") or {}
    path = "spec.jobTemplate.spec"
    causes = label_map_causes("spec.jobTemplate.metadata.labels",
                              nested(template, "metadata", "labels"))
    causes += job_spec_causes(spec, path)
    if spec.get("selector") is not None:
        causes.append(Cause(f"{path}.selector", "Invalid value: `selector` will be auto-generated"))
    if spec.get("manualSelector") is True:
        causes.append(_not_supported(f"{path}.manualSelector", True, ("nil", "false")))
    return causes


def validate_cronjob(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateCronJobCreate / ValidateCronJobUpdate."""
    spec = obj.get("spec") or {}
    old_spec = (old.get("spec") or {}) if old is not None else None
    causes = schedule_causes(spec.get("schedule"), nested(old_spec, "schedule"), spec.get("timeZone"))
    causes += _not_negative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        causes += time_zone_causes(spec.get("timeZone"))
    policy = spec.get("concurrencyPolicy")
    if not policy:
        causes.append(Cause("spec.concurrencyPolicy", "Required value", "FieldValueRequired"))
    elif policy not in CONCURRENCY_POLICIES:
        causes.append(_not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
    causes += job_template_causes(spec.get("jobTemplate") or {})
    for name in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += _not_negative(f"spec.{name}", spec.get(name))
    name = nested(obj, "metadata", "name")
    if old is None and isinstance(name, str) and len(name) > CRONJOB_NAME_MAX:
        causes.append(Cause("metadata.name", f"Invalid value: {go_quote(name)}: must be no more "
                            f"than {CRONJOB_NAME_MAX} characters"))
    return causes
