"""The run loop every controller shares.

Start the informers, wait until every cache has synced (a controller acting on a partial
picture would, say, delete what it merely has not listed yet), then run the worker pools. On
stop (SIGTERM/SIGINT, or the caller's event): shut the queues, give workers a while to finish
the keys they hold, stop the informers and the health server.

With an elector (`--leader-elect`), the caches sync as above, but the workers run only while
this copy holds the controller's Lease: a standby copy is warm, so a failover costs the lease
expiry and no relist. A copy that loses the Lease stops its workers at once (no grace for the
keys they hold: another copy may lead by then) and `run_controller` raises `LeadershipLost`,
on which the process exits, as kube-controller-manager does.

What a controller does lives in its own service; this module knows nothing of it.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge

from kubecore.api.types import Obj
from kubecore.controller.health import Health, HealthServer, create_health_app
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.metrics import ControllerCollector
from kubecore.informer.factory import SharedInformerFactory, wait_for_cache_sync
from kubecore.informer.informer import Informer
from kubecore.informer.store import object_key
from kubecore.informer.workqueue import Reconcile, WorkQueue, run_workers

log = logging.getLogger("kubecore.controller.run")


class LeadershipLost(RuntimeError):
    """This copy stopped holding its controller's Lease while it was meant to run."""
Informers = Sequence[Informer] | SharedInformerFactory
InformerSource = Callable[[], Iterable[Informer]]


@dataclass
class WorkerPool:
    """A queue and the reconcile function its workers call with each key."""
    queue: WorkQueue
    reconcile: Reconcile
    workers: int = 1
    max_retries: int | None = None


def queue_handlers(queue: WorkQueue, key_of: Callable[[Obj], str | None] | None = None
                   ) -> Mapping[str, Callable[..., None]]:
    """Handlers that only enqueue the object's key: `informer.add_handlers(**queue_handlers(q))`.
    `key_of` maps an object to the key to enqueue (e.g. a pod to its owner), None to skip."""
    to_key = key_of or object_key

    def enqueue(obj: Obj) -> None:
        key = to_key(obj)
        if key is not None:
            queue.add(key)

    def update(old: Obj, new: Obj) -> None:
        enqueue(new)

    return {"on_add": enqueue, "on_update": update, "on_delete": enqueue}


def informer_source(informers: Informers | InformerSource) -> InformerSource:
    """The informers, asked afresh each time (a factory gains informers over time)."""
    if isinstance(informers, SharedInformerFactory):
        factory = informers
        return lambda: factory.informers
    if callable(informers):
        return informers
    fixed = list(informers)
    return lambda: fixed


