"""ClusterIP and NodePort allocation: one etcd transaction per create, shared by processes."""
from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess

from tests.conftest import ApiServer, api_settings

SVC = "/api/v1/namespaces/default/services"


def service(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}


def etcd_keys(endpoint: str, prefix: str) -> list[str]:
    out = subprocess.run(["etcdctl", "--endpoints", endpoint, "get", "--prefix", "--keys-only", prefix],
                         check=True, capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"})
    return [line for line in out.stdout.splitlines() if line]


async def test_next_free_ip_from_the_counter_skipping_reserved(http):
    _, a = await http.post(SVC, service("a"))
    _, b = await http.post(SVC, service("b"))
    ips = [ipaddress.IPv4Address(s["spec"]["clusterIP"]) for s in (a, b)]
    assert ips[1] == ips[0] + 1
    assert all(ip in ipaddress.IPv4Network("10.96.0.0/12") for ip in ips)
    # .1 is the kubernetes service, .10 is kept for DNS: neither is handed out
    assert str(ips[0]) not in ("10.96.0.1", "10.96.0.10")


async def test_200_concurrent_creates_across_two_apiservers_get_distinct_ips(etcd, apiserver):
    second = await ApiServer(api_settings(etcd)).start()
    try:
        async with apiserver.session() as one, second.session() as two:
            async def create(i: int):
                session = one if i % 2 else two
                async with session.post(SVC, json=service(f"svc-{i}")) as r:
                    body = await r.json()
                    assert r.status == 201, body
                    return body["spec"]["clusterIP"]

            ips = await asyncio.gather(*(create(i) for i in range(200)))
    finally:
        await second.stop()
    assert len(set(ips)) == 200
    claims = etcd_keys(etcd.endpoint, "/registry/ranges/serviceips/")
    assert len(claims) == 201  # 200 + the kubernetes service


async def test_explicit_ip_honoured_then_refused_when_taken_or_out_of_range(http):
    code, a = await http.post(SVC, service("a", clusterIP="10.96.5.5"))
    assert code == 201 and a["spec"]["clusterIP"] == "10.96.5.5"
    code, status = await http.post(SVC, service("b", clusterIP="10.96.5.5"))
    assert code == 422 and "provided IP is already allocated" in status["message"]
    code, status = await http.post(SVC, service("c", clusterIP="192.168.1.1"))
    assert code == 422 and "not in the valid range" in status["message"]
    code, dns = await http.post(SVC, service("kube-dns", clusterIP="10.96.0.10"))
    assert code == 201


async def test_delete_releases_and_failed_creates_leak_nothing(etcd, http):
    _, a = await http.post(SVC, service("a"))
    before = etcd_keys(etcd.endpoint, "/registry/ranges/serviceips/")
    # a create that fails (exists, invalid) claims nothing
    assert (await http.post(SVC, service("a")))[0] == 409
    assert (await http.post(SVC, service("Bad")))[0] == 422
    assert etcd_keys(etcd.endpoint, "/registry/ranges/serviceips/") == before
    await http.delete(f"{SVC}/a")
    after = etcd_keys(etcd.endpoint, "/registry/ranges/serviceips/")
    assert len(after) == len(before) - 1
    code, again = await http.post(SVC, service("again", clusterIP=a["spec"]["clusterIP"]))
    assert code == 201


async def test_small_range_wraps_and_reports_full(etcd):
    # a /29 has 6 usable addresses; .1 is kubernetes, offsets 1 and 10 are reserved
    server = await ApiServer(api_settings(etcd, service_cidr="10.97.0.0/29")).start()
    try:
        async with server.session() as s:
            ips = []
            for i in range(5):
                async with s.post(SVC, json=service(f"s{i}")) as r:
                    body = await r.json()
                    assert r.status == 201, body
                    ips.append(body["spec"]["clusterIP"])
            assert sorted(ips) == [f"10.97.0.{i}" for i in range(2, 7)]
            async with s.post(SVC, json=service("overflow")) as r:
                status = await r.json()
                assert r.status == 422 and "range is full" in status["message"]
            async with s.delete(f"{SVC}/s1") as r:
                assert r.status == 200
            async with s.post(SVC, json=service("reuse")) as r:
                body = await r.json()
                assert r.status == 201 and body["spec"]["clusterIP"] == ips[1]
    finally:
        await server.stop()


async def test_node_ports_allocated_released_and_checked(etcd, http):
    code, a = await http.post(SVC, service("a", type="NodePort"))
    assert code == 201
    np = a["spec"]["ports"][0]["nodePort"]
    assert 30000 <= np <= 32767
    code, status = await http.post(SVC, service("b", type="NodePort", ports=[{"port": 80, "nodePort": np}]))
    assert code == 422 and "provided port is already allocated" in status["message"]
    code, status = await http.post(SVC, service("c", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert code == 422 and "30000-32767" in status["message"]
    # switching to ClusterIP releases the port
    a["spec"]["type"] = "ClusterIP"
    del a["spec"]["ports"][0]["nodePort"]
    code, upd = await http.put(f"{SVC}/a", a)
    assert code == 200, upd
    assert "nodePort" not in upd["spec"]["ports"][0]
    assert etcd_keys(etcd.endpoint, "/registry/ranges/servicenodeports/") == []
    code, b = await http.post(SVC, service("b", type="NodePort", ports=[{"port": 80, "nodePort": np}]))
    assert code == 201
