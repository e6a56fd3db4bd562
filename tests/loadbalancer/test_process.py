"""The load-balancer controller as a process against the real API server (Node,RBAC), as
the identity the cluster gives it: addresses handed out from the pool, a requested one
honoured, another class left alone, released on a type change, recovered on restart."""
from __future__ import annotations

from pathlib import Path

from kubecore.api import resources as R
from kubecore.client.rest import ApiClient
from tests.support.controllers import ControllerProcess, until

USER = "system:serviceaccount:kube-system:service-controller"
POOL = "10.250.0.200-10.250.0.202"


def lb(name: str, **spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], **spec}}


async def ingress(client: ApiClient, name: str) -> list[dict]:
    svc = await client.get(R.SERVICES, name, "default")
    return (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []


async def test_addresses_from_the_pool(apiserver_process, tmp_path: Path) -> None:
    def start(log: str) -> ControllerProcess:
        return ControllerProcess("services.loadbalancer", apiserver_process, "--pool", POOL,
                                 log_path=tmp_path / log, user=USER).start()

    proc = start("lb.log")
    try:
        async with ApiClient(apiserver_process.config) as client:
            await proc.wait_ready()
            await client.create(R.SERVICES, lb("a"), "default")
            assert await until(lambda: ingress(client, "a")) == [{"ip": "10.250.0.200", "ipMode": "VIP"}]
            await client.create(R.SERVICES, lb("b", loadBalancerIP="10.250.0.202"), "default")
            await client.create(R.SERVICES, lb("other", loadBalancerClass="example.com/other"), "default")
            assert (await until(lambda: ingress(client, "b")))[0]["ip"] == "10.250.0.202"
            # a ClusterIP Service does not use its address any more: the next one gets it
            await client.patch(R.SERVICES, "a", {"spec": {"type": "ClusterIP"}}, "default")
            await client.create(R.SERVICES, lb("c"), "default")
            assert (await until(lambda: ingress(client, "c")))[0]["ip"] == "10.250.0.200"
            assert await ingress(client, "a") == [] and await ingress(client, "other") == []
            assert await proc.terminate() == 0
            # a restart recovers who holds what: the new Service gets the one left
            proc = start("lb2.log")
            await proc.wait_ready()
            await client.create(R.SERVICES, lb("d"), "default")
            assert (await until(lambda: ingress(client, "d")))[0]["ip"] == "10.250.0.201"
            assert (await ingress(client, "c"))[0]["ip"] == "10.250.0.200"

            async def allocated_event() -> bool:
                events, _ = await client.list(R.EVENTS, "default")
                return any(e.get("reason") == "IPAllocated" and e["involvedObject"]["name"] == "d"
                           for e in events)
            assert await until(allocated_event)
        assert await proc.terminate() == 0
    finally:
        proc.kill()


def test_a_bad_pool_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    res = subprocess.run([sys.executable, "-m", "services.loadbalancer", "--pool", "10.0.0.9-10.0.0.1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "--pool: empty range" in res.stderr
