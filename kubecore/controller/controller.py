"""The common shell of a controller process, so every controller starts, reports and
stops the same way:

- logs: one line per record, with the object key (`extra={"key": "ns/name"}`) as a field;
- a health app: `/healthz` (the process runs), `/readyz` (200 only once every informer
  has synced: before that the controller would act on a partial picture), `/metrics`;
- the run loop: start informers, wait for their caches, run the workers, and on
  SIGTERM/SIGINT stop taking work, let workers finish what they hold, stop the watches.

What a controller does lives in its own service; this module knows nothing of it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubecore.informer.informer import Informer, SharedInformerFactory, wait_for_cache_sync
from kubecore.informer.workqueue import Reconcile, WorkQueue, run_workers

log = logging.getLogger("kubecore.controller.controller")

# -- logging --------------------------------------------------------------------------------

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class KeyValueFormatter(logging.Formatter):
    """`2024-01-01T00:00:00 INFO endpointslice: synced key=default/web queue=services`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            tail = " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
            head, nl, rest = line.partition("\n")  # keep a traceback below the fields
            line = f"{head} {tail}{nl}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
                    for k, v in _extras(record).items()})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str | int = "INFO", *, json_lines: bool = False,
                  stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


# -- health and metrics ----------------------------------------------------------------------

InformerSource = Callable[[], Iterable[Informer]]


@dataclass(frozen=True)
class Health:
    informers: InformerSource
    registry: CollectorRegistry


HEALTH = web.AppKey("health", Health)


class ControllerCollector(Collector):
    """Work-queue depth and cache state, read when scraped."""

    def __init__(self, queues: Callable[[], Iterable[WorkQueue]], informers: InformerSource) -> None:
        self.queues = queues
        self.informers = informers

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("workqueue_depth", "Keys waiting in the work queue.",
                                  labels=["name"])
        for q in self.queues():
            depth.add_metric([q.name], len(q))
        yield depth
        synced = GaugeMetricFamily("informer_synced", "1 once the informer's cache has synced.",
                                   labels=["informer"])
        objects = GaugeMetricFamily("informer_objects", "Objects in the informer's cache.",
                                    labels=["informer"])
        relists = GaugeMetricFamily("informer_relists", "Lists made by the informer (first included).",
                                    labels=["informer"])
        for inf in self.informers():
            synced.add_metric([inf.name], 1.0 if inf.has_synced() else 0.0)
            objects.add_metric([inf.name], float(len(inf.store)))
            relists.add_metric([inf.name], float(inf.reflector.relists))
        yield synced
        yield objects
        yield relists


