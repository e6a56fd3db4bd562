"""What an attacker sends the API server gets a clear 4xx Status (or an answer within limits),
and leaves nothing broken behind: the object, its namespace, the server's other clients."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import aiohttp
import pytest
from aiohttp import web

from kubecore.api import resources as R
from kubecore.api.jsonwire import MAX_DEPTH
from services.apiserver.app import create_app
from services.apiserver.settings import server_ssl_context
from tests.conftest import SessionPki, api_settings, tls_session

pytestmark = pytest.mark.etcd

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str = "p", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


@pytest.fixture
async def session(apiserver):
    async with apiserver.session() as s:
        yield s


# --- a control character in an unknown field's name -----------------------------------------

async def test_unknown_field_with_a_newline_is_answered_with_a_quoted_warning(session):
    body = {**pod(), "x\ny": 1, "caf\u00e9": 2}
    async with session.post(PODS, json=body) as r:
        assert r.status == 201, await r.text()
        assert sorted(r.headers.getall("Warning")) == [
            '299 - "unknown field \\"caf\u00e9\\""', '299 - "unknown field \\"x\\\\ny\\""']
    # every later merge patch of the object carries the stored field along: answered too
    async with session.patch(f"{PODS}/p", json={"metadata": {"labels": {"a": "b"}}},
                             headers={"Content-Type": "application/merge-patch+json"}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["metadata"]["labels"] == {"a": "b"}
    async with session.post(PODS + "?fieldValidation=Strict", json={**pod("q"), "x\ny": 1}) as r:
        assert r.status == 400
        assert (await r.json())["message"] == 'strict decoding error: unknown field "x\\ny"'


# --- nesting ------------------------------------------------------------------------------

def nested(levels: int) -> dict:
    """A value of `levels` nested objects."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def deep_pod(depth: int, name: str = "deep") -> dict:
    """A pod nested `depth` levels in all (the pod 1, spec 2, affinity 3, ...)."""
    return pod(name, affinity=nested(depth - 2))


async def wait_gone(http, path: str) -> None:
    for _ in range(100):
        if (await http.get(path))[0] == 404:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} is still there")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 490, 5000], ids=["one-over", "490", "5000"])
async def test_a_body_nested_deeper_than_the_limit_is_400(http, depth):
    head = json.dumps(deep_pod(3))[:-len("{}}}")]  # ... "affinity": {
    raw = (head + '{"a":' * (depth - 3) + "{}" + "}" * (depth - 3) + "}}").encode()
    code, status = await http.post(PODS, raw=raw)
    assert code == 400, status
    assert status["message"] == ("couldn't get version/kind; json parse error: invalid "
                                 "character '{' exceeded max depth")
    assert (await http.get(f"{PODS}/deep"))[0] == 404


async def test_an_object_at_the_depth_limit_goes_through_every_write(http):
    assert (await http.post("/api/v1/namespaces", {"metadata": {"name": "deep"}}))[0] == 201
    path = "/api/v1/namespaces/deep/pods"
    code, created = await http.post(path, deep_pod(MAX_DEPTH))
    assert code == 201, created
    code, got = await http.put(f"{path}/deep", {**created, "metadata": {
        **created["metadata"], "labels": {"a": "b"}}})
    assert code == 200, got
    for ctype, patch in [("application/merge-patch+json", {"metadata": {"labels": {"c": "d"}}}),
                         ("application/strategic-merge-patch+json", {"metadata": {"labels": {"e": "f"}}}),
                         ("application/json-patch+json", [{"op": "add", "path": "/metadata/labels/g",
                                                           "value": "h"}])]:
        code, got = await http.patch(f"{path}/deep", patch, ctype)
        assert code == 200, (ctype, got)
    assert (await http.get(f"{path}?watch=0"))[0] == 200
    assert (await http.delete("/api/v1/namespaces/deep"))[0] == 200
    await wait_gone(http, "/api/v1/namespaces/deep")


