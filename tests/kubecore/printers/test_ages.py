"""AGE as the CLI prints it (kubecore.printers.tables renders it for the server and the CLI)."""
from datetime import UTC, datetime

import pytest

from kubecore.printers.tables import age_since as age
from kubecore.printers.tables import human_duration


@pytest.mark.parametrize("seconds, text", [
    (-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"),
    (182, "3m2s"), (599, "9m59s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"),
    (3 * 3600 + 10 * 60, "3h10m"), (20 * 3600, "20h"), (47 * 3600, "47h"), (48 * 3600, "2d"),
    (52 * 3600, "2d4h"), (8 * 86400, "8d"), (400 * 86400, "400d"), (730 * 86400, "2y"),
    (740 * 86400, "2y10d"), (9 * 365 * 86400, "9y"),
], ids=str)
def test_human_duration_matches_kubectl(seconds, text):
    assert human_duration(seconds) == text


def test_age_of_timestamps():
    now = datetime(2026, 1, 1, 0, 3, 2, tzinfo=UTC)
    assert age("2026-01-01T00:00:00Z", now) == "3m2s"
    assert age(None, now) == "<unknown>"
    assert age("yesterday", now) == "<unknown>"
