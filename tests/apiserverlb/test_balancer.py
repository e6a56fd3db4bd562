"""The API servers' load balancer over real TCP on loopback: backends that answer with their
name once the client has sent everything (so a half-close must pass through), health decided
by a table the test sets."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from services.apiserverlb.balancer import Backend, Balancer


async def named_backend(name: str) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked = await reader.read()  # until the client's half-close
        writer.write(f"{name}:{asked.decode()}".encode())
        await writer.drain()
        writer.close()
    return await asyncio.start_server(answer, "127.0.0.1", 0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Balanced:
    def __init__(self, balancer: Balancer, health: dict[str, bool], port: int) -> None:
        self.balancer, self.health, self.port = balancer, health, port

    async def ask(self, text: str = "hi") -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(text.encode())
        writer.write_eof()
        answer = (await asyncio.wait_for(reader.read(), 5)).decode()
        writer.close()
        return answer


@pytest.fixture
async def balanced() -> AsyncIterator[Balanced]:
    servers = [await named_backend(n) for n in ("a", "b")]
    backends = [Backend("127.0.0.1", s.sockets[0].getsockname()[1]) for s in servers]
    backends.append(Backend("127.0.0.1", closed_port()))  # "c": nothing listens
    health = {b.address: True for b in backends}

    async def check(b: Backend) -> bool:
        return health[b.address]
    balancer = Balancer(backends, check, registry=CollectorRegistry(), fall=1)
    front = await asyncio.start_server(balancer.handle, "127.0.0.1", 0)
    try:
        yield Balanced(balancer, health, front.sockets[0].getsockname()[1])
    finally:
        front.close()
        for s in servers:
            s.close()


async def test_connections_take_turns_and_skip_a_backend_that_refuses(balanced: Balanced) -> None:
    answers = [await balanced.ask(f"q{i}") for i in range(6)]
    # "c" refuses: its turns go to the next backend, and every answer is whole
    assert answers == ["a:q0", "b:q1", "a:q2", "a:q3", "b:q4", "a:q5"]
    refused = balanced.balancer.refused.labels(balanced.balancer.backends[2].address)._value.get()
    assert refused == 2


async def test_a_backend_failing_its_checks_gets_no_new_connections(balanced: Balanced) -> None:
    a, b, c = balanced.balancer.backends
    balanced.health[a.address] = balanced.health[c.address] = False
    await balanced.balancer.check_once()
    assert not a.healthy and b.healthy
    assert {await balanced.ask() for _ in range(4)} == {"b:hi"}
    balanced.health[a.address] = True
    await balanced.balancer.check_once()
    assert {await balanced.ask() for _ in range(4)} == {"a:hi", "b:hi"}


async def test_with_no_backend_healthy_each_is_still_tried(balanced: Balanced) -> None:
    for b in balanced.balancer.backends:
        balanced.health[b.address] = False
    await balanced.balancer.check_once()
    assert not balanced.balancer.any_healthy
    assert (await balanced.ask()).endswith(":hi")
