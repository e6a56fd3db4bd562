"""A second whole cluster, unlike the package's: every node's proxy in nftables mode and two
copies of every controller (`cluster up --proxy-mode nftables --ha`).

It has its own name, ranges and ports, next to the package's iptables-mode cluster:
- the seed's scenario through nftables rules: DNS and a ClusterIP from a pod, spread over every
  endpoint, a NodePort from the host, a removed backend gone from the table within the sync
  interval, no endpoints left refused at once - with the rules in the `ip kube-proxy` table of
  each node and no KUBE- chain in iptables;
- leader election: one copy of each controller holds its Lease and works; kill -9 of the leader
  hands over to the standby within the lease duration, and the cluster keeps working.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from tests.e2e.harness import Cluster, deploy_serving_app, leftovers, run, wait_until

NAME = "mcnf"


@pytest.fixture(scope="module")
def nft_cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("nft-cluster"), home=tmp_path_factory.mktemp("nft-home"), name=NAME,
                ranges=("10.252.0.0/24", "10.246.0.0/16", "10.128.0.0/12"), health_base_port=22300,
                extra_up_args=("--proxy-mode", "nftables", "--ha"))
    try:
        c.up()
        yield c
    finally:
        c.cluster("down", timeout=120)
        assert leftovers(NAME) == []


def test_seed_scenario_through_nftables_rules(nft_cluster: Cluster, tmp_path) -> None:
    assert nft_cluster.status["proxyMode"] == "nftables"
    manifest, pods = deploy_serving_app(nft_cluster, tmp_path, "nft")
    names = {p["metadata"]["name"] for p in pods}

    def hostname(target: str) -> str:
        return nft_cluster.mkctl("exec", "nftclient", "--", "timeout", "3", "wget", "-qO-", target,
                                 check=False).stdout.strip()
    # by name (the cluster DNS, itself a Service behind the same table) and spread over all three
    first = wait_until(lambda: hostname("http://nftsvc.default.svc.cluster.local:8080/hostname"),
                       timeout=30, what="wget through the Service")
    assert first in names
    assert {hostname("http://nftsvc:8080/hostname") for _ in range(40)} == names

    # the packet's path, told from the nftables rules the node agents report
    traced = nft_cluster.mkctl("trace", "nftclient", "svc/nftsvc:8080", "--probe").stdout
    assert "nft ip kube-proxy services: ip daddr . meta l4proto . th dport vmap @service-ips" in traced, traced
    assert "nftables numgen rules: 1/3, 1/2, ... so each gets 1/3" in traced, traced
    assert "the probe's connection went here (conntrack)" in traced, traced

    svc = json.loads(nft_cluster.mkctl("get", "svc", "nftsvc", "-o", "json").stdout)
    cluster_ip = svc["spec"]["clusterIP"]
    for node in (f"{NAME}-node-1", f"{NAME}-node-2"):
        table = run("ip", "netns", "exec", node, "nft", "list", "table", "ip", "kube-proxy").stdout
        assert f"{cluster_ip} . tcp . 8080 : goto service-" in table, table[:2000]
        assert "default/nftsvc/tcp/" in table
        nat = run("ip", "netns", "exec", node, "iptables-save", "-t", "nat").stdout
        assert "KUBE-SERVICES" not in nat, "one mode only"

    # a NodePort from the host, through either node
    kubectl = ("kubectl", "--kubeconfig", nft_cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc"))
    run(*kubectl, "patch", "svc", "nftsvc", "-p", '{"spec": {"type": "NodePort"}}')
    svc = json.loads(nft_cluster.mkctl("get", "svc", "nftsvc", "-o", "json").stdout)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    for node_ip in ("10.252.0.2", "10.252.0.3"):
        def curl(ip: str = node_ip) -> str:
            res = run("curl", "-sS", "-m", "2", f"http://{ip}:{node_port}/hostname", check=False)
            return res.stdout.strip() if res.returncode == 0 else ""
        assert wait_until(curl, timeout=20, what=f"NodePort on {node_ip}") in names

    # a deleted backend leaves every node's table within the sync interval
    victim = pods[0]
    ip = victim["status"]["podIP"]
    run(*kubectl, "delete", "pod", victim["metadata"]["name"], "--wait=false")
    started = time.monotonic()
    wait_until(lambda: all(f"dnat to {ip}:8080" not in run("ip", "netns", "exec", node, "nft", "list", "table",
                                                            "ip", "kube-proxy").stdout
                           for node in (f"{NAME}-node-1", f"{NAME}-node-2")),
               timeout=10, interval=0.1, what="endpoint removed from both nodes' tables")
    assert time.monotonic() - started < 2.5

    # no endpoints at all: refused at once (the no-endpoint-services map's reject)
    run(*kubectl, "scale", "deployment", "nft", "--replicas=0")
    wait_until(lambda: not nft_cluster.pods("app=nft"), timeout=60, what="no server pods")

    def refused() -> bool:
        res = nft_cluster.mkctl("exec", "nftclient", "--", "timeout", "3", "wget", "-qO-",
                                f"http://{cluster_ip}:8080/", check=False)
        return "refused" in (res.stdout + res.stderr).lower()
    wait_until(refused, timeout=20, what="connection refused without endpoints")
    nft_cluster.mkctl("delete", "-f", str(manifest))


def test_a_killed_leader_hands_over_to_its_standby(nft_cluster: Cluster, tmp_path) -> None:
    kubectl = ("kubectl", "--kubeconfig", nft_cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc"))
    from bench.chaos import Target

    target = Target.from_state(nft_cluster.state)

    def leader() -> str | None:
        states = {name: target.leading(name, "endpointslice") for name in ("endpointslice", "endpointslice-2")}
        if sorted(states.values(), key=str) == [0.0, 1.0]:
            return next(name for name, state in states.items() if state == 1.0)
        return None
    first = wait_until(leader, timeout=30, what="one leading endpointslice copy and one standby")
    lease = json.loads(run(*kubectl, "get", "lease", "endpointslice", "-n", "kube-system", "-o", "json").stdout)
    assert lease["spec"]["holderIdentity"] and lease["spec"]["leaseDurationSeconds"] == 15

    status = json.loads(nft_cluster.cluster("status", "-o", "json").stdout)
    os.kill(status["components"][first]["pid"], 9)
    killed = time.monotonic()
    second = wait_until(lambda: (lambda who: who if who and who != first else None)(leader()), timeout=30,
                        interval=0.2, what="the standby leading")
    handover = time.monotonic() - killed
    assert handover < 15 + 2 + 2, f"handover took {handover:.1f}s"
    taken = json.loads(run(*kubectl, "get", "lease", "endpointslice", "-n", "kube-system", "-o", "json").stdout)
    assert taken["spec"]["holderIdentity"] != lease["spec"]["holderIdentity"]
    assert taken["spec"]["leaseTransitions"] == lease["spec"]["leaseTransitions"] + 1
    print(f"endpointslice leader {first} killed; {second} led {handover:.1f}s later")

    # the cluster still works: a new Deployment's pods (the deployments controller and the
    # scheduler, also elected) become a new Service's endpoints (the new leader's work)
    manifest, _ = deploy_serving_app(nft_cluster, tmp_path, "after")

    def ready_endpoints() -> int:
        slices = json.loads(run(*kubectl, "get", "endpointslices", "-l", "kubernetes.io/service-name=aftersvc",
                                "-o", "json").stdout)["items"]
        return sum(1 for s in slices for e in s.get("endpoints") or () if (e.get("conditions") or {}).get("ready"))
    wait_until(lambda: ready_endpoints() == 3, timeout=60, what="3 ready endpoints of the new Service")
    nft_cluster.mkctl("delete", "-f", str(manifest))


def test_the_control_plane_outlives_an_apiserver_and_an_etcd_member(nft_cluster: Cluster, tmp_path) -> None:
    """Three etcd members, an API server and a DNS server on each of two addresses: the
    kubernetes Service lists both API servers and drops one that stops renewing its lease;
    clients fail over when one dies (kubectl through the load balancer); writes go on when an
    etcd member dies."""
    import asyncio
    import signal

    from kubecore.api import resources as R
    from kubecore.api.errors import ApiError
    from kubecore.client.rest import ApiUnavailable, from_kubeconfig

    kubectl = ("kubectl", "--kubeconfig", nft_cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc"))
    comps = json.loads(nft_cluster.cluster("status", "-o", "json").stdout)["components"]
    for name in ("etcd", "etcd-2", "etcd-3", "apiserver", "apiserver-2", "apiserver-lb", "dns", "dns-2"):
        assert comps[name]["healthy"], f"{name}: {comps[name]}"
    both = ["10.252.0.1", "10.252.0.254"]

    def kubernetes_endpoints() -> list[str]:
        s = json.loads(run(*kubectl, "get", "endpointslice", "kubernetes", "-n", "default", "-o", "json").stdout)
        assert s["ports"] == [{"name": "https", "port": nft_cluster.api_port, "protocol": "TCP"}]
        return [a for e in s.get("endpoints") or () for a in e["addresses"]]
    assert wait_until(lambda: kubernetes_endpoints() == both, timeout=30, what="both API servers listed")
    dns = json.loads(run(*kubectl, "get", "endpointslice", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
    assert [a for e in dns["endpoints"] for a in e["addresses"]] == both
    for server in both:  # each DNS server answers for the Service
        answer = run("dig", f"@{server}", "-p", "53", "+short", "+time=2",
                     "kubernetes.default.svc.cluster.local").stdout
        assert answer.strip() == "10.128.0.1", (server, answer)
    # the Service's address reaches an API server from a node, through the proxy's rules
    node = f"{NAME}-node-1"
    version = run("ip", "netns", "exec", node, "curl", "-sk", "-m", "3", "https://10.128.0.1/version").stdout
    assert '"gitVersion"' in version, version

    # a paused API server stops renewing its master lease: it leaves the list, then comes back
    paused = comps["apiserver-2"]["pid"]
    os.kill(paused, signal.SIGSTOP)
    began = time.monotonic()
    try:
        wait_until(lambda: kubernetes_endpoints() == both[:1], timeout=40, interval=0.5,
                   what="the paused API server dropped from the kubernetes Service")
        left = time.monotonic() - began
    finally:
        os.kill(paused, signal.SIGCONT)
    assert left < 15 + 10 + 3, f"left after {left:.1f}s"
    wait_until(lambda: kubernetes_endpoints() == both, timeout=30, what="the resumed API server listed again")
    print(f"paused API server left the kubernetes Service after {left:.1f}s")

    # the first API server (the one on loopback) killed: the project's clients use the other
    os.kill(comps["apiserver"]["pid"], signal.SIGKILL)
    nodes = nft_cluster.mkctl("get", "nodes", "-o", "name").stdout
    assert f"node/{NAME}-node-1" in nodes
    # kubectl reads one server only: the user's kubeconfig names the load balancer in front of
    # both first, which passes the connection to the API server still alive
    user = ("kubectl", "--kubeconfig", str(nft_cluster.user_kubeconfig), "--cache-dir", str(tmp_path / "kc-user"))
    server = run(*user, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    assert server == f"https://127.0.0.2:{nft_cluster.api_port}"
    assert f"node/{NAME}-node-1" in run(*user, "get", "nodes", "-o", "name").stdout

    # an etcd member killed under a stream of writes: every create is acknowledged or refused,
    # and every acknowledged one is there afterwards
    async def writes() -> tuple[list[str], int, float]:
        acked, failed, worst_gap, last_ack = [], 0, 0.0, time.monotonic()
        async with from_kubeconfig(nft_cluster.status["kubeconfig"], timeout=10) as api:
            for i in range(150):
                if i == 30:
                    os.kill(comps["etcd-2"]["pid"], signal.SIGKILL)
                try:
                    await api.create(R.CONFIGMAPS, {"metadata": {"name": f"ha-{i}"}, "data": {"i": str(i)}},
                                     "default")
                    now = time.monotonic()
                    worst_gap, last_ack = max(worst_gap, now - last_ack), now
                    acked.append(f"ha-{i}")
                except (ApiError, ApiUnavailable):  # a refused write is allowed, a lost one is not
                    failed += 1
                    await asyncio.sleep(0.1)
            stored, _ = await api.list(R.CONFIGMAPS, "default")
        names = {c["metadata"]["name"] for c in stored}
        assert set(acked) <= names, f"acknowledged but lost: {sorted(set(acked) - names)}"
        return acked, failed, worst_gap
    acked, failed, gap = asyncio.run(writes())
    assert len(acked) >= 140, (len(acked), failed)
    print(f"etcd member killed under writes: {len(acked)} acknowledged, {failed} refused, "
          f"longest wait between acknowledgements {gap:.2f}s")
    def healthy(name: str) -> bool:
        return json.loads(nft_cluster.cluster("status", "-o", "json").stdout)["components"][name]["healthy"]
    wait_until(lambda: healthy("etcd-2") and healthy("apiserver"), timeout=30,
               what="etcd-2 and the first API server restarted by the supervisor")


def test_chaos_loses_no_write_and_converges(nft_cluster: Cluster) -> None:
    """45 s of Service/Deployment churn while a component is killed every 3 s (an etcd
    member, a controller's leader, an API server, a node agent, a proxy, a DNS server) and a
    leader is paused now and then (bench/chaos.py): nothing acknowledged is lost, nothing is
    allocated twice, a paused leader stops leading once resumed, and the cluster converges."""
    import asyncio

    from bench import chaos

    report = asyncio.run(chaos.run(chaos.Target.from_state(nft_cluster.state), seconds=45, kill_every=3,
                                   clients=6, settle=120))
    print("\n".join(report.lines()))
    assert report.acknowledged > 100, report.lines()
    assert report.lost == [] and report.duplicates == [], report.lines()
    assert {kind for _, kind, _ in report.kills} >= {"etcd", "apiserver", "nodeagent", "proxy", "dns"}
    assert report.failovers and max(report.failovers) < 15 + 2 + 3, report.lines()
    assert report.fencing and all(after is not None and after < 10 for _, after in report.fencing), report.lines()
    assert report.problems == [], report.lines()
    assert report.converged_after is not None, report.unconverged


def test_etcd_member_replaced_and_cluster_restored_from_a_snapshot(nft_cluster: Cluster, tmp_path) -> None:
    """An operator's etcd work on the running cluster: a member replaced by an empty one that
    syncs from the others, and the whole store put back to a snapshot (last in this module: it
    takes the cluster back in time)."""
    kubectl = ("kubectl", "--kubeconfig", nft_cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc"))
    run(*kubectl, "create", "configmap", "before-snapshot", "--from-literal=k=v")
    snapshot = tmp_path / "etcd.db"
    saved = nft_cluster.cluster("etcd", "snapshot", "save", str(snapshot)).stdout
    assert saved.startswith(f"Snapshot saved at {snapshot}: revision "), saved
    run(*kubectl, "create", "configmap", "after-snapshot", "--from-literal=k=v")

    # etcd-3 replaced: a new member (new ID) with every key, the cluster healthy throughout
    before = nft_cluster.cluster("etcd", "status").stdout
    replaced = nft_cluster.cluster("etcd", "member", "replace", "etcd-3").stdout
    assert "etcd member etcd-3 (etcd-3) replaced" in replaced, replaced
    after = nft_cluster.cluster("etcd", "status").stdout
    assert len(after.splitlines()) == 4 and "error" not in after, after
    assert sum(" true " in line for line in after.splitlines()) == 1, after
    third = after.splitlines()[3].split()[0]
    keys = run("etcdctl", "--endpoints", third, "get", "--prefix", "--keys-only", "/registry/configmaps/default/",
               env={"ETCDCTL_API": "3"}).stdout
    assert "/registry/configmaps/default/after-snapshot" in keys, keys
    print(f"etcd status before:\n{before}\nafter replacing etcd-3:\n{after}")

    # restored: what was written after the snapshot is gone, what was before is there, and the
    # cluster works again (nodes Ready, the API answering on both servers)
    began = time.monotonic()
    restored = nft_cluster.cluster("etcd", "snapshot", "restore", str(snapshot), timeout=300).stdout
    assert "etcd restored from" in restored and "API servers ready" in restored, restored
    took = time.monotonic() - began
    assert json.loads(run(*kubectl, "get", "configmap", "before-snapshot", "-o", "json").stdout)["data"] == {"k": "v"}
    gone = run(*kubectl, "get", "configmap", "after-snapshot", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr

    def nodes_ready() -> bool:
        nodes = json.loads(run(*kubectl, "get", "nodes", "-o", "json").stdout)["items"]
        return len(nodes) == 2 and all(any(c["type"] == "Ready" and c["status"] == "True"
                                           for c in n["status"]["conditions"]) for n in nodes)
    wait_until(nodes_ready, timeout=90, what="both nodes Ready after the restore")
    print(f"restored from the snapshot in {took:.1f}s (API servers ready)")