def _informer_source(informers: Sequence[Informer] | SharedInformerFactory | InformerSource
                     ) -> InformerSource:
    if isinstance(informers, SharedInformerFactory):
        factory = informers
        return lambda: factory.informers
    if callable(informers):
        return informers
    fixed = list(informers)
    return lambda: fixed


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    waiting = [i.name for i in request.app[HEALTH].informers() if not i.has_synced()]
    if waiting:
        return web.Response(status=503, text="caches not synced: " + ", ".join(sorted(waiting)))
    return web.Response(text="ok")


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[HEALTH].registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_health_app(informers: Sequence[Informer] | SharedInformerFactory | InformerSource,
                      registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[HEALTH] = Health(_informer_source(informers), registry)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


class HealthServer:
    """The health app on a port (0: any free one; `port` tells which after `start`)."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> HealthServer:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]  # the bound port, when 0 was asked for
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# -- the run loop --------------------------------------------------------------------------------

@dataclass
class WorkerPool:
    """A queue and the reconcile function its workers call with each key."""
    queue: WorkQueue
    reconcile: Reconcile
    workers: int = 1
    max_retries: int | None = None


async def run_controller(*, name: str,
                         informers: Sequence[Informer] | SharedInformerFactory,
                         pools: Sequence[WorkerPool],
                         registry: CollectorRegistry | None = None,
                         health_host: str = "127.0.0.1", health_port: int | None = None,
                         stop: asyncio.Event | None = None, handle_signals: bool = True,
                         shutdown_timeout: float = 10.0,
                         on_ready: Callable[[HealthServer | None], None] | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT with `handle_signals`).

    Start the informers, wait until every cache has synced (`/readyz` says so), then run the
    worker pools. On stop: shut the queues, give workers `shutdown_timeout` to finish the
    keys they hold, stop the informers and the health server."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    registry = registry or CollectorRegistry()
    source = _informer_source(informers)
    registry.register(ControllerCollector(lambda: [p.queue for p in pools], source))
    signals: list[signal.Signals] = []
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _stop_on_signal, stop, sig)
            signals.append(sig)
    health = None
    workers: list[asyncio.Task[None]] = []
    try:
        if health_port is not None:
            health = await HealthServer(create_health_app(source, registry), health_host,
                                        health_port).start()
            log.info("%s: health on http://%s:%d", name, health_host, health.port,
                     extra={"controller": name})
        if on_ready is not None:
            on_ready(health)
        if isinstance(informers, SharedInformerFactory):
            await informers.start()
        else:
            for informer in informers:
                await informer.start()
        if not await _wait_synced_or_stopped(name, list(source()), stop):
            return
        log.info("%s: caches synced; starting workers", name, extra={"controller": name})
        for pool in pools:
            workers.append(loop.create_task(
                run_workers(pool.queue, pool.reconcile, pool.workers,
                            max_retries=pool.max_retries, logger=logging.getLogger(name)),
                name=f"{name}-workers-{pool.queue.name}"))
        stopping = loop.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *workers], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        for task in done:
            if task is not stopping and task.exception() is not None:
                log.error("%s: workers failed: %r", name, task.exception(),
                          extra={"controller": name})
    finally:
        log.info("%s: stopping", name, extra={"controller": name})
        for pool in pools:
            pool.queue.shutdown()
        if workers:
            _, pending = await asyncio.wait(workers, timeout=shutdown_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        if isinstance(informers, SharedInformerFactory):
            await informers.stop()
        else:
            for informer in informers:
                await informer.stop()
        if health is not None:
            await health.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)
        log.info("%s: stopped", name, extra={"controller": name})


def _stop_on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("received %s", sig.name)
    stop.set()


async def _wait_synced_or_stopped(name: str, informers: list[Informer], stop: asyncio.Event) -> bool:
    next_report = time.monotonic() + 10
    while not stop.is_set():
        if await wait_for_cache_sync(*informers, timeout=0.5):
            return True
        if time.monotonic() >= next_report:
            next_report += 10
            waiting = [i.name for i in informers if not i.has_synced()]
            log.info("%s: waiting for caches to sync: %s", name, ", ".join(waiting),
                     extra={"controller": name})
    return False


def queue_handlers(queue: WorkQueue, key_of: Callable[[dict], str | None] | None = None
                   ) -> Mapping[str, Callable[..., None]]:
    """Handlers that only enqueue the object's key: `informer.add_handlers(**queue_handlers(q))`.
    `key_of` maps an object to the key to enqueue (e.g. a pod to its owner), None to skip."""
    from kubecore.informer.informer import object_key

    to_key = key_of or object_key

    def enqueue(obj: dict) -> None:
        key = to_key(obj)
        if key is not None:
            queue.add(key)

    return {"on_add": enqueue, "on_update": lambda old, new: enqueue(new), "on_delete": enqueue}


# --- the command line every controller process shares -----------------------------------

def controller_parser(module: str, description: str, *, health_port: int) -> argparse.ArgumentParser:
    """The flags of every controller process; each adds its own to the parser it gets."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--apiserver", required=True, help="API server URL, e.g. http://127.0.0.1:6443")
    parser.add_argument("--health-port", type=int, default=health_port,
                        help="/healthz /readyz /metrics port (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    return parser


def run_controller_main(args: argparse.Namespace, build: Callable[..., object]) -> int:
    """Set up logging, open the API client, build the controller with `build(client, args)`
    and run it (its `run(health_host=, health_port=)`) until SIGTERM/SIGINT."""
    import argparse  # noqa: F401  (for the annotation)

    from kubecore.client.rest import ApiClient

    setup_logging(args.log_level, json_lines=args.log_json)

    async def serve() -> None:
        async with ApiClient(args.apiserver) as client:
            controller = build(client, args)
            await controller.run(health_host=args.health_host, health_port=args.health_port)  # type: ignore[attr-defined]

    asyncio.run(serve())
    return 0
