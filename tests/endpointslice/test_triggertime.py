"""The last-change-trigger-time annotation's value, as kube's TriggerTimeTracker computes it."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubecore.api.types import Obj
from services.endpointslice.triggertime import TriggerTimeTracker, rfc3339nano
from tests.endpointslice.objects import pod, service

CREATED = "2026-01-01T00:00:00Z"


def _svc() -> Obj:
    svc = service()
    svc["metadata"]["creationTimestamp"] = CREATED
    return svc


def _pod(name: str, ready_at: str | None) -> Obj:
    p = pod(name, "10.0.0.1")
    if ready_at is not None:
        p["status"]["conditions"][0]["lastTransitionTime"] = ready_at
    else:
        p["status"]["conditions"] = []
    return p


@pytest.mark.parametrize(("first", "second", "wanted"), [
    ([], [_pod("a", "2026-01-01T00:01:00Z")], "2026-01-01T00:01:00Z"),
    ([_pod("a", "2026-01-01T00:01:00Z")], [_pod("a", "2026-01-01T00:01:00Z")], None),
    ([_pod("a", "2026-01-01T00:01:00Z"), _pod("b", "2026-01-01T00:02:00Z")],
     [_pod("a", "2026-01-01T00:05:00Z"), _pod("b", "2026-01-01T00:03:00Z")], "2026-01-01T00:03:00Z"),
    ([_pod("a", "2026-01-01T00:01:00Z")], [], None),
    ([], [_pod("a", None)], None),
], ids=["pod became ready", "nothing moved", "earliest of what moved", "pod gone", "no Ready condition"])
def test_after_the_first_sync(first: list[Obj], second: list[Obj], wanted: str | None) -> None:
    tracker = TriggerTimeTracker()
    assert tracker.compute("default/web", _svc(), first) == CREATED  # new Service: its creation
    assert tracker.compute("default/web", _svc(), second) == wanted


def test_forget_makes_the_service_new_again() -> None:
    tracker = TriggerTimeTracker()
    tracker.compute("default/web", _svc(), [])
    assert tracker.compute("default/web", _svc(), []) is None
    tracker.forget("default/web")
    assert tracker.compute("default/web", _svc(), []) == CREATED


@pytest.mark.parametrize(("moment", "text"), [
    (datetime(2026, 1, 1, tzinfo=UTC), "2026-01-01T00:00:00Z"),
    (datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC), "2026-01-01T00:00:01.5Z"),
    (datetime(2026, 1, 1, 0, 0, 1, 123, tzinfo=UTC), "2026-01-01T00:00:01.000123Z"),
], ids=["whole seconds", "trailing zeros dropped", "microseconds"])
def test_rfc3339nano(moment: datetime, text: str) -> None:
    assert rfc3339nano(moment) == text
