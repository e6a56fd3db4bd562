"""What /readyz means for cluster DNS: its records have been listed.

Until then the zone answers SERVFAIL (never a wrong NXDOMAIN), and the service says it is not
ready. The /healthz, /readyz and /metrics app itself is kubecore's, shared by every service.
"""

from __future__ import annotations

from kubecore.controller.health import ReadinessCheck

from .records import RecordReader


def records_synced(reader: RecordReader) -> ReadinessCheck:
    async def check() -> str | None:
        return None if reader.synced else "caches not synced"

    return check
