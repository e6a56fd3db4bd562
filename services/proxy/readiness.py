"""What /readyz means for the proxy: more than "caches synced".

The rules built from those full caches must be in the kernel, so a node is not reported ready
while its service traffic would still be REJECTed or missing. (The caches themselves are
checked by kubecore's health app, which every service shares.)
"""
from __future__ import annotations

from kubecore.controller.health import ReadinessCheck
from services.proxy.proxier import Proxier


def rules_synced(proxier: Proxier) -> ReadinessCheck:
    async def check() -> str | None:
        return None if proxier.ready else "rules not synced yet"

    return check
