"""Events as kubectl shows them: the scheduler (in-process, real) binds a pod against the
API server process; `kubectl describe pod` lists the Scheduled event the way it does on a
real cluster, `kubectl get events` prints its columns, and minikubectl's Events section
reads the same."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys

from kubecore.api import resources as R
from kubecore.client.config import ClientConfig
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from services.scheduler.scheduler import Scheduler
from tests.compat.conftest import Kubectl, rows
from tests.conftest import ROOT
from tests.support.controllers import running, until


async def schedule_one_pod(config: ClientConfig) -> None:
    async with ApiClient(config) as client:
        await client.create(R.NODES, {"metadata": {"name": "node-a"}})
        await client.patch(R.NODES, "node-a", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}, subresource="status")
        await client.create(R.PODS, {"metadata": {"name": "web-1"}, "spec": {
            "containers": [{"name": "web", "image": "nginx"}]}}, "default")
        async with running(Scheduler(client, SharedInformerFactory(client))):
            async def scheduled():
                items, _ = await client.list(R.EVENTS, "default", field_selector="reason=Scheduled")
                return items
            await until(scheduled)


def events_section(text: str) -> list[list[str]]:
    """The Events table's rows without the Age column (it may tick between two runs)."""
    section = text.split("\nEvents:\n", 1)[1]
    return [cells[:2] + cells[3:] for cells in rows(section)]


async def test_kubectl_describe_pod_shows_the_scheduled_event(kubectl: Kubectl, apiserver_process):
    await schedule_one_pod(apiserver_process.config)
    out = (await asyncio.to_thread(kubectl, "describe", "pod", "web-1")).stdout
    assert re.search(r"\n  Normal  Scheduled  \d+s +default-scheduler  "
                     r"Successfully assigned default/web-1 to node-a\n", out), out
    node = (await asyncio.to_thread(kubectl, "describe", "node", "node-a")).stdout
    assert re.search(r"\nEvents: +<none>$", node.rstrip()), node  # its selector is understood
    table = rows((await asyncio.to_thread(kubectl, "get", "events")).stdout)
    assert table[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert table[1][1:] == ["Normal", "Scheduled", "pod/web-1",
                            "Successfully assigned default/web-1 to node-a"]
    # `kubectl events` (its own printer, paged, and --for's involvedObject field selectors)
    for args in (["events"], ["events", "--for", "pod/web-1"], ["events", "-A"]):
        listed = rows((await asyncio.to_thread(kubectl, *args)).stdout)
        columns = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        assert listed[0][-len(columns):] == columns, (args, listed)
        assert listed[1][-4:] == ["Normal", "Scheduled", "Pod/web-1",
                                  "Successfully assigned default/web-1 to node-a"], (args, listed)
    other = (await asyncio.to_thread(kubectl, "events", "--for", "pod/web-2"))
    assert "No events found" in other.stdout + other.stderr

    mine = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "minikubectl", "--kubeconfig", str(kubectl.kubeconfig),
                         "describe", "pod", "web-1"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    assert events_section(mine.stdout) == events_section(out)
    mine = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "minikubectl", "--kubeconfig", str(kubectl.kubeconfig),
                         "get", "events"], capture_output=True, text=True, cwd=ROOT, timeout=60,
        check=True)
    mine_rows = rows(mine.stdout)
    assert mine_rows[0] == table[0]
    assert [r[1:] for r in mine_rows[1:]] == [r[1:] for r in table[1:]]  # ages may tick
