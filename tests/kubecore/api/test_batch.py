"""batch/v1 Job and CronJob: defaults, the selector generated on create, validation in kube's
words, and kubectl's columns."""
from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.printers.tables import render_text
from services.apiserver.registry.strategy import prepare_create, prepare_update

POD = {"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 0"]}],
       "restartPolicy": "Never"}


def job(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "pi"},
                            "spec": {"template": {"spec": copy.deepcopy(POD)}, **spec}}
    return body


def cronjob(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "hello"},
            "spec": {"schedule": "*/1 * * * *",
                     "jobTemplate": {"spec": {"template": {"spec": copy.deepcopy(POD)}}}, **spec}}


def causes(rt: R.ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ApiError) as err:
        if old is None:
            prepare_create(rt, obj, "default")
        else:
            prepare_update(rt, obj, old, status_only=False)
    assert err.value.code == 422
    return [(c.field, c.message) for c in err.value.causes]


# --- defaults and the generated selector ----------------------------------------------------

def test_a_job_gets_kubes_defaults_and_a_generated_selector() -> None:
    stored = prepare_create(R.JOBS, job(), "default")
    uid = stored["metadata"]["uid"]
    spec = stored["spec"]
    assert {k: spec[k] for k in ("completions", "parallelism", "backoffLimit", "completionMode",
                                 "suspend", "podReplacementPolicy", "manualSelector")} == {
        "completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
        "suspend": False, "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": False}
    generated = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
                 "controller-uid": uid, "job-name": "pi"}
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == generated
    assert stored["metadata"]["labels"] == generated
    assert stored["status"] == {} and stored["metadata"]["generation"] == 1


@pytest.mark.parametrize(("spec", "wanted"), [
    ({"parallelism": 3}, (None, 3)),
    ({"completions": 5}, (5, 1)),
    ({"completions": 5, "parallelism": 2}, (5, 2)),
], ids=["parallelism-only", "completions-only", "both"])
def test_completions_and_parallelism(spec: dict[str, int], wanted: tuple[int | None, int]) -> None:
    stored = prepare_create(R.JOBS, job(**spec), "default")
    assert (stored["spec"].get("completions"), stored["spec"]["parallelism"]) == wanted


