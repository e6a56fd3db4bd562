"""The ConfigMaps and Secrets pods read: one GET per object per TTL, a 404 is an answer, any
other failure a SourceError (the container or volume waits)."""
from __future__ import annotations

import pytest

from kubecore.api.errors import ApiError
from kubecore.api.resources import CONFIGMAPS, SECRETS
from services.nodeagent.sources import ReferencedObjects, SourceError
from tests.fakes.api import FakeApiClient


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_each_object_is_fetched_once_per_ttl():
    api, clock = FakeApiClient(), Clock()
    api.preload(CONFIGMAPS, {"metadata": {"name": "cfg", "namespace": "ns"}, "data": {"a": "1"}})
    objects = ReferencedObjects(api, ttl=5.0, clock=clock)
    for _ in range(3):
        assert (await objects.configmap("ns", "cfg"))["data"] == {"a": "1"}
        assert await objects.secret("ns", "gone") is None  # a 404 is kept too
    assert [str(c) for c in api.calls] == ["get configmaps/ns/cfg", "get secrets/ns/gone"]
    api.edit(CONFIGMAPS, "cfg", "ns", lambda cm: cm["data"].update(a="2"))
    clock.now += 4.9
    assert (await objects.configmap("ns", "cfg"))["data"] == {"a": "1"}
    clock.now += 0.2
    assert (await objects.configmap("ns", "cfg"))["data"] == {"a": "2"}
    assert len(api.calls) == 3
    sources = await objects.env_sources("ns", {"cfg"}, {"gone"})
    assert sources.configmaps["cfg"]["data"] == {"a": "2"} and sources.secrets == {"gone": None}


@pytest.mark.parametrize("code", [403, 500], ids=["forbidden", "server-error"])
async def test_other_failures_are_source_errors(code):
    api = FakeApiClient()
    api.fail("get", SECRETS, "s", error=ApiError(code, "Failure", "no"))
    with pytest.raises(SourceError, match='secret "s"'):
        await ReferencedObjects(api).secret("ns", "s")
