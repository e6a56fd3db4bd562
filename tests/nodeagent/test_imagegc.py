"""Image garbage collection (kubelet's image GC manager): the pure plan as a table, and the
collector over the in-memory runtime's image service."""
from __future__ import annotations

import pytest

from services.nodeagent.imagegc import GcPlan, GcPolicy, ImageGC, Record, plan, usage_percent
from tests.fakes.runtime import FakeRuntime, fake_image

GB = 1 << 30
POLICY = GcPolicy(high_percent=85, low_percent=80, min_age=120)
NOW = 10_000.0


def rec(image_id: str, size: int, last_used: float = 0.0, first_seen: float = 0.0) -> Record:
    return Record(image_id, size, first_seen, last_used)


@pytest.mark.parametrize("records, in_use, available, want", [
    pytest.param([rec("a", GB)], set(), 20 * GB, GcPlan(), id="below the high threshold: nothing"),
    pytest.param([rec("old", 3 * GB, last_used=10), rec("new", 3 * GB, last_used=20)], set(), 15 * GB,
                 GcPlan(("old", "new"), 5 * GB, 6 * GB), id="85% used: least recently used first, down to 80%"),
    pytest.param([rec("old", 6 * GB, last_used=10), rec("new", 3 * GB, last_used=20)], set(), 15 * GB,
                 GcPlan(("old",), 5 * GB, 6 * GB), id="stops once enough is freed"),
    pytest.param([rec("used", 9 * GB, last_used=1), rec("free", 2 * GB, last_used=5)], {"used"}, 10 * GB,
                 GcPlan(("free",), 10 * GB, 2 * GB), id="an image in use is kept: short of the goal"),
    pytest.param([rec("fresh", 9 * GB, first_seen=NOW - 60)], set(), 10 * GB, GcPlan((), 10 * GB, 0),
                 id="seen for less than the minimum age: kept"),
    pytest.param([rec("b", GB, last_used=5, first_seen=2), rec("a", GB, last_used=5, first_seen=1)], set(), 14 * GB,
                 GcPlan(("a", "b"), 6 * GB, 2 * GB), id="equal last use: first seen first"),
])
def test_plan(records, in_use, available, want):
    assert plan(records, in_use, capacity=100 * GB, available=available, policy=POLICY, now=NOW) == want


def test_usage_percent_is_kubelets_rounding():
    assert usage_percent(100, 15) == 85 and usage_percent(100, 151 / 10) == 85 and usage_percent(0, 0) == 0


@pytest.mark.parametrize("high, low, message", [
    (101, 80, "invalid HighThresholdPercent 101, must be in range [0-100]"),
    (85, -1, "invalid LowThresholdPercent -1, must be in range [0-100]"),
    (50, 60, "LowThresholdPercent 60 can not be higher than HighThresholdPercent 50"),
])
def test_policy_checks_its_thresholds(high, low, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        GcPolicy(high, low).check()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def test_collect_removes_unused_images_once_old_enough_and_warns_when_short():
    runtime = FakeRuntime()
    runtime.images = {n: fake_image(n, size=40 * GB) for n in ("docker.io/library/a:1", "docker.io/library/b:1")}
    runtime.images["docker.io/library/c:1"] = fake_image("docker.io/library/c:1", size=5 * GB)
    runtime.fs = (100 * GB, 10 * GB)  # 90% full: 10 GB to free
    used = ["a:1"]
    warnings: list[tuple[str, str]] = []
    clock = Clock()
    gc = ImageGC(runtime, used_images=lambda: used, warn=lambda r, m: warnings.append((r, m)), policy=POLICY,
                 clock=clock)
    first = await gc.collect()  # every image just seen: none old enough
    assert first.remove == () and runtime.calls == []
    assert warnings == [("FreeDiskSpaceFailed", "Failed to garbage collect required amount of images. Attempted "
                                                f"to free {10 * GB} bytes, but only found 0 bytes eligible to free.")]
    clock.now += 121
    warnings.clear()
    second = await gc.collect()  # b and c never used, seen at once: in the store's order, b frees enough
    b = fake_image("docker.io/library/b:1").id
    assert second == GcPlan((b,), 10 * GB, 40 * GB) and warnings == []
    assert [c for c in runtime.calls if c[0] == "remove_image"] == [("remove_image", b)]
    assert set(runtime.images) == {"docker.io/library/a:1", "docker.io/library/c:1"}  # a is in use
    used.clear()
    clock.now += 1
    runtime.fs = (100 * GB, 10 * GB)
    third = await gc.collect()  # a was used at the last pass, c never: c goes first
    assert third.remove == (fake_image("docker.io/library/c:1").id, fake_image("docker.io/library/a:1").id)