async def test_an_object_stored_too_deep_before_the_limit_cannot_hold_its_namespace(apiserver, http):
    """Written straight into etcd, as a server without the limit stored it."""
    assert (await http.post("/api/v1/namespaces", {"metadata": {"name": "old"}}))[0] == 201
    obj = deep_pod(490)
    obj["metadata"].update(namespace="old", uid="0d7a3e8e-1f1c-4b6e-9c39-2d1b58b0a001",
                           creationTimestamp="2024-01-01T00:00:00Z")
    await apiserver.state.storage.create(R.PODS, obj)
    path = "/api/v1/namespaces/old/pods/deep"
    assert (await http.get(path))[0] == 200
    code, patched = await http.patch(path, {"metadata": {"labels": {"a": "b"}}},
                                     "application/merge-patch+json")
    assert code == 422 and "nests deeper than" in patched["message"], patched
    assert (await http.delete("/api/v1/namespaces/old"))[0] == 200
    await wait_gone(http, "/api/v1/namespaces/old")
    assert (await http.get(path))[0] == 404


# --- YAML aliases, and objects that grow once decoded --------------------------------------

def yaml_doc(text: str) -> bytes:
    return text.encode()


BILLION_LAUGHS = yaml_doc(
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lol\nspec:\n  containers: [{name: c, image: busybox}]\n"
    "lols:\n" + "".join(
        f"  {c}: &{c} [{','.join([f'*{p}'] * 9) if p else ','.join(['lol'] * 9)}]\n"
        for p, c in zip(["", *"abcdef"], "abcdefg", strict=True)))  # 9**7 "lol"s: 30 MB
# within go-yaml's alias ratio (97% of the decoded nodes), but 4 MB once expanded
WIDE_ALIASES = yaml_doc(
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: wide\nspec:\n  containers: [{name: c, image: busybox}]\n"
    "base: &base [" + ",".join(["x" * 100] * 1000) + "]\n"
    "copies: [" + ",".join(["*base"] * 40) + "]\n")


@pytest.mark.parametrize("doc,code,message", [
    (BILLION_LAUGHS, 400, "error converting YAML to JSON: yaml: document contains excessive aliasing"),
    (WIDE_ALIASES, 413, "the request body is larger than the limit of 3145728 bytes"),
    (yaml_doc("a: &a [*a]\n"), 400, "error converting YAML to JSON: yaml: anchor 'a' value contains itself"),
    (yaml_doc("x: " + "[" * (MAX_DEPTH + 1)), 400,
     f"error converting YAML to JSON: yaml: exceeded max depth of {MAX_DEPTH}"),
    (yaml_doc("x: &x " + "[" * 60 + "]" * 60 + "\ny: &y " + "[" * 50 + "*x" + "]" * 50 + "\n"), 400,
     f"error converting YAML to JSON: yaml: exceeded max depth of {MAX_DEPTH}"),
], ids=["billion-laughs", "wide-aliases", "self-alias", "deep", "deep-through-an-alias"])
async def test_yaml_is_bounded_before_it_expands(http, doc, code, message):
    for dry_run in ("?dryRun=All", ""):
        got, status = await http.post(PODS + dry_run, raw=doc, content_type="application/yaml")
        assert (got, status["message"]) == (code, message)
    code, lst = await http.get(PODS)
    assert lst["items"] == []


def copy_doubling(times: int) -> list:
    return [{"op": "copy", "from": "/spec", "path": f"/spec/copy{i}"} for i in range(times)]


def deeper_and_deeper(times: int) -> list:
    ops, path = [], "/spec/affinity"
    for _ in range(times):
        ops.append({"op": "add", "path": path, "value": nested(30)})
        path += "/a" * 29
    return ops


@pytest.mark.parametrize("ops,code,message", [
    (copy_doubling(16), 422, "Unable to complete the copy, the accumulated size increase of copy is"),
    (deeper_and_deeper(4), 422, f"the patched object would nest deeper than {MAX_DEPTH} levels"),
    ([{"op": "test", "path": "/kind", "value": "Pod"}] * 10_001, 413,
     "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"),
], ids=["copy-doubling", "adds-ever-deeper", "too-many-operations"])
async def test_json_patches_are_bounded(http, ops, code, message):
    assert (await http.post(PODS, pod()))[0] == 201
    _, before = await http.get(f"{PODS}/p")
    got, status = await http.patch(f"{PODS}/p?dryRun=All", ops, "application/json-patch+json")
    assert got == code and message in status["message"], status
    assert (await http.get(f"{PODS}/p"))[1] == before


# --- slow and abandoned bodies ---------------------------------------------------------------

