"""networking.k8s.io/v1 NetworkPolicy: kube's defaults (policyTypes, port protocol), its
ValidateNetworkPolicySpec messages and paths, kubectl's NAME POD-SELECTOR AGE."""
from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from kubecore.api import resources as R
from kubecore.api.defaults import default_networkpolicy
from kubecore.api.validation.networking import parse_cidr_sloppy, validate_networkpolicy
from kubecore.printers.tables import render_text


@pytest.mark.parametrize("spec,types", [
    ({}, ["Ingress"]),
    ({"ingress": [{}]}, ["Ingress"]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}, ["Ingress", "Egress"]),
    ({"egress": [], "policyTypes": []}, ["Ingress"]),
    ({"policyTypes": ["Egress"]}, ["Egress"]),
], ids=["empty", "ingress-only", "egress-rules", "empty-egress", "given"])
def test_policy_types_default_as_kube(spec, types):
    obj = {"spec": copy.deepcopy(spec)}
    default_networkpolicy(obj)
    assert obj["spec"]["policyTypes"] == types
    assert obj["spec"]["podSelector"] == {}


def test_ports_default_to_tcp():
    obj = {"spec": {"podSelector": {"matchLabels": {"app": "db"}},
                    "ingress": [{"ports": [{"port": 5432}, {"port": 53, "protocol": "UDP"}]}]}}
    default_networkpolicy(obj)
    assert obj["spec"]["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"},
                                                  {"port": 53, "protocol": "UDP"}]


def _ingress(**rule):
    return {"podSelector": {}, "ingress": [rule]}


CASES = [
    ("ok", {"podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}},
                                   "podSelector": {"matchLabels": {"role": "api"}}},
                                  {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                         "ports": [{"protocol": "TCP", "port": 5432}, {"port": 30000, "endPort": 32767}]}],
            "policyTypes": ["Ingress"]}, []),
    ("bad-protocol", _ingress(ports=[{"protocol": "ICMP", "port": 1}]),
     [("spec.ingress[0].ports[0].protocol", 'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"')]),
    ("port-zero", _ingress(ports=[{"port": 0}]),
     [("spec.ingress[0].ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")]),
    ("end-below-port", _ingress(ports=[{"port": 80, "endPort": 79}]),
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 79: must be greater than or equal to `port`")]),
    ("end-with-named-port", _ingress(ports=[{"port": "http", "endPort": 90}]),
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 90: may not be specified when `port` is non-numeric")]),
    ("end-without-port", _ingress(ports=[{"endPort": 90}]),
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 90: may not be specified when `port` is not specified")]),
    ("bad-port-name", _ingress(ports=[{"port": "Http_1"}]),
     [("spec.ingress[0].ports[0].port",
       'Invalid value: "Http_1": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)')]),
    ("empty-peer", _ingress(**{"from": [{}]}),
     [("spec.ingress[0].from[0]", "Required value: must specify a peer")]),
    ("ipblock-and-selector", _ingress(**{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}),
     [("spec.ingress[0].from[0]", "Forbidden: may not specify both ipBlock and another peer")]),
    ("bad-cidr", {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]},
     [("spec.egress[0].to[0].ipBlock.cidr",
       'Invalid value: "10.0.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)')]),
    ("except-not-inside",
     _ingress(**{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "10.0.0.0/16"]}}]}),
     [("spec.ingress[0].from[0].ipBlock.except[0]",
       'Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`'),
      ("spec.ingress[0].from[0].ipBlock.except[1]",
       'Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`')]),
    ("selector-in-without-values", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     [("spec.podSelector.matchExpressions[0].values",
       "Required value: must be specified when `operator` is 'In' or 'NotIn'")]),
    ("selector-exists-with-values", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists",
                                                                           "values": ["x"]}]}},
     [("spec.podSelector.matchExpressions[0].values",
       "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]),
    ("unknown-policy-type", {"podSelector": {}, "policyTypes": ["Ingress", "Both"]},
     [("spec.policyTypes[1]", 'Unsupported value: "Both": supported values: "Ingress", "Egress"')]),
    ("three-policy-types", {"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]},
     [("spec.policyTypes", 'Invalid value: []networking.PolicyType{"Ingress", "Egress", "Ingress"}: '
       "may not specify more than two policyTypes")]),
]


@pytest.mark.parametrize("spec,wanted", [(s, w) for _, s, w in CASES], ids=[i for i, _, _ in CASES])
def test_validation(spec, wanted):
    assert [(c.field, c.message) for c in validate_networkpolicy({"spec": spec}, None)] == wanted


def test_an_update_may_keep_a_cidr_that_no_longer_validates():
    old = {"spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]}}
    new = copy.deepcopy(old)
    new["spec"]["ingress"][0]["ports"] = [{"port": 80}]
    assert validate_networkpolicy(new, old) == []
    assert validate_networkpolicy(new, None) != []


@pytest.mark.parametrize("text,network", [
    ("10.0.0.0/8", "10.0.0.0/8"), ("10.1.2.3/8", "10.0.0.0/8"), ("010.001.0.0/16", "10.1.0.0/16"),
    ("fd00::1/64", "fd00::/64"), ("10.0.0.0", None), ("10.0.0.0/33", None), ("x/8", None),
], ids=["plain", "host-bits", "leading-zeros", "ipv6", "no-length", "too-long", "garbage"])
def test_cidrs_parse_as_parse_cidr_sloppy(text, network):
    got = parse_cidr_sloppy(text)
    assert (str(got) if got else None) == network


def test_served_and_printed():
    assert R.lookup("netpol") is R.NETWORKPOLICIES and R.NETWORKPOLICIES.api_version == "networking.k8s.io/v1"
    now = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    objs = [{"metadata": {"name": "db", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"podSelector": {"matchLabels": {"app": "db"}}}},
            {"metadata": {"name": "deny-all", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"podSelector": {}}}]
    assert render_text("NetworkPolicy", objs, now=now).splitlines() == [
        "NAME       POD-SELECTOR   AGE",
        "db         app=db         60m",
        "deny-all   <none>         60m",
    ]
