from __future__ import annotations

import pytest

from kubecore.api.selectors import SelectorError, format_selector, labels_match, parse_label_selector

LABELS = {"env": "prod", "tier": "web", "app.kubernetes.io/name": "shop"}


@pytest.mark.parametrize("selector,expected", [
    ("", True),
    ("env=prod", True),
    ("env==prod", True),
    ("env=dev", False),
    ("env!=dev", True),
    ("missing!=x", True),
    ("env in (dev, prod)", True),
    ("env notin (prod)", False),
    ("missing notin (prod)", True),
    ("tier", True),
    ("!tier", False),
    ("!missing", True),
    ("env=prod,tier in (web,api),!missing", True),
    ("app.kubernetes.io/name=shop", True),
], ids=str)
def test_label_selector_matching(selector, expected):
    assert labels_match(parse_label_selector(selector), LABELS) is expected


@pytest.mark.parametrize("selector", ["env in (", "env in ()", "=prod", "a b", "env=pr od", "!env in (a)",
                                      "bad key!=x", "a=" + "x" * 64])
def test_bad_selectors_are_rejected(selector):
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_round_trip_format():
    reqs = parse_label_selector("a=b,c!=d,e in (f,g),h notin (i),j,!k")
    assert parse_label_selector(format_selector(reqs)) == reqs