async def run_controller(*, name: str, informers: Informers, pools: Sequence[WorkerPool],
                         registry: CollectorRegistry | None = None,
                         health_host: str = "127.0.0.1", health_port: int | None = None,
                         stop: asyncio.Event | None = None, handle_signals: bool = True,
                         shutdown_timeout: float = 10.0,
                         on_ready: Callable[[HealthServer | None], None] | None = None,
                         elector: LeaderElector | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT with `handle_signals`).

    Start the informers, wait until every cache has synced (`/readyz` says so), then run the
    worker pools. On stop: shut the queues, give workers `shutdown_timeout` to finish the
    keys they hold, stop the informers and the health server."""
    stop = stop or asyncio.Event()
    registry = registry or CollectorRegistry()
    source = informer_source(informers)
    registry.register(ControllerCollector(lambda: [p.queue for p in pools], source))
    if elector is not None:  # client-go's leader election gauge: 1 while this copy leads
        leading = elector
        Gauge("leader_election_master_status", "Gauge of if the reporting system is master of the relevant lease, "
              "0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
              ["name"], registry=registry).labels(name=elector.config.name).set_function(
            lambda: 1.0 if leading.is_leader() else 0.0)
    signals = _stop_on_signals(stop) if handle_signals else []
    health = None
    workers: list[asyncio.Task[None]] = []
    try:
        if health_port is not None:
            health = await _serve_health(name, Health(registry=registry, informers=source),
                                         health_host, health_port)
        if on_ready is not None:
            on_ready(health)
        await _start_informers(informers)
        if not await _wait_synced_or_stopped(name, list(source()), stop):
            return
        if elector is None:
            log.info("%s: caches synced; starting workers", name, extra={"controller": name})
            _start_workers(name, pools, workers)
            await _until_stopped_or_failed(name, workers, stop)
        else:
            log.info("%s: caches synced; waiting for the lease", name, extra={"controller": name})
            await _lead(name, pools, workers, stop, elector)
    except LeadershipLost:
        shutdown_timeout = 0.0
        raise
    finally:
        log.info("%s: stopping", name, extra={"controller": name})
        await _stop_workers(pools, workers, shutdown_timeout)
        await _stop_informers(informers)
        if health is not None:
            await health.stop()
        _restore_signals(signals)
        log.info("%s: stopped", name, extra={"controller": name})


def _stop_on_signals(stop: asyncio.Event) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    signals = [signal.SIGTERM, signal.SIGINT]
    for sig in signals:
        loop.add_signal_handler(sig, _stop_on_signal, stop, sig)
    return signals


def _stop_on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("received %s", sig.name)
    stop.set()


def _restore_signals(signals: list[signal.Signals]) -> None:
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.remove_signal_handler(sig)


async def _serve_health(name: str, health: Health, host: str, port: int) -> HealthServer:
    server = await HealthServer(create_health_app(health), host, port).start()
    log.info("%s: health on http://%s:%d", name, host, server.port, extra={"controller": name})
    return server


async def _start_informers(informers: Informers) -> None:
    if isinstance(informers, SharedInformerFactory):
        await informers.start()
    else:
        for informer in informers:
            await informer.start()


async def _stop_informers(informers: Informers) -> None:
    if isinstance(informers, SharedInformerFactory):
        await informers.stop()
    else:
        for informer in informers:
            await informer.stop()


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


def _start_workers(name: str, pools: Sequence[WorkerPool], workers: list[asyncio.Task[None]]) -> None:
    """One task per pool, added to `workers` as each starts (so a stop finds every one)."""
    loop = asyncio.get_running_loop()
    for pool in pools:
        workers.append(loop.create_task(
            run_workers(pool.queue, pool.reconcile, pool.workers,
                        max_retries=pool.max_retries, logger=logging.getLogger(name)),
            name=f"{name}-workers-{pool.queue.name}"))


async def _until_stopped_or_failed(name: str, workers: list[asyncio.Task[None]],
                                   stop: asyncio.Event) -> None:
    stopping = asyncio.get_running_loop().create_task(stop.wait())
    done, _ = await asyncio.wait([stopping, *workers], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    for task in done:
        if task is not stopping and task.exception() is not None:
            log.error("%s: workers failed: %r", name, task.exception(), extra={"controller": name})


async def _lead(name: str, pools: Sequence[WorkerPool], workers: list[asyncio.Task[None]],
                stop: asyncio.Event, elector: LeaderElector) -> None:
    """Run the workers while holding the Lease; return on `stop`, raise when the Lease is lost."""
    async def lead() -> None:
        log.info("%s: leading; starting workers", name, extra={"controller": name})
        _start_workers(name, pools, workers)
        await _until_stopped_or_failed(name, workers, stop)

    loop = asyncio.get_running_loop()
    electing = loop.create_task(elector.run(lead), name=f"{name}-election")
    stopping = loop.create_task(stop.wait())
    try:
        await asyncio.wait({electing, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not electing.done():
            electing.cancel()  # waiting for the lease, or leading: the elector's cleanup releases it
        outcome = (await asyncio.gather(electing, return_exceptions=True))[0]
    if isinstance(outcome, Exception):
        raise outcome
    if not stop.is_set():
        raise LeadershipLost(f"{name}: lost the lease {elector.config.namespace}/{elector.config.name}")


async def _stop_workers(pools: Sequence[WorkerPool], workers: list[asyncio.Task[None]],
                        timeout: float) -> None:
    """Shut the queues, let the workers finish the keys they hold for `timeout`, then cancel."""
    for pool in pools:
        pool.queue.shutdown()
    if not workers:
        return
    _, pending = await asyncio.wait(workers, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=2)
