"""What a watch stream does after each batch (services.apiserver.endpoints.watch.next_step),
as a table: when it ends, when it takes queued events, when a bookmark goes, how long it waits."""
from __future__ import annotations

import pytest

from services.apiserver.endpoints.watch import Next, Step, next_step

BASE = {"closed": False, "queued": False, "carry": False, "now": 100.0, "deadline": None,
        "bookmarks": False, "next_bookmark": 110.0, "bookmark_interval": 10.0, "check_every": 1.0}


@pytest.mark.parametrize("changes, expected", [
    ({}, Next(Step.WAIT, False, 1.0, 110.0)),
    ({"closed": True}, Next(Step.STOP)),
    ({"closed": True, "queued": True}, Next(Step.TAKE_QUEUED)),
    ({"closed": True, "carry": True}, Next(Step.TAKE_CARRY)),
    ({"deadline": 100.0, "carry": True}, Next(Step.STOP)),
    ({"deadline": 99.0, "queued": True}, Next(Step.STOP)),
    ({"carry": True, "queued": True}, Next(Step.TAKE_CARRY)),
    ({"queued": True, "bookmarks": True, "next_bookmark": 90.0}, Next(Step.TAKE_QUEUED)),
    ({"deadline": 100.25}, Next(Step.WAIT, False, 0.25, 110.0)),
    ({"bookmarks": True, "next_bookmark": 100.5}, Next(Step.WAIT, False, 0.5, 100.5)),
    ({"bookmarks": True, "next_bookmark": 100.0}, Next(Step.WAIT, True, 1.0, 110.0)),
    ({"bookmarks": True, "next_bookmark": 90.0, "bookmark_interval": 0.5},
     Next(Step.WAIT, True, 0.5, 100.5)),
    ({"bookmarks": False, "next_bookmark": 90.0}, Next(Step.WAIT, False, 1.0, 90.0)),
], ids=["idle", "closed", "closed-but-queued", "closed-but-carry", "deadline-drops-carry",
        "deadline-past", "carry-first", "queued-before-bookmark", "deadline-near",
        "bookmark-near", "bookmark-due", "bookmark-due-short-interval", "no-bookmarks"])
def test_next_step(changes, expected):
    assert next_step(**{**BASE, **changes}) == expected
