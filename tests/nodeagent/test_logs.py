"""`kubectl logs` for real: the CRI log the agent keeps, and the options on it, through the API
server, against a container that restarts (so there is a previous instance)."""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from kubecore.api.resources import PODS
from kubecore.client.rest import ApiClient
from tests.nodeagent.conftest import needs_netns
from tests.nodeagent.streaming_cluster import eventually, streaming_cluster

pytestmark = [needs_netns, pytest.mark.netns, pytest.mark.asyncio(loop_scope="module")]
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
# two streams, a line longer than a record (16 KiB), and a last line without its end
FLAKY = ("echo start; sleep 0.3; echo to-stderr >&2; sleep 0.3; head -c 40000 /dev/zero | tr '\\0' x; echo; "
         "sleep 0.3; echo last; printf no-newline; sleep 1.5; exit 3")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(etcd_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("logs")
    pods = [
        {"metadata": {"name": "flaky"}, "spec": {"containers": [
            {"name": "main", "image": "busybox", "command": ["sh", "-c", FLAKY]}]}},
        {"metadata": {"name": "two"}, "spec": {"containers": [
            {"name": "a", "image": "busybox", "command": ["sh", "-c", "echo from-a; sleep 3600"]},
            {"name": "b", "image": "busybox", "command": ["sh", "-c", "echo from-b; sleep 3600"]}]}},
    ]
    async with streaming_cluster(etcd_server, workdir, pods) as c:
        async with ApiClient(c.server.config) as client:
            async def restarted():
                pod = await client.get(PODS, "flaky", "default")
                statuses = pod.get("status", {}).get("containerStatuses") or []
                return statuses and statuses[0].get("restartCount", 0) >= 1 and "running" in statuses[0]["state"]
            await eventually(restarted, 30, "flaky restarted")
        yield c


def _lines(out: str) -> list[str]:
    return [line if len(line) < 100 else f"x*{len(line)}" for line in out.splitlines()]


async def test_previous_shows_the_instance_before_the_restart(cluster):
    code, out, err = await cluster.kubectl("logs", "flaky", "--previous")
    assert code == 0, err
    # stdout and stderr both, in order; the 16 KiB pieces of the long line put back together;
    # the last line, which the container did not end, ended
    assert _lines(out) == ["start", "to-stderr", "x*40000", "last", "no-newline"], out[:200]
    assert out.endswith("no-newline\n")
    code, out, err = await cluster.kubectl("logs", "two", "-c", "b", "--previous")
    assert code == 1 and err.strip() == (
        'Error from server (BadRequest): previous terminated container "b" in pod "two" not found'), err


async def test_timestamps_tail_and_limit_bytes(cluster):
    code, out, err = await cluster.kubectl("logs", "flaky", "--previous", "--timestamps", "--tail=2")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and re.fullmatch(STAMP + " last", lines[0]), lines
    assert re.fullmatch(STAMP + " no-newline", lines[1]), lines
    stamp = lines[0].split()[0]
    age = time.time() - datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
    assert 0 < age < 60
    code, out, err = await cluster.kubectl("logs", "flaky", "--previous", "--limit-bytes=8")
    assert (code, out) == (0, "start\nto"), (out, err)
    code, out, err = await cluster.kubectl("logs", "flaky", "--previous", "--tail=0")
    assert (code, out) == (0, ""), err


async def test_since_and_since_time(cluster):
    code, out, err = await cluster.kubectl("logs", "flaky", "--previous", "--since=1h")
    assert code == 0 and out.startswith("start\nto-stderr\n"), err
    future = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = await cluster.kubectl("logs", "flaky", "--previous", f"--since-time={future}")
    assert (code, out) == (0, ""), err


async def test_container_selection_and_all_containers(cluster):
    code, out, err = await cluster.kubectl("logs", "two", "-c", "b")
    assert (code, out) == (0, "from-b\n"), err
    code, out, err = await cluster.kubectl("logs", "two", "--all-containers", "--prefix")
    assert code == 0, err
    assert sorted(out.splitlines()) == ["[pod/two/a] from-a", "[pod/two/b] from-b"]
    code, out, err = await cluster.kubectl("logs", "two")
    assert code == 0 and out == "from-a\n" and 'Defaulted container "a" out of: a, b' in err


async def test_follow_ends_with_the_container(cluster):
    # following the current instance: everything it writes, then the end when it exits
    code, out, err = await cluster.kubectl("logs", "-f", "flaky", timeout=30)
    assert code == 0, err
    assert out.endswith("x\nlast\nno-newline\n"), out[-200:]


async def test_options_are_checked_as_kube_apiserver_does(cluster):
    base = f"{cluster.server.url}/api/v1/namespaces/default/pods/two/log?container=a"
    async with cluster.server.session() as http:
        async with http.get(base + "&tailLines=-1") as r:
            body = await r.json()
        assert (r.status, body["message"]) == (422, 'PodLogOptions "two" is invalid: tailLines: Invalid value: '
                                                    "-1: must be greater than or equal to 0"), body
        async with http.get(base + "&sinceSeconds=0&limitBytes=0") as r:
            body = await r.json()
        assert r.status == 422 and body["message"] == (
            'PodLogOptions "two" is invalid: [limitBytes: Invalid value: 0: must be greater than 0, '
            "sinceSeconds: Invalid value: 0: must be greater than 0]"), body
        async with http.get(base + "&tailLines=many") as r:
            body = await r.json()
        assert r.status == 400 and "invalid syntax" in body["message"], body
        async with http.get(base + "&sinceTime=yesterday") as r:
            body = await r.json()
        assert r.status == 400 and "cannot parse as RFC3339" in body["message"], body
