"""Secrets encrypted in a real etcd (`--encryption-provider-config`): what etcd holds is
sealed under kube's prefix, every read path hands out the plain object, keys rotate, and a
value no configured key opens is a clear error while the server goes on serving."""
from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from tests.conftest import ApiServer, Http, api_settings

SECRETS = "/api/v1/namespaces/default/secrets"
PLAINTEXT = "correct horse battery staple"
K1, K2, K3 = bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))


def etcd_raw(endpoint: str, key: str) -> bytes:
    out = subprocess.run(["etcdctl", "--endpoints", endpoint, "get", key, "--print-value-only"],
                         check=True, capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})
    return out.stdout.rstrip(b"\n")


def etcd_put(endpoint: str, key: str, value: bytes) -> None:
    subprocess.run(["etcdctl", "--endpoints", endpoint, "put", key], input=value, check=True,
                   capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})


def write_config(path: Path, *keys: tuple[str, bytes], identity: bool = True) -> str:
    providers: list[dict] = []
    if keys:
        providers.append({"aesgcm": {"keys": [{"name": n, "secret": base64.b64encode(k).decode()}
                                              for n, k in keys]}})
    if identity:
        providers.append({"identity": {}})
    path.write_text(json.dumps({"apiVersion": "apiserver.config.k8s.io/v1",
                                "kind": "EncryptionConfiguration",
                                "resources": [{"resources": ["secrets"], "providers": providers}]}))
    return str(path)


@asynccontextmanager
async def serving(etcd, config: str | None) -> AsyncIterator[Http]:
    server = await ApiServer(api_settings(etcd, encryption_provider_config=config or "")).start()
    try:
        async with server.session() as session:
            yield Http(session)
    finally:
        await server.stop()


def secret(name: str, value: str = PLAINTEXT) -> dict:
    return {"metadata": {"name": name}, "stringData": {"password": value}}


def password(obj: dict) -> str:
    return base64.b64decode(obj["data"]["password"]).decode()


def sealed_with(raw: bytes, key_name: str) -> bool:
    encoded = base64.b64encode(PLAINTEXT.encode())
    return raw.startswith(f"k8s:enc:aesgcm:v1:{key_name}:".encode()) and \
        PLAINTEXT.encode() not in raw and encoded not in raw


async def watch_until(http: Http, path: str, done: Callable[[dict], bool]) -> list[dict]:
    events = []
    async with http.session.get(path) as r:
        async for line in r.content:
            events.append(json.loads(line))
            if done(events[-1]):
                return events
    return events


async def test_etcd_holds_sealed_secrets_and_every_read_path_plain_ones(etcd, tmp_path):
    async with serving(etcd, write_config(tmp_path / "enc.json", ("key1", K1))) as http:
        status, created = await http.post(SECRETS, secret("db"))
        assert status == 201 and password(created) == PLAINTEXT
        await http.post(SECRETS, secret("other", "x"))
        assert sealed_with(etcd_raw(etcd.endpoint, "/registry/secrets/default/db"), "key1")

        assert password((await http.get(f"{SECRETS}/db"))[1]) == PLAINTEXT
        _, listed = await http.get(SECRETS)
        assert [password(o) for o in listed["items"]] == [PLAINTEXT, "x"]
        _, page = await http.get(f"{SECRETS}?limit=1")  # paging reads etcd
        assert password(page["items"][0]) == PLAINTEXT and page["metadata"]["continue"]
        _, cached = await http.get(f"{SECRETS}?resourceVersion=0")  # the watch cache
        assert sorted(password(o) for o in cached["items"]) == [PLAINTEXT, "x"]

        rv = listed["metadata"]["resourceVersion"]
        status, _ = await http.patch(f"{SECRETS}/db", {"stringData": {"password": "new"}},
                                     "application/merge-patch+json")
        assert status == 200
        events = await watch_until(http, f"{SECRETS}?watch=true&resourceVersion={rv}",
                                   lambda e: e["type"] == "MODIFIED")
        assert password(events[-1]["object"]) == "new"
        assert (await http.delete(f"{SECRETS}/db"))[0] == 200

        # resources the configuration does not name stay plain JSON
        await http.post("/api/v1/namespaces/default/services",
                        {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
        assert etcd_raw(etcd.endpoint, "/registry/services/default/web").startswith(b"{")


async def test_rotation_reads_old_values_and_an_update_moves_them_to_the_new_key(etcd, tmp_path):
    async with serving(etcd, None) as http:  # before encryption: plain JSON in etcd
        await http.post(SECRETS, secret("from-before"))
    async with serving(etcd, write_config(tmp_path / "1.json", ("key1", K1))) as http:
        await http.post(SECRETS, secret("db"))
        assert password((await http.get(f"{SECRETS}/from-before"))[1]) == PLAINTEXT
    raw = etcd_raw(etcd.endpoint, "/registry/secrets/default/db")

    async with serving(etcd, write_config(tmp_path / "2.json", ("key2", K2), ("key1", K1))) as http:
        status, old = await http.get(f"{SECRETS}/db")
        assert status == 200 and password(old) == PLAINTEXT
        assert etcd_raw(etcd.endpoint, "/registry/secrets/default/db") == raw  # a read writes nothing
        for name in ("db", "from-before"):  # an unchanged PUT rewrites a stale value
            _, current = await http.get(f"{SECRETS}/{name}")
            status, _ = await http.put(f"{SECRETS}/{name}", current)
            assert status == 200
            assert sealed_with(etcd_raw(etcd.endpoint, f"/registry/secrets/default/{name}"), "key2")

    async with serving(etcd, write_config(tmp_path / "3.json", ("key2", K2), identity=False)) as http:
        _, listed = await http.get(SECRETS)
        assert [password(o) for o in listed["items"]] == [PLAINTEXT, PLAINTEXT]


async def test_a_value_no_key_opens_is_a_500_and_the_server_goes_on(etcd, tmp_path):
    async with serving(etcd, write_config(tmp_path / "1.json", ("key1", K1))) as http:
        await http.post(SECRETS, secret("lost"))
    async with serving(etcd, write_config(tmp_path / "3.json", ("key3", K3))) as http:
        status, body = await http.get(f"{SECRETS}/lost")
        assert status == 500 and body["reason"] == "InternalError"
        assert body["message"] == ('Internal error occurred: unable to transform key '
                                   '"/registry/secrets/default/lost": no matching key was found '
                                   'for the provided AES transformer')
        assert (await http.get(SECRETS))[0] == 500
        assert (await http.get(f"{SECRETS}?resourceVersion=0"))[1]["items"] == []  # left out
        assert (await http.post(SECRETS, secret("fresh")))[0] == 201  # the rest still works
        _, cached = await http.get(f"{SECRETS}?resourceVersion=0")
        assert [o["metadata"]["name"] for o in cached["items"]] == ["fresh"]
        assert sealed_with(etcd_raw(etcd.endpoint, "/registry/secrets/default/fresh"), "key3")
        # a forged value under the right prefix does not open either
        etcd_put(etcd.endpoint, "/registry/secrets/default/forged", b"k8s:enc:aesgcm:v1:key3:" + bytes(40))
        status, body = await http.get(f"{SECRETS}/forged")
        assert status == 500 and body["message"].endswith("cipher: message authentication failed")
        assert (await http.get("/readyz"))[0] == 200
