"""``python -m services.proxy`` against a real API server, programming a scratch namespace.

Every iptables command runs in a namespace the test's `NetnsLab` created and deletes.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cluster.procs import free_port
from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from services.apiserver.settings import server_ssl_context
from services.proxy.nftables import chain_base, endpoint_base
from services.proxy.rules import endpoint_chain_name, service_chain_name
from tests.conftest import ApiServer
from tests.proxy.live import (
    BACKEND,
    RELAY,
    STEADY_CLIENT,
    ProxyProcess,
    kube_chains,
    nft_chains,
    nft_table,
    programmed,
    run_cleanup,
    saved_rules,
    wait_for,
)
from tests.proxy.netns import NetnsLab

WEB_PORT = "default/web:http"
SVC_CHAIN = service_chain_name(WEB_PORT, "TCP")
NFT_SVC_CHAIN = "service-" + chain_base(WEB_PORT, "TCP")


def sep_chain(ip: str) -> str:
    return endpoint_chain_name(WEB_PORT, "TCP", f"{ip}:8080")


def web_service() -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def web_slice(*ips: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "node-a"}
                      for ip in ips],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def owned(chains: set[str]) -> set[str]:
    return {c for c in chains if c.startswith(("KUBE-SVC-", "KUBE-SEP-"))}


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.read().decode()


async def test_rules_follow_the_api_then_cleanup_removes_them(
    lab: NetnsLab, apiserver: ApiServer, tmp_path: Path
) -> None:
    node = lab.add_netns("node")
    interval = 0.5
    proxy = ProxyProcess(lab, node, apiserver.kubeconfig(tmp_path / "proxy.kubeconfig", "system:kube-proxy"),
                         tmp_path / "proxy.log",
                         min_sync_period=interval).start()
    try:
        await proxy.wait_ready()
        async with ApiClient(apiserver.config) as client:
            created = await client.create(R.SERVICES, web_service(), "default")
            cluster_ip = created["spec"]["clusterIP"]
            await client.create(R.ENDPOINTSLICES, web_slice("10.244.1.2", "10.244.2.2"), "default")
            both = {SVC_CHAIN, sep_chain("10.244.1.2"), sep_chain("10.244.2.2")}
            await wait_for(lambda: owned(kube_chains(lab, node)) == both, timeout=5,
                           what="service and endpoint chains")
            rules = saved_rules(lab, node)
            assert (f'-A KUBE-SERVICES -d {cluster_ip}/32 -p tcp -m comment --comment '
                    f'"{WEB_PORT} cluster IP" -m tcp --dport 80 -j {SVC_CHAIN}') in rules
            assert "-j DNAT --to-destination 10.244.2.2:8080" in rules

            # One endpoint goes: its chain is gone within the sync interval (plus slack).
            current = await client.get(R.ENDPOINTSLICES, "web-abcde", "default")
            current["endpoints"] = current["endpoints"][:1]
            await client.replace(R.ENDPOINTSLICES, current)
            await wait_for(
                lambda: owned(kube_chains(lab, node)) == {SVC_CHAIN, sep_chain("10.244.1.2")},
                timeout=interval + 1.5, what="removed endpoint's chain deleted")
            assert "10.244.2.2" not in saved_rules(lab, node)

            # The service goes: no service or endpoint chain is left.
            await client.delete(R.SERVICES, "web", "default")
            await wait_for(lambda: not owned(kube_chains(lab, node)), timeout=interval + 1.5,
                           what="service chains deleted")
            assert cluster_ip not in saved_rules(lab, node)

        metrics = await asyncio.to_thread(fetch, f"http://127.0.0.1:{proxy.health_port}/metrics")
        assert 'proxy_syncs_total{trigger="changed"}' in metrics
        assert 'informer_synced{informer="endpointslices.discovery.k8s.io"} 1.0' in metrics
        assert 'informer_synced{informer="services"} 1.0' in metrics
    finally:
        assert proxy.stop() == 0, proxy.log()

    # A stopped proxy leaves its rules: a restart must not open a window without them.
    assert {"KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-FORWARD"} <= kube_chains(lab, node)
    # Teardown removes every chain and jump, and a second run finds nothing to do.
    for _ in range(2):
        done = await asyncio.to_thread(run_cleanup, node)
        assert done.returncode == 0, done.stderr
        assert kube_chains(lab, node) == set()
        assert "KUBE-" not in saved_rules(lab, node)


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
async def test_restart_inside_the_namespace_keeps_rules_and_traffic(
    lab: NetnsLab, apiserver: ApiServer, tmp_path: Path, mode: str
) -> None:
    # The proxy runs in the node's namespace, as the cluster starts it; it reaches the
    # API server through a relay to a Unix socket of the (in-process) API server.
    assert apiserver.runner is not None
    api_socket = tmp_path / "api.sock"
    await web.UnixSite(apiserver.runner, str(api_socket),
                       ssl_context=server_ssl_context(apiserver.settings)).start()
    node = lab.add_netns("node")
    backend = lab.add_netns("be1")
    lab.link(backend, "eth0", "10.244.1.2/24", node, "eth-b1", "10.244.1.1/24")
    lab.exec(backend, ["ip", "route", "add", "default", "via", "10.244.1.1"])
    lab.spawn(backend, BACKEND, "be1")
    relay_port = free_port()
    lab.spawn(node, RELAY, str(relay_port), str(api_socket))
    api_url = f"https://127.0.0.1:{relay_port}"
    kubeconfig = apiserver.kubeconfig(tmp_path / "proxy.kubeconfig", "system:kube-proxy")

    first = ProxyProcess(lab, node, kubeconfig, tmp_path / "proxy-1.log", inside=True,
                         apiserver=api_url, mode=mode).start()
    try:
        await first.wait_ready()
        async with ApiClient(apiserver.config) as client:
            created = await client.create(R.SERVICES, web_service(), "default")
            await client.create(R.ENDPOINTSLICES, web_slice("10.244.1.2"), "default")
        cluster_ip = created["spec"]["clusterIP"]
        lab.exec(node, ["ip", "route", "add", f"{cluster_ip}/32", "dev", "eth-b1"])
        chain = SVC_CHAIN if mode == "iptables" else NFT_SVC_CHAIN
        await wait_for(lambda: chain in (kube_chains if mode == "iptables" else nft_chains)(lab, node),
                       timeout=5, what="service chain")
        before = programmed(lab, node, mode)
        traffic = lab.spawn(node, STEADY_CLIENT, cluster_ip, "80")
        await asyncio.sleep(0.5)
    finally:
        assert first.stop() == 0, first.log()
    assert programmed(lab, node, mode) == before, "SIGTERM leaves the rules in place"
    await asyncio.sleep(0.5)

    second = ProxyProcess(lab, node, kubeconfig, tmp_path / "proxy-2.log", inside=True,
                          apiserver=api_url, mode=mode).start()
    try:
        await second.wait_ready()
        await asyncio.sleep(0.5)
        assert programmed(lab, node, mode) == before, "the restarted proxy rebuilt the same rules"
    finally:
        assert second.stop() == 0, second.log()
    assert "proxy synced" in second.log()

    assert traffic.stdin is not None and traffic.stdout is not None
    traffic.stdin.write("\n")
    traffic.stdin.flush()
    summary = json.loads(await asyncio.to_thread(traffic.stdout.readline))
    assert summary["failed"] == 0, summary
    assert summary["ok"] > 20, summary


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft (Debian's nftables) is not installed")
async def test_nftables_mode_follows_the_api_then_cleanup_removes_the_table(
    lab: NetnsLab, apiserver: ApiServer, tmp_path: Path
) -> None:
    """The same story in nftables mode: chains named as kube-proxy names them, a removed
    endpoint's chain flushed at once and deleted a second later, iptables leftovers of an
    earlier iptables-mode proxy removed at start, and --cleanup deleting the table."""
    node = lab.add_netns("node")
    leftover = ProxyProcess(lab, node, apiserver.kubeconfig(tmp_path / "p.kubeconfig", "system:kube-proxy"),
                            tmp_path / "iptables.log").start()
    try:
        await leftover.wait_ready()
    finally:
        assert leftover.stop() == 0, leftover.log()
    assert "KUBE-SERVICES" in kube_chains(lab, node)

    def endpoint_chain(ip: str) -> str:
        return "endpoint-" + endpoint_base(WEB_PORT, "TCP", ip, 8080)

    proxy = ProxyProcess(lab, node, apiserver.kubeconfig(tmp_path / "proxy.kubeconfig", "system:kube-proxy"),
                         tmp_path / "proxy.log", min_sync_period=0.2, mode="nftables").start()
    try:
        await proxy.wait_ready()
        assert kube_chains(lab, node) == set(), "the iptables mode's chains are gone"
        async with ApiClient(apiserver.config) as client:
            created = await client.create(R.SERVICES, web_service(), "default")
            cluster_ip = created["spec"]["clusterIP"]
            await client.create(R.ENDPOINTSLICES, web_slice("10.244.1.2", "10.244.2.2"), "default")
            both = {NFT_SVC_CHAIN, endpoint_chain("10.244.1.2"), endpoint_chain("10.244.2.2")}
            await wait_for(lambda: both <= nft_chains(lab, node), timeout=5, what="service and endpoint chains")
            table = nft_table(lab, node)
            assert f"{cluster_ip} . tcp . 80 : goto {NFT_SVC_CHAIN}" in table, table
            shown = await asyncio.to_thread(fetch, f"http://127.0.0.1:{proxy.health_port}/debug/rules"
                                                   "?service=default/web")
            assert shown.startswith("# Service default/web, nftables mode, node node-a\n"), shown
            assert f"chain {NFT_SVC_CHAIN} {{" in shown and "dnat to 10.244.2.2:8080" in shown, shown
            assert "dnat to 10.244.2.2:8080" in table

            current = await client.get(R.ENDPOINTSLICES, "web-abcde", "default")
            current["endpoints"] = current["endpoints"][:1]
            await client.replace(R.ENDPOINTSLICES, current)
            # flushed at once; deleted by the first sync a second later (here: the next change)
            await wait_for(lambda: "dnat to 10.244.2.2" not in nft_table(lab, node), timeout=2,
                           what="removed endpoint's rules gone")
            assert endpoint_chain("10.244.2.2") in nft_chains(lab, node)
            await asyncio.sleep(1.1)

            await client.delete(R.SERVICES, "web", "default")
            await wait_for(lambda: cluster_ip not in nft_table(lab, node), timeout=2, what="service's elements gone")
            assert endpoint_chain("10.244.2.2") not in nft_chains(lab, node), "the stale chain was deleted"
            await asyncio.sleep(1.1)
            await client.create(R.SERVICES, {"metadata": {"name": "other"}, "spec": {
                "selector": {"app": "other"}, "ports": [{"port": 81}]}}, "default")
            await wait_for(lambda: not any("/web/" in c for c in nft_chains(lab, node)), timeout=2,
                           what="the deleted Service's chains deleted by the next sync")
    finally:
        assert proxy.stop() == 0, proxy.log()
    assert "chain services" in nft_table(lab, node), "a stopped proxy leaves its table"
    for _ in range(2):
        done = await asyncio.to_thread(run_cleanup, node)
        assert done.returncode == 0, done.stderr
        assert nft_table(lab, node) == ""
