"""--event-ttl: the API server removes Events some time after their last occurrence."""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from services.apiserver.registry.sweepers import event_expired
from services.apiserver.settings import parse_args, parse_duration
from tests.conftest import ApiServer, SessionPki, api_settings

LIMIT = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("event, expired", [
    ({"lastTimestamp": "2024-01-01T11:00:00Z", "metadata": {}}, True),
    ({"lastTimestamp": "2024-01-01T12:30:00Z", "metadata": {}}, False),
    ({"firstTimestamp": "2024-01-01T10:00:00Z", "lastTimestamp": "2024-01-01T12:30:00Z"}, False),
    ({"lastTimestamp": "2024-01-01T11:00:00Z",
      "metadata": {"creationTimestamp": "2024-01-01T12:01:00Z"}}, False),
    ({"eventTime": "2024-01-01T11:59:59.123456Z", "metadata": {}}, True),
    ({"eventTime": "2024-01-01T11:00:00.000000Z",
      "series": {"lastObservedTime": "2024-01-01T12:10:00.000000Z"}}, False),
    ({"metadata": {}}, False),
    ({"lastTimestamp": "2024-01-01T11:00:00Z", "series": "not an object"}, True),
], ids=["old", "recent", "repeated-recently", "created-recently", "micro-time", "series",
        "no-time", "malformed-series"])
def test_event_expired(event, expired):
    assert event_expired(event, LIMIT) is expired


@pytest.mark.parametrize("text, seconds", [
    ("1h", 3600), ("1h0m0s", 3600), ("90s", 90), ("2h30m", 9000), ("1.5h", 5400),
    ("500ms", 0.5), ("120", 120),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_event_ttl_flag():
    assert parse_args(SessionPki.get().apiserver_flags()).event_ttl == 3600
    assert parse_args([*SessionPki.get().apiserver_flags(), "--event-ttl", "30m"]).event_ttl == 1800
    with pytest.raises(SystemExit):
        parse_args([*SessionPki.get().apiserver_flags(), "--event-ttl", "soon"])


def event(name: str, at: float) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1"},
            "reason": "Started", "message": "Started container web", "type": "Normal",
            "source": {"component": "kubelet"}, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp}


async def test_events_older_than_the_ttl_are_swept(etcd):
    server = await ApiServer(api_settings(etcd, event_ttl=2.0, event_sweep_interval=0.1)).start()
    try:
        async with ApiClient(server.config) as client:
            await client.create(R.EVENTS, event("web-1.old", time.time()), "default")
            kept = await client.create(R.EVENTS, event("web-1.repeated", time.time()), "default")
            assert (await client.get(R.EVENTS, "web-1.old", "default"))["count"] == 1
            started = time.monotonic()
            gone_after = None
            while time.monotonic() - started < 8:
                # the other one keeps happening: each repeat moves its lastTimestamp
                kept = await client.patch(R.EVENTS, "web-1.repeated", {
                    "count": kept["count"] + 1,
                    "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                    "default")
                try:
                    await client.get(R.EVENTS, "web-1.old", "default")
                except ApiError as exc:
                    assert exc.code == 404
                    gone_after = time.monotonic() - started
                    break
                await asyncio.sleep(0.2)
            assert gone_after is not None, "the old event was never removed"
            assert gone_after > 1.0  # not before its time (timestamps are whole seconds)
            assert (await client.get(R.EVENTS, "web-1.repeated", "default"))["count"] > 1
    finally:
        await server.stop()


async def test_a_malformed_event_does_not_stop_the_sweep(etcd):
    # The API server stores what a client sends in fields it does not model (`series` here);
    # such an Event must neither end the sweep for good nor keep the others from expiring.
    server = await ApiServer(api_settings(etcd, event_ttl=1.0, event_sweep_interval=0.1)).start()
    try:
        async with ApiClient(server.config) as client:
            odd = event("web-1.odd", time.time() - 3600)
            odd["series"] = "not an object"
            await client.create(R.EVENTS, odd, "default")
            await asyncio.sleep(0.5)  # a few sweeps pass over the odd one alone
            await client.create(R.EVENTS, event("web-1.old", time.time() - 3600), "default")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    await client.get(R.EVENTS, "web-1.old", "default")
                except ApiError as exc:
                    assert exc.code == 404
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the sweep stopped: an old event was never removed")
    finally:
        await server.stop()
