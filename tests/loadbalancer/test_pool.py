"""The load-balancer controller's decisions as tables: the pool, which Services are ours,
which address each gets, the status written, and the assignments recovered on start."""
from __future__ import annotations

import pytest

from kubecore.api.types import Obj
from services.loadbalancer.pool import Decision, PoolError, decide, parse_pool, recover, status_for

POOL = parse_pool("10.250.0.200-10.250.0.202")


def lb(name: str = "web", *, ingress: list[str] | None = None, cls: str | None = None,
       asked: str | None = None, annotation: str | None = None, stype: str = "LoadBalancer") -> Obj:
    spec: Obj = {"type": stype, "ports": [{"port": 80}]}
    if cls:
        spec["loadBalancerClass"] = cls
    if asked:
        spec["loadBalancerIP"] = asked
    meta: Obj = {"name": name, "namespace": "default"}
    if annotation:
        meta["annotations"] = {"metallb.io/loadBalancerIPs": annotation}
    status = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ingress]}
              if ingress else {}}
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize("text,first,last", [
    ("10.250.0.200-10.250.0.250", "10.250.0.200", "10.250.0.250"),
    ("10.250.0.200 - 10.250.0.200", "10.250.0.200", "10.250.0.200"),
    ("10.250.0.192/29", "10.250.0.193", "10.250.0.198"),
    ("10.250.0.7/32", "10.250.0.7", "10.250.0.7"),
], ids=["range", "one-address", "cidr", "cidr-32"])
def test_parse_pool(text: str, first: str, last: str) -> None:
    pool = parse_pool(text)
    assert (str(pool.first), str(pool.last)) == (first, last)


@pytest.mark.parametrize("text", ["10.250.0.9-10.250.0.1", "10.250.0.300-10.250.0.301", "x",
                                  "10.250.0.1/24"], ids=["reversed", "bad-ip", "junk", "host-bits"])
def test_parse_pool_refuses(text: str) -> None:
    with pytest.raises(PoolError):
        parse_pool(text)


@pytest.mark.parametrize("svc,taken,cls,expected", [
    (lb(), set(), None, Decision("10.250.0.200")),
    (lb(), {"10.250.0.200"}, None, Decision("10.250.0.201")),
    (lb(ingress=["10.250.0.202"]), {"10.250.0.200"}, None, Decision("10.250.0.202")),
    (lb(ingress=["10.250.0.202"]), {"10.250.0.202"}, None, Decision("10.250.0.200")),
    (lb(ingress=["192.0.2.1"]), set(), None, Decision("10.250.0.200")),
    (lb(asked="10.250.0.201"), set(), None, Decision("10.250.0.201")),
    (lb(annotation="10.250.0.202,10.250.0.201", asked="10.250.0.201"), set(), None,
     Decision("10.250.0.202")),
    (lb(asked="10.250.0.99"), set(), None,
     Decision(None, "requested address 10.250.0.99 is not in the pool 10.250.0.200-10.250.0.202")),
    (lb(asked="10.250.0.201"), {"10.250.0.201"}, None,
     Decision(None, "requested address 10.250.0.201 is held by another Service")),
    (lb(), {"10.250.0.200", "10.250.0.201", "10.250.0.202"}, None,
     Decision(None, "no free address in the pool 10.250.0.200-10.250.0.202")),
    (lb(cls="example.com/other"), set(), None, Decision(None)),
    (lb(cls="example.com/ours"), set(), "example.com/ours", Decision("10.250.0.200")),
    (lb(), set(), "example.com/ours", Decision(None)),
    (lb(stype="NodePort"), set(), None, Decision(None)),
], ids=["first-free", "next-free", "keeps-its-own", "own-taken-moves", "foreign-ingress-replaced",
        "requested", "annotation-first", "requested-outside", "requested-taken", "pool-full",
        "other-class", "our-class", "classless-not-ours", "not-a-load-balancer"])
def test_decide(svc: Obj, taken: set[str], cls: str | None, expected: Decision) -> None:
    assert decide(svc, POOL, taken, cls) == expected


def test_status_for() -> None:
    assert status_for(lb(), "10.250.0.200") == {"loadBalancer": {"ingress": [
        {"ip": "10.250.0.200", "ipMode": "VIP"}]}}
    assert status_for(lb(ingress=["10.250.0.200"]), "10.250.0.200") is None, "already so: no write"
    assert status_for(lb(ingress=["10.250.0.200"]), None) == {"loadBalancer": {}}
    assert status_for(lb(), None) is None


def test_recover_keeps_the_first_holder_by_name() -> None:
    services = [lb("b", ingress=["10.250.0.200"]), lb("a", ingress=["10.250.0.200"]),
                lb("c", ingress=["10.250.0.201"]), lb("d", ingress=["192.0.2.1"]),
                lb("e", ingress=["10.250.0.202"], cls="example.com/other")]
    assert recover(services, POOL, None) == {"default/a": "10.250.0.200", "default/c": "10.250.0.201"}
