"""PolicyRule coverage (kube's policy_comparator): which grants a holder of some rules may
make, and kube's text for the rules it lacks."""
from __future__ import annotations

import pytest

from services.apiserver.authz.rules import compact, compact_string, compile_rules, missing_rules
from tests.apiserver.authz.policy import rule

COVERS = [
    ("same rule", [rule(["get"], resources=["pods"])], rule(["get"], resources=["pods"]), True),
    ("more verbs held", [rule(["get", "list"], resources=["pods"])], rule(["get"], resources=["pods"]), True),
    ("a verb missing", [rule(["get"], resources=["pods"])], rule(["get", "delete"], resources=["pods"]), False),
    ("split over two rules", [rule(["get"], resources=["pods"]), rule(["list"], resources=["pods"])],
     rule(["get", "list"], resources=["pods"]), True),
    ("* verbs", [rule(["*"], resources=["pods"])], rule(["escalate"], resources=["pods"]), True),
    ("* groups", [rule(["get"], ["*"], ["pods"])], rule(["get"], ["apps", ""], ["pods"]), True),
    ("* resources", [rule(["get"], resources=["*"])], rule(["get"], resources=["pods/log"]), True),
    ("another group", [rule(["get"], ["apps"], ["pods"])], rule(["get"], resources=["pods"]), False),
    ("*/sub covers every resource's sub", [rule(["get"], ["apps"], ["*/scale"])],
     rule(["get"], ["apps"], ["deployments/scale"]), True),
    ("*/sub not the resource", [rule(["get"], ["apps"], ["*/scale"])], rule(["get"], ["apps"], ["deployments"]), False),
    ("the resource does not cover its subresources", [rule(["get"], resources=["pods"])],
     rule(["get"], resources=["pods/log"]), False),
    ("names held cover those names", [rule(["get"], resources=["cm"], names=["a", "b"])],
     rule(["get"], resources=["cm"], names=["a"]), True),
    ("names held do not cover all names", [rule(["get"], resources=["cm"], names=["a"])],
     rule(["get"], resources=["cm"]), False),
    ("no names held covers any name", [rule(["get"], resources=["cm"])],
     rule(["get"], resources=["cm"], names=["z"]), True),
    ("url prefix", [rule(["get"], urls=["/logs/*"])], rule(["get"], urls=["/logs/a", "/logs/"]), True),
    ("url * covers all", [rule(["get"], urls=["*"])], rule(["get"], urls=["/healthz"]), True),
    ("url not held", [rule(["get"], urls=["/logs"])], rule(["get"], urls=["/logs/a"]), False),
    ("resource rules hold no url", [rule(["*"], ["*"], ["*"])], rule(["get"], urls=["/healthz"]), False),
]


@pytest.mark.parametrize("held, wanted, covered", [c[1:] for c in COVERS], ids=[c[0] for c in COVERS])
def test_covers(held, wanted, covered) -> None:
    assert (missing_rules(compile_rules(held), [wanted]) == []) is covered


def test_missing_rules_compacted_in_kube_s_words() -> None:
    missing = missing_rules(compile_rules([rule(["get"], resources=["pods"])]),
                            [rule(["get", "list", "delete"], resources=["pods", "secrets"]),
                             rule(["get"], urls=["/metrics"]),
                             rule(["get"], resources=["configmaps"], names=["x"])])
    assert sorted(compact_string(r) for r in compact(missing)) == [
        '{APIGroups:[""], Resources:["configmaps"], ResourceNames:["x"], Verbs:["get"]}',
        '{APIGroups:[""], Resources:["pods"], Verbs:["list" "delete"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "delete"]}',
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}',
    ]
