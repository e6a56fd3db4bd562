"""Leases and NetworkPolicies through the API server over etcd: stored as kube stores them
(MicroTimes in UTC, policyTypes and port protocols defaulted), refused as kube refuses them."""
from __future__ import annotations

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
POLICIES = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"


async def test_lease_round_trip(http):
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-a"},
             "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40,
                      "renewTime": "2026-01-02T03:04:05.123456+01:00"}}
    code, created = await http.post(LEASES, lease)
    assert code == 201, created
    assert created["spec"]["renewTime"] == "2026-01-02T02:04:05.123456Z"
    code, got = await http.get(f"{LEASES}/node-a")
    assert code == 200 and got["spec"] == created["spec"]

    got["spec"]["renewTime"] = "2026-01-02T03:04:05Z"
    code, status = await http.put(f"{LEASES}/node-a", got)
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"].startswith('Lease in version "v1" cannot be handled as a Lease: parsing time')
    code, still = await http.get(f"{LEASES}/node-a")
    assert still["spec"]["renewTime"] == "2026-01-02T02:04:05.123456Z"

    code, status = await http.post(LEASES, {**lease, "metadata": {"name": "b"},
                                            "spec": {"leaseDurationSeconds": 0}})
    assert code == 422
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.leaseDurationSeconds",
                                            "message": "Invalid value: 0: must be greater than 0"}]


async def test_networkpolicy_defaults_and_validation(http):
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db"},
              "spec": {"egress": [{"ports": [{"port": 53}]}]}}
    code, created = await http.post(POLICIES, policy)
    assert code == 201, created
    assert created["spec"]["podSelector"] == {}
    assert created["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert created["spec"]["egress"][0]["ports"] == [{"port": 53, "protocol": "TCP"}]

    bad = {**policy, "metadata": {"name": "bad"},
           "spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]}}
    code, status = await http.post(POLICIES, bad)
    assert code == 422
    assert status["message"] == ('NetworkPolicy.networking.k8s.io "bad" is invalid: '
                                 'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "11.0.0.0/16": '
                                 "must be a strict subset of `cidr`")
