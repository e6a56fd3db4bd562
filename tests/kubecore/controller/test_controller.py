"""The controller shell: health app, run loop, signals, structured logs."""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import textwrap

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter

from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from kubecore.controller.health import Health, HealthServer, create_health_app
from kubecore.controller.logs import JsonFormatter, KeyValueFormatter
from kubecore.controller.run import WorkerPool, queue_handlers, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.informer import Informer
from kubecore.informer.workqueue import WorkQueue
from tests.conftest import ROOT


async def until(cond, timeout: float = 20.0) -> None:
    async def poll():
        while not await cond():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            return r.status, await r.text()


async def test_readyz_is_503_until_every_informer_has_synced(apiserver):
    async with ApiClient(apiserver.config) as c:
        services, pods = Informer(c, R.SERVICES), Informer(c, R.PODS)
        registry = CollectorRegistry()
        Counter("things", "things done", registry=registry).inc(3)
        health = Health(registry=registry, informers=lambda: [services, pods])
        server = await HealthServer(create_health_app(health)).start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            assert (await fetch(base + "/healthz"))[0] == 200
            code, text = await fetch(base + "/readyz")
            assert code == 503 and "pods" in text and "services" in text
            await services.start()
            await services.synced.wait()
            code, text = await fetch(base + "/readyz")
            assert code == 503 and "pods" in text and "services" not in text
            await pods.start()
            await pods.synced.wait()
            assert await fetch(base + "/readyz") == (200, "ok")
            code, text = await fetch(base + "/metrics")
            assert code == 200 and "things_total 3.0" in text
        finally:
            await server.stop()
            await services.stop()
            await pods.stop()


async def test_run_controller_reconciles_from_the_cache_and_stops_cleanly(apiserver):
    async with ApiClient(apiserver.config) as c:
        factory = SharedInformerFactory(c)
        services = factory.informer(R.SERVICES)
        queue = WorkQueue("services")
        services.add_handlers(**queue_handlers(queue))
        seen: dict[str, str | None] = {}

        async def reconcile(key: str) -> None:
            obj = services.store.get(key)  # level-triggered: read the current state
            seen[key] = None if obj is None else obj["metadata"]["resourceVersion"]

        stop = asyncio.Event()
        health: list[HealthServer | None] = []
        registry = CollectorRegistry()
        run = asyncio.create_task(run_controller(
            name="test-controller", informers=factory, pools=[WorkerPool(queue, reconcile, 2)],
            registry=registry, health_port=0, stop=stop, handle_signals=False,
            on_ready=health.append))
        try:
            async def kubernetes_seen():
                return "default/kubernetes" in seen
            await until(kubernetes_seen)
            created = await c.create(R.SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                                                  "spec": {"ports": [{"port": 80}]}})

            async def web_seen():
                return seen.get("default/web") == created["metadata"]["resourceVersion"]
            await until(web_seen)
            await c.delete(R.SERVICES, "web", "default")

            async def web_gone():
                return "default/web" in seen and seen["default/web"] is None
            await until(web_gone)
            port = health[0].port
            assert (await fetch(f"http://127.0.0.1:{port}/readyz"))[0] == 200
            code, text = await fetch(f"http://127.0.0.1:{port}/metrics")
            assert 'informer_synced{informer="services"} 1.0' in text
            assert 'workqueue_depth{name="services"}' in text
        finally:
            stop.set()
            await asyncio.wait_for(run, 15)
        assert queue.shutting_down and not services.started


async def test_run_controller_stopped_before_sync_returns(etcd):
    async with ApiClient(f"http://127.0.0.1:{free_port()}") as c:  # nobody there
        informer = Informer(c, R.SERVICES)
        stop = asyncio.Event()
        ran = []

        async def reconcile(key):
            ran.append(key)

        run = asyncio.create_task(run_controller(name="t", informers=[informer],
                                                 pools=[WorkerPool(WorkQueue("q"), reconcile)],
                                                 stop=stop, handle_signals=False))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(run, 10)
        assert ran == [] and not informer.started


CONTROLLER_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from kubecore.api import resources as R
    from kubecore.client.config import load_kubeconfig
    from kubecore.client.rest import ApiClient
    from kubecore.controller.logs import setup_logging
    from kubecore.controller.run import WorkerPool, queue_handlers, run_controller
    from kubecore.informer.factory import SharedInformerFactory
    from kubecore.informer.workqueue import WorkQueue

    async def main():
        setup_logging(json_lines=True)
        async with ApiClient(load_kubeconfig(sys.argv[1])) as client:
            factory = SharedInformerFactory(client)
            queue = WorkQueue("services")
            factory.informer(R.SERVICES).add_handlers(**queue_handlers(queue))
            import logging
            async def reconcile(key):
                logging.getLogger("demo").info("reconciled", extra={"key": key})
            await run_controller(name="demo", informers=factory, pools=[WorkerPool(queue, reconcile)],
                                 health_port=int(sys.argv[2]))

    asyncio.run(main())
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_controller_process_stops_cleanly_on_signal(apiserver, tmp_path, sig):
    port = free_port()
    log_path = tmp_path / "controller.log"
    with open(log_path, "wb") as log:
        kubeconfig = apiserver.kubeconfig(tmp_path / "kubeconfig")
        proc = subprocess.Popen([sys.executable, "-c", CONTROLLER_SCRIPT, str(kubeconfig), str(port)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        async def ready():
            try:
                return (await fetch(f"http://127.0.0.1:{port}/readyz"))[0] == 200
            except aiohttp.ClientError:
                return False
        await until(ready)

        async def reconciled():
            return '"key": "default/kubernetes"' in log_path.read_text()
        await until(reconciled)
        proc.send_signal(sig)
        assert await asyncio.to_thread(proc.wait, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert any(record["msg"] == "reconciled" and record["key"] == "default/kubernetes" and record["logger"] == "demo"
               for record in lines)
    assert [record["msg"] for record in lines][-1] == "demo: stopped"


def _record(msg: str, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("svc", logging.WARNING, __file__, 1, msg, (), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


@pytest.mark.parametrize("formatter, check", [
    (KeyValueFormatter(), lambda out: out.endswith("WARNING svc: failed key=default/web queue=q")),
    (JsonFormatter(), lambda out: {k: v for k, v in json.loads(out).items() if k != "ts"} ==
     {"level": "WARNING", "logger": "svc", "msg": "failed", "key": "default/web", "queue": "q"}),
], ids=["key-value", "json"])
def test_log_lines_carry_the_key(formatter, check):
    assert check(formatter.format(_record("failed", key="default/web", queue="q")))
