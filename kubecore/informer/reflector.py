"""The reflector: keeps a `Delivery` (the informer) current from the API server.

It lists, then watches from the list's resourceVersion. A broken connection is re-watched from
the last version seen, with exponential backoff; a 410 Expired (the server no longer has the
events since then) is answered with a relist, which the informer delivers as differences, so a
deletion that happened meanwhile still arrives as a delete (client-go's reflector.go).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Protocol

from kubecore.api.errors import ApiError
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient, ApiUnavailable, Expired

log = logging.getLogger("kubecore.informer.reflector")


class Delivery(Protocol):
    """Where a reflector puts what it learns (the informer)."""

    async def replace(self, items: list[Obj], resource_version: str) -> None: ...
    async def apply(self, event_type: str, obj: Obj) -> None: ...


class Backoff:
    def __init__(self, initial: float = 0.1, cap: float = 5.0) -> None:
        self.initial, self.cap = initial, cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self._next = self.initial


class Reflector:
    """List, then watch from the list's version; re-watch on a broken stream; relist on 410."""

    def __init__(self, client: ApiClient, rt: ResourceType, delivery: Delivery, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, backoff_cap: float = 5.0,
                 watch_timeout: tuple[int, int] = (300, 600), name: str = "") -> None:
        self.client = client
        self.rt = rt
        self.delivery = delivery
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.backoff = Backoff(cap=backoff_cap)
        self.watch_timeout = watch_timeout  # the server ends each watch after a random spell
        self.name = name or rt.plural
        self.resource_version = ""  # the newest version delivered (or bookmarked)
        self.relists = 0
        self.rewatches = 0

    async def run(self) -> None:
        need_list = True
        while True:
            try:
                if need_list:
                    items, rv = await self.client.list(
                        self.rt, self.namespace, label_selector=self.label_selector,
                        field_selector=self.field_selector)
                    await self.delivery.replace(items, rv)
                    self.resource_version = rv
                    self.relists += 1
                    need_list = False
                    self.backoff.reset()
                if await self._watch():
                    self.backoff.reset()
                    continue
                delay = self.backoff.next()  # a watch that ended at once: do not spin
            except Expired as exc:
                log.info("%s: resourceVersion %s expired (%s); relisting", self.name,
                         self.resource_version, exc.message)
                need_list = True
                continue
            except ApiUnavailable as exc:
                delay = self.backoff.next()
                log.warning("%s: API server unavailable (%s); retrying in %.1fs", self.name, exc,
                            delay)
            except ApiError as exc:
                delay = self.backoff.next()
                log.warning("%s: %s %s: %s; retrying in %.1fs", self.name, exc.code, exc.reason,
                            exc.message, delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = self.backoff.next()
                log.exception("%s: reflector failed; retrying in %.1fs", self.name, delay)
            self.rewatches += 1
            await asyncio.sleep(delay)

    async def _watch(self) -> bool:
        """One watch, until the server ends it. True if it was worth the connection (it
        delivered something or lasted a while), so the next one may start at once."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        delivered = False
        stream = self.client.watch(
            self.rt, self.namespace, resource_version=self.resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=random.randint(*self.watch_timeout), allow_bookmarks=True)
        async with contextlib.aclosing(stream):
            async for event in stream:
                delivered = True
                if event.type != "BOOKMARK":
                    await self.delivery.apply(event.type, event.object)
                if event.resource_version:
                    self.resource_version = event.resource_version
        return delivered or loop.time() - started > 1.0