def test_a_job_keeps_its_own_labels_and_status_is_cleared() -> None:
    body = job()
    body["metadata"]["labels"] = {"team": "a"}
    body["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    body["status"] = {"succeeded": 5}
    stored = prepare_create(R.JOBS, body, "default")
    assert stored["metadata"]["labels"] == {"team": "a"}
    assert stored["spec"]["template"]["metadata"]["labels"]["app"] == "pi"
    assert stored["status"] == {}


def test_a_manual_selector_is_left_alone() -> None:
    body = job(manualSelector=True, selector={"matchLabels": {"app": "pi"}})
    body["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    stored = prepare_create(R.JOBS, body, "default")
    assert stored["spec"]["selector"] == {"matchLabels": {"app": "pi"}}
    assert stored["spec"]["template"]["metadata"]["labels"] == {"app": "pi"}


def test_a_cronjob_gets_kubes_defaults() -> None:
    stored = prepare_create(R.CRONJOBS, cronjob(), "default")
    spec = stored["spec"]
    assert {k: spec[k] for k in ("concurrencyPolicy", "suspend", "successfulJobsHistoryLimit",
                                 "failedJobsHistoryLimit")} == {
        "concurrencyPolicy": "Allow", "suspend": False, "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1}
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30


# --- validation --------------------------------------------------------------------------

def _no_restart_policy() -> dict[str, Any]:
    body = job()
    del body["spec"]["template"]["spec"]["restartPolicy"]
    return body


@pytest.mark.parametrize(("body", "wanted"), [
    (_no_restart_policy(), [("spec.template.spec.restartPolicy",
                             'Unsupported value: "Always": supported values: "OnFailure", "Never"')]),
    (job(completionMode="Indexed", parallelism=2),
     [("spec.completions", "Required value: when completion mode is Indexed")]),
    (job(completionMode="Sometimes"),
     [("spec.completionMode", 'Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"')]),
    (job(backoffLimit=-1, activeDeadlineSeconds=-5),
     [("spec.activeDeadlineSeconds", "Invalid value: -5: must be greater than or equal to 0"),
      ("spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0")]),
    (job(podReplacementPolicy="Never"),
     [("spec.podReplacementPolicy",
       'Unsupported value: "Never": supported values: "Failed", "TerminatingOrFailed"')]),
    (job(manualSelector=True, selector={"matchLabels": {"app": "other"}}),
     [("spec.template.metadata.labels",
       "Invalid value: map[string]string{}: `selector` does not match template `labels`")]),
    (job(manualSelector=True),
     [("spec.selector", "Required value")]),
], ids=["restart-always", "indexed-needs-completions", "bad-mode", "negative", "replacement-policy",
        "manual-selector-mismatch", "manual-without-selector"])
def test_job_validation(body: dict[str, Any], wanted: list[tuple[str, str]]) -> None:
    assert causes(R.JOBS, body) == wanted


def test_generated_labels_must_not_be_overridden() -> None:
    got = causes(R.JOBS, job_with_label("job-name", "other"))
    assert [f for f, _ in got] == ["spec.template.metadata.labels[job-name]"]
    assert got[0][1].startswith('Invalid value: map[string]string{"batch.kubernetes.io/controller-uid":')
    assert got[0][1].endswith('"job-name":"other"}: must be \'pi\'')


def job_with_label(key: str, value: str) -> dict[str, Any]:
    body = job()
    body["spec"]["template"]["metadata"] = {"labels": {key: value}}
    return body


def stored_job(**spec: Any) -> dict[str, Any]:
    out = prepare_create(R.JOBS, job(**spec), "default")
    out["metadata"]["resourceVersion"] = "7"
    return out


@pytest.mark.parametrize(("change", "wanted"), [
    (lambda s: s.update(completions=3), [("spec.completions", "Invalid value: 3: field is immutable")]),
    (lambda s: s["selector"]["matchLabels"].update(x="y"),
     [("spec.selector", "Invalid value: `selector` not auto-generated"),
      ("spec.selector", "Invalid value: field is immutable")]),
    (lambda s: s["template"]["spec"]["containers"][0].update(image="alpine"),
     [("spec.template", "Invalid value: field is immutable")]),
    (lambda s: s.update(completionMode="Indexed"),
     [("spec.completionMode", 'Invalid value: "Indexed": field is immutable')]),
    (lambda s: s.update(parallelism=4, backoffLimit=1, activeDeadlineSeconds=60, suspend=True), []),
], ids=["completions", "selector", "template", "completion-mode", "mutable-fields"])
def test_job_update_rules(change: Any, wanted: list[tuple[str, str]]) -> None:
    old = stored_job()
    new = copy.deepcopy(old)
    change(new["spec"])
    if wanted:
        assert [c for c in causes(R.JOBS, new, old) if c[0] != "spec.template.metadata.labels"] == wanted
    else:
        assert prepare_update(R.JOBS, new, old, status_only=False)["spec"]["parallelism"] == 4


def test_a_suspended_job_that_never_ran_may_move_its_pods() -> None:
    old = stored_job(suspend=True)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "b"}
    assert prepare_update(R.JOBS, new, old, status_only=False)["spec"]["template"]["spec"][
        "nodeSelector"] == {"zone": "b"}
    old["status"] = {"startTime": "2026-01-01T00:00:00Z"}
    assert causes(R.JOBS, copy.deepcopy(new), old) == [("spec.template", "Invalid value: field is immutable")]


def test_status_counters_are_not_negative() -> None:
    old = stored_job()
    new = copy.deepcopy(old)
    new["status"] = {"active": -1}
    with pytest.raises(ApiError) as err:
        prepare_update(R.JOBS, new, old, status_only=True)
    assert [(c.field, c.message) for c in err.value.causes] == [
        ("status.active", "Invalid value: -1: must be greater than or equal to 0")]


@pytest.mark.parametrize(("body", "wanted"), [
    (cronjob(schedule="61 * * * *"),
     [("spec.schedule", 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61')]),
    (cronjob(schedule="@fortnightly"),
     [("spec.schedule", 'Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly')]),
    (cronjob(schedule="TZ=UTC * * * * *"),
     [("spec.schedule", 'Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, '
       "use timeZone field instead")]),
    (cronjob(timeZone="Mars/Olympus"),
     [("spec.timeZone", 'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus')]),
    (cronjob(timeZone=""), [("spec.timeZone", 'Invalid value: "": timeZone must be nil or non-empty string')]),
    (cronjob(concurrencyPolicy="Sometimes"),
     [("spec.concurrencyPolicy", 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"')]),
    (cronjob(successfulJobsHistoryLimit=-1, startingDeadlineSeconds=-2),
     [("spec.startingDeadlineSeconds", "Invalid value: -2: must be greater than or equal to 0"),
      ("spec.successfulJobsHistoryLimit", "Invalid value: -1: must be greater than or equal to 0")]),
], ids=["schedule-range", "descriptor", "tz-in-schedule", "unknown-zone", "empty-zone",
        "concurrency", "negative"])
def test_cronjob_validation(body: dict[str, Any], wanted: list[tuple[str, str]]) -> None:
    assert causes(R.CRONJOBS, body) == wanted


def test_a_cronjobs_job_template_has_no_selector_and_a_short_name() -> None:
    body = cronjob()
    body["metadata"]["name"] = "n" * 53
    body["spec"]["jobTemplate"]["spec"].update(selector={"matchLabels": {"a": "b"}}, manualSelector=True)
    assert causes(R.CRONJOBS, body) == [
        ("spec.jobTemplate.spec.selector", "Invalid value: `selector` will be auto-generated"),
        ("spec.jobTemplate.spec.manualSelector", 'Unsupported value: true: supported values: "nil", "false"'),
        ("metadata.name", f'Invalid value: "{"n" * 53}": must be no more than 52 characters'),
    ]


@pytest.mark.parametrize("schedule", ["@hourly", "@every 90s", "0 9 * * mon-fri", "*/15 8-18 1,15 * *"],
                         ids=["hourly", "every", "weekdays", "lists"])
def test_good_schedules(schedule: str) -> None:
    assert prepare_create(R.CRONJOBS, cronjob(schedule=schedule, timeZone="Europe/Berlin"),
                          "default")["spec"]["schedule"] == schedule


# --- served and printed ------------------------------------------------------------------

def test_served_under_batch() -> None:
    assert R.lookup("cj") is R.CRONJOBS and R.lookup("jobs") is R.JOBS
    assert R.by_path("batch", "v1", "cronjobs") is R.CRONJOBS
    assert R.JOBS.subresources == ("status",) and "all" in R.JOBS.categories


NOW = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)


def _printed_job(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj = prepare_create(R.JOBS, job(**spec), "default")
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"] = status
    return obj


def test_job_columns() -> None:
    done = {"startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:07Z", "succeeded": 1,
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                           {"type": "Complete", "status": "True"}]}
    failing = {"startTime": "2026-01-01T00:50:00Z", "failed": 2,
               "conditions": [{"type": "FailureTarget", "status": "True"}]}
    running = {"startTime": "2026-01-01T00:59:00Z", "active": 2, "succeeded": 1}
    rows = [_printed_job(done), _printed_job(failing), _printed_job(running, completions=5, parallelism=2),
            _printed_job({}, parallelism=3)]
    for i, r in enumerate(rows):
        r["metadata"]["name"] = f"job-{i}"
    assert render_text("Job", rows, now=NOW).splitlines() == [
        "NAME    STATUS          COMPLETIONS   DURATION   AGE",
        "job-0   Complete        1/1           7s         60m",
        "job-1   FailureTarget   0/1           10m        60m",
        "job-2   Running         1/5           60s        60m",
        "job-3   Running         0/1 of 3                 60m",
    ]
    wide = render_text("Job", rows[:1], now=NOW, wide=True).splitlines()
    assert wide[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS",
                               "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["c", "busybox", "batch.kubernetes.io/controller-uid="
                                    + rows[0]["metadata"]["uid"]]


def test_cronjob_columns() -> None:
    obj = prepare_create(R.CRONJOBS, cronjob(timeZone="Europe/Berlin"), "default")
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"] = {"active": [{"name": "hello-1"}], "lastScheduleTime": "2026-01-01T00:59:00Z"}
    never = copy.deepcopy(obj)
    never["metadata"]["name"] = "idle"
    never["spec"].pop("timeZone")
    never["status"] = {}
    assert render_text("CronJob", [obj, never], now=NOW).splitlines() == [
        "NAME    SCHEDULE      TIMEZONE        SUSPEND   ACTIVE   LAST SCHEDULE   AGE",
        "hello   */1 * * * *   Europe/Berlin   False     1        60s             60m",
        "idle    */1 * * * *   <none>          False     0        <none>          60m",
    ]
