"""Removing images nobody uses once the image file system fills up: kubelet's image GC manager.

Every `period` (kubelet: 5 min) the collector looks at the node's images and the containers
that exist (running or not: an exited container may restart). Each image has a first-seen and
a last-used time, kept here as kubelet keeps them in memory: an image a container uses is
"used now". When the file system holding the images is at or above `high_percent` full
(--image-gc-high-threshold, 85), images are removed until it would be at `low_percent`
(--image-gc-low-threshold, 80): unused ones only, least recently used first, none seen for less
than `min_age` (--minimum-image-ttl-duration, 2 min: it may have just been pulled for a
container about to start). When that cannot free enough, the Node gets kubelet's Warning
FreeDiskSpaceFailed.

`plan` decides (pure, table-tested); `ImageGC.collect` acts through the runtime's image service.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from services.nodeagent.cri import ImageService
from services.nodeagent.oci.image import ImageError

log = logging.getLogger("nodeagent")


@dataclass(frozen=True)
class GcPolicy:
    high_percent: int = 85
    low_percent: int = 80
    min_age: float = 120.0
    period: float = 300.0

    def check(self) -> None:
        """kubelet's validation of the two thresholds; raises ValueError."""
        if not 0 <= self.high_percent <= 100:
            raise ValueError(f"invalid HighThresholdPercent {self.high_percent}, must be in range [0-100]")
        if not 0 <= self.low_percent <= 100:
            raise ValueError(f"invalid LowThresholdPercent {self.low_percent}, must be in range [0-100]")
        if self.low_percent > self.high_percent:
            raise ValueError(f"LowThresholdPercent {self.low_percent} can not be higher than "
                             f"HighThresholdPercent {self.high_percent}")


@dataclass(frozen=True)
class Record:
    id: str
    size: int
    first_seen: float
    last_used: float


@dataclass(frozen=True)
class GcPlan:
    remove: tuple[str, ...] = ()
    to_free: int = 0  # bytes it should free
    freed: int = 0  # bytes removing `remove` frees

    @property
    def short(self) -> bool:
        return self.freed < self.to_free


def usage_percent(capacity: int, available: int) -> int:
    return 100 - int(available * 100 / capacity) if capacity > 0 else 0


def plan(records: Iterable[Record], in_use: set[str], *, capacity: int, available: int, policy: GcPolicy,
         now: float) -> GcPlan:
    """What to remove: nothing below the high threshold; else the unused images old enough,
    least recently used (then first seen) first, until the low threshold's bytes are freed."""
    if usage_percent(capacity, available) < policy.high_percent:
        return GcPlan()
    to_free = capacity * (100 - policy.low_percent) // 100 - available
    if to_free <= 0:
        return GcPlan()
    remove, freed = [], 0
    for r in sorted(records, key=lambda r: (r.last_used, r.first_seen)):
        if r.id in in_use or now - r.first_seen < policy.min_age:
            continue
        remove.append(r.id)
        freed += r.size
        if freed >= to_free:
            break
    return GcPlan(tuple(remove), to_free, freed)


@dataclass
class ImageGC:
    service: ImageService
    used_images: Callable[[], Sequence[str]]  # the image references of every container that exists
    warn: Callable[[str, str], None]  # (reason, message): a Warning Event on the Node
    policy: GcPolicy = field(default_factory=GcPolicy)
    clock: Callable[[], float] = time.time
    _records: dict[str, Record] = field(default_factory=dict)

    def detect(self) -> tuple[list[Record], set[str]]:
        """Refresh the records from the images there are now; -> (records, ids in use)."""
        now = self.clock()
        in_use: set[str] = set()
        for ref in self.used_images():
            try:
                image = self.service.image_status(ref)
            except ImageError:
                continue
            if image is not None:
                in_use.add(image.id)
        records: dict[str, Record] = {}
        for image in self.service.list_images():
            before = self._records.get(image.id)
            first = before.first_seen if before else now
            last = now if image.id in in_use else (before.last_used if before else 0.0)
            records[image.id] = Record(image.id, image.size, first, last)
        self._records = records
        return list(records.values()), in_use

    async def collect(self) -> GcPlan:
        records, in_use = self.detect()
        capacity, available = self.service.image_fs_info()
        decided = plan(records, in_use, capacity=capacity, available=available, policy=self.policy,
                       now=self.clock())
        freed = 0
        for image_id in decided.remove:
            try:
                await self.service.remove_image(image_id)
            except ImageError as exc:
                log.warning("image GC: removing %s: %s", image_id, exc)
                continue
            freed += self._records.pop(image_id).size
            log.info("image GC: removed %s (%d%% of the image file system in use)", image_id,
                     usage_percent(capacity, available))
        if decided.to_free and freed < decided.to_free:
            self.warn("FreeDiskSpaceFailed", f"Failed to garbage collect required amount of images. Attempted to "
                                             f"free {decided.to_free} bytes, but only found {freed} bytes eligible "
                                             "to free.")
        return GcPlan(decided.remove, decided.to_free, freed)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.policy.period)
            try:
                await self.collect()
            except OSError as exc:
                self.warn("ImageGCFailed", f"Image garbage collection failed: {exc}")
