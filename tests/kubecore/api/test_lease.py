"""coordination.k8s.io/v1 Lease: MicroTimes as Go decodes and writes them, kube's
ValidateLeaseSpec, kubectl's NAME HOLDER AGE."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.leases import ParseError, convert_lease, parse
from kubecore.api.validation.coordination import validate_lease
from kubecore.printers.tables import render_text

LAYOUT = '"2006-01-02T15:04:05.000000Z07:00"'


@pytest.mark.parametrize("text,stored", [
    ("2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.123456Z"),
    ("2026-01-02T03:04:05.000001+02:00", "2026-01-02T01:04:05.000001Z"),
    ("2026-01-01T00:30:00.000000-01:00", "2026-01-01T01:30:00.000000Z"),
    ("2026-01-02T3:04:05.000000Z", "2026-01-02T03:04:05.000000Z"),  # Go reads a one-digit hour
    ("2024-02-29T00:00:00.000000Z", "2024-02-29T00:00:00.000000Z"),
], ids=["utc", "offset", "negative-offset", "short-hour", "leap-day"])
def test_microtimes_are_stored_in_utc(text, stored):
    lease = {"spec": {"renewTime": text, "acquireTime": text}}
    convert_lease(lease)
    assert lease["spec"] == {"renewTime": stored, "acquireTime": stored}


@pytest.mark.parametrize("text,message", [
    ("x", f'parsing time "x" as {LAYOUT}: cannot parse "x" as "2006"'),
    ("2026-01-02T03:04:05Z",
     f'parsing time "2026-01-02T03:04:05Z" as {LAYOUT}: cannot parse "Z" as ".000000"'),
    ("2026-01-02T03:04:05.123Z",
     f'parsing time "2026-01-02T03:04:05.123Z" as {LAYOUT}: cannot parse ".123Z" as ".000000"'),
    ("2026-01-02 03:04:05.000000Z",
     f'parsing time "2026-01-02 03:04:05.000000Z" as {LAYOUT}: cannot parse " 03:04:05.000000Z" as "T"'),
    ("2026-1-02T03:04:05.000000Z",
     f'parsing time "2026-1-02T03:04:05.000000Z" as {LAYOUT}: cannot parse "1-02T03:04:05.000000Z" as "01"'),
    ("2026-13-02T03:04:05.000000Z", 'parsing time "2026-13-02T03:04:05.000000Z": month out of range'),
    ("2025-02-29T03:04:05.000000Z", 'parsing time "2025-02-29T03:04:05.000000Z": day out of range'),
    ("2026-01-02T24:04:05.000000Z", 'parsing time "2026-01-02T24:04:05.000000Z": hour out of range'),
    ("2026-01-02T03:04:05.000000Zz", 'parsing time "2026-01-02T03:04:05.000000Zz": extra text: "z"'),
    ("2026-01-02T03:04:05.000000+0200",
     f'parsing time "2026-01-02T03:04:05.000000+0200" as {LAYOUT}: cannot parse "+0200" as "Z07:00"'),
], ids=["garbage", "no-fraction", "millis", "space", "one-digit-month", "month", "day", "hour",
        "extra", "offset-without-colon"])
def test_microtimes_go_would_not_parse_are_a_400(text, message):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert str(err.value) == message
    with pytest.raises(ApiError) as api:
        convert_lease({"spec": {"renewTime": text}})
    assert api.value.code == 400
    assert api.value.message == f'Lease in version "v1" cannot be handled as a Lease: {message}'


def test_a_null_microtime_is_dropped():
    lease = {"spec": {"holderIdentity": "a", "renewTime": None}}
    convert_lease(lease)
    assert lease == {"spec": {"holderIdentity": "a"}}


@pytest.mark.parametrize("spec,wanted", [
    ({"holderIdentity": "node-a", "leaseDurationSeconds": 40, "leaseTransitions": 0}, []),
    ({"leaseDurationSeconds": 0}, [("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")]),
    ({"leaseTransitions": -1},
     [("spec.leaseTransitions", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"strategy": "OldestEmulationVersion"}, []),
    ({"strategy": "Newest"}, [("spec.strategy.strategy",
                               'Unsupported value: "Newest": supported values: "OldestEmulationVersion"')]),
    ({"strategy": "example.com/mine"}, []),
    ({"preferredHolder": "b"},
     [("spec.preferredHolder", "Forbidden: may only be specified if `strategy` is defined")]),
], ids=["ok", "zero-duration", "negative-transitions", "strategy", "unknown-strategy",
        "own-strategy", "preferred-without-strategy"])
def test_validation(spec, wanted):
    assert [(c.field, c.message) for c in validate_lease({"spec": spec}, None)] == wanted


def test_served_and_printed():
    assert R.by_path("coordination.k8s.io", "v1", "leases") is R.LEASES and R.LEASES.namespaced
    now = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    objs = [{"metadata": {"name": "node-a", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"holderIdentity": "node-a"}},
            {"metadata": {"name": "free", "creationTimestamp": "2026-01-01T00:04:00Z"}, "spec": {}}]
    assert render_text("Lease", objs, now=now).splitlines() == [
        "NAME     HOLDER   AGE",
        "node-a   node-a   5m",
        "free              60s",
    ]
