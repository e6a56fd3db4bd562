from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proxy.netns import NetnsLab, netns_supported


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    reason = netns_supported()
    if reason:
        pytest.skip(reason)
    lab = NetnsLab()
    try:
        yield lab
    finally:
        lab.close()