class Server:
    """An API server run as `python -m services.apiserver` runs it (aiohttp does not cancel
    a handler whose client left), with `overrides` of its settings."""

    def __init__(self, etcd, **overrides) -> None:
        self.settings = api_settings(etcd, **overrides)
        self.url = f"https://127.0.0.1:{self.settings.port}"
        self.config = SessionPki.get().config(self.url)  # the admin
        self.runner: web.AppRunner | None = None

    def session(self) -> aiohttp.ClientSession:
        return tls_session(self.url, self.config)

    async def __aenter__(self) -> Server:
        self.runner = web.AppRunner(create_app(self.settings), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.port,
                          ssl_context=server_ssl_context(self.settings)).start()
        async with self.session() as s:
            for _ in range(300):
                async with s.get("/readyz") as r:
                    if r.status == 200:
                        return self
                await asyncio.sleep(0.02)
        raise TimeoutError("apiserver not ready")

    async def __aexit__(self, *exc) -> None:
        assert self.runner is not None
        await asyncio.wait_for(self.runner.cleanup(), 10)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw connection, TLS as the admin."""
        return await asyncio.open_connection("127.0.0.1", self.settings.port,
                                             ssl=self.config.ssl_context(), server_hostname="127.0.0.1")


def post_head(length: int, path: str = PODS) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


async def test_a_body_that_trickles_in_is_answered_408_and_its_connection_closed(etcd):
    async with Server(etcd, body_timeout=0.5) as server:
        reader, writer = await server.connect()
        writer.write(post_head(1000) + b'{"a":')
        started = asyncio.get_running_loop().time()

        async def trickle() -> None:  # a byte every 0.1 s: never idle, never done
            with contextlib.suppress(ConnectionError):
                for _ in range(50):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.1)

        trickling = asyncio.create_task(trickle())
        answer = await asyncio.wait_for(reader.read(), 5)  # to the end: the server closes
        trickling.cancel()
        writer.close()
        assert asyncio.get_running_loop().time() - started < 2
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        status = json.loads(body)
        assert (status["reason"], status["code"]) == ("Timeout", 408)
        assert status["message"].startswith("Timeout: request did not complete within the "
                                            "allotted timeout")


async def test_an_abandoned_upload_leaves_no_traceback_in_the_log(etcd, caplog):
    caplog.set_level(logging.INFO)
    async with Server(etcd) as server:
        for chunked in (False, True):
            reader, writer = await server.connect()
            if chunked:
                writer.write(b"POST " + PODS.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n")
            else:
                writer.write(post_head(1000) + b'{"a":')
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()
            await asyncio.sleep(0.3)
        async with server.session() as s, s.get(PODS) as r:
            assert r.status == 200  # and the server serves on
    # (grpc's poller, under etcd clients other tests closed, may log on asyncio meanwhile)
    assert [r for r in caplog.records if r.exc_info and "PollerCompletionQueue" not in r.getMessage()] == []
    early = [r for r in caplog.records if "ended early" in r.getMessage()]
    assert len(early) == 2, [r.getMessage() for r in caplog.records]


# --- one client's share of the server -----------------------------------------------------

async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def test_a_client_over_its_in_flight_limits_gets_429_with_retry_after(etcd):
    async with Server(etcd, max_requests_inflight=3, max_mutating_requests_inflight=1,
                      max_watches_per_client=2) as server:
        held = []
        for _ in range(2):  # two watches: the client's share of long-running requests
            reader, writer = await server.connect()
            writer.write(f"GET {PODS}?watch=true HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert (await read_head(reader)).startswith(b"HTTP/1.1 200 ")
            held.append(writer)
        reader, writer = await server.connect()  # a body still on its way holds a mutating slot
        writer.write(post_head(1000))
        await writer.drain()
        held.append(writer)
        await asyncio.sleep(0.2)
        async with server.session() as s:
            for method, url, body in [("GET", f"{PODS}?watch=true", None), ("POST", PODS, pod())]:
                async with s.request(method, url, json=body) as r:
                    assert r.status == 429, await r.text()
                    assert r.headers["Retry-After"] == "1"
                    status = await r.json()
                    assert (status["kind"], status["reason"], status["message"]) == (
                        "Status", "TooManyRequests", "Too many requests, please try again later.")
                    assert status["details"]["retryAfterSeconds"] == 1
            async with s.get(PODS) as r:  # reads have their own share, watches are apart
                assert r.status == 200
            for w in held:
                w.close()
            await asyncio.sleep(0.3)
            async with s.post(PODS, json=pod()) as r:  # slots come back with their requests
                assert r.status == 201, await r.text()
            async with s.get(f"{PODS}?watch=true&timeoutSeconds=1") as r:
                assert r.status == 200
