"""The write tracker: our own writes' echoes are recognised; a lagging cache holds planning off."""
from __future__ import annotations

from services.endpointslice.tracker import WriteTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_echo_of_a_write_settles_it_and_needs_no_reconcile():
    t = WriteTracker()
    t.expect_write("ns/web", "web-abcde", "10", seen_rv=None)
    assert t.observe("ns/web", "web-abcde", "10") is True
    assert t.waiting("ns/web") is False and len(t) == 0


def test_an_echo_already_in_the_cache_is_not_waited_for():
    t = WriteTracker()
    t.expect_write("ns/web", "web-abcde", "10", seen_rv="10")
    assert t.waiting("ns/web") is False


def test_a_skipped_reconcile_comes_back_with_the_last_echo():
    t = WriteTracker()
    t.expect_write("ns/web", "web-a", "10", seen_rv=None)
    t.expect_write("ns/web", "web-b", "11", seen_rv=None)
    assert t.waiting("ns/web") is True  # a pod changed meanwhile: put off
    assert t.observe("ns/web", "web-a", "10") is True  # still waiting for web-b
    assert t.observe("ns/web", "web-b", "11") is False  # settled: reconcile what was put off
    assert t.waiting("ns/web") is False


def test_older_versions_do_not_settle_and_someone_elses_newer_write_is_not_an_echo():
    t = WriteTracker()
    t.expect_write("ns/web", "web-a", "10", seen_rv="9")
    assert t.observe("ns/web", "web-a", "9") is False
    assert t.waiting("ns/web") is True
    assert t.observe("ns/web", "web-a", "12") is False
    assert t.waiting("ns/web") is False


def test_deletes_are_awaited_until_seen():
    t = WriteTracker()
    t.expect_delete("ns/web", "web-a", still_cached=True)
    assert t.observe("ns/web", "web-a", "12") is False  # an update, not the deletion
    assert t.observe("ns/web", "web-a", None) is True
    assert t.waiting("ns/web") is False
    t.expect_delete("ns/web", "web-b", still_cached=False)
    assert t.waiting("ns/web") is False


def test_expectations_expire():
    clock = Clock()
    t = WriteTracker(ttl=5, clock=clock)
    t.expect_write("ns/web", "web-a", "10", seen_rv=None)
    assert t.waiting("ns/web") is True and t.time_left("ns/web") == 5
    clock.now += 5
    assert t.waiting("ns/web") is False and len(t) == 0


def test_other_services_and_slices_are_not_echoes():
    t = WriteTracker()
    t.expect_write("ns/web", "web-a", "10", seen_rv=None)
    assert t.observe("ns/db", "web-a", "10") is False
    assert t.observe("ns/web", "web-z", "10") is False
