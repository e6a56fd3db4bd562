from __future__ import annotations

import time

import pytest

from kubecore.api.selectors import (
    SelectorError,
    format_selector,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"env": "prod", "tier": "web", "app.kubernetes.io/name": "shop", "replicas": "3"}


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
    ("env in ()", False),  # the empty value: kube reads `()` as ("")
    ("tier in (,web)", True),
    ("in in (in)", False),  # `in` is a key and a value where one is expected
    (" env = prod , tier ", True),
    ("replicas>2", True),
    ("replicas<2", False),
    ("env>2", False),  # a label that is no integer never matches Gt/Lt
], ids=str)
def test_label_selector_matching(selector, expected):
    assert labels_match(parse_label_selector(selector), LABELS) is expected


@pytest.mark.parametrize("selector", ["env in (", "=prod", "a b", "env=pr od", "!env in (a)",
                                      "bad key!=x", "a=" + "x" * 64])
def test_bad_selectors_are_rejected(selector):
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_round_trip_format():
    reqs = parse_label_selector("a=b,c!=d,e in (f,g),h notin (i),j,!k")
    assert parse_label_selector(format_selector(reqs)) == reqs


# apimachinery's labels.Parse messages (pkg/labels/selector.go), which kubectl shows as they are
@pytest.mark.parametrize("selector,message", [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("=prod", "found '=', expected: !, identifier, or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("a<b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' "
            "operators, the value must be an integer"),
    ("a" + " " * 20 + "!", "unable to parse requirement: found '!', expected: in, notin, =, ==, "
                          "!=, gt, lt"),
], ids=["blank-in-requirement", "no-key", "trailing-comma", "two-values", "not-with-value",
        "in-without-parens", "blank-in-set", "operator-in-set", "paren-as-value", "lt-not-integer",
        "blanks-then-not"])
def test_selector_errors_read_as_kube_apiserver_writes_them(selector, message):
    with pytest.raises(SelectorError) as err:
        parse_label_selector(selector)
    assert str(err.value) == message


def seconds(parse, text: str) -> float:
    """The best of three parses (so a busy machine shows the parser's own time)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        try:
            parse(text)
        except SelectorError:
            pass
        best = min(best, time.perf_counter() - started)
    return best


def grows_linearly(parse, make) -> bool:
    """Eight times the text takes about eight times as long (a quadratic parser: 64)."""
    return seconds(parse, make(16000)) < 25 * max(seconds(parse, make(2000)), 1e-4)


@pytest.mark.parametrize("make", [
    lambda n: "a" + " " * n + "!",  # a regular expression over the blanks took seconds here
    lambda n: "a=b," * (n // 4) + "!",
    lambda n: "a in (" + "," * n,
    lambda n: "!" * n,
], ids=["blanks", "requirements", "commas", "nots"])
def test_parsing_time_grows_linearly_with_the_selector(make):
    assert grows_linearly(parse_label_selector, make)

FIELDS = {"metadata.name": lambda o: o["name"], "spec.nodeName": lambda o: o.get("node")}


@pytest.mark.parametrize("selector,parsed", [
    ("metadata.name=web", [("metadata.name", "=", "web")]),
    ("metadata.name==web", [("metadata.name", "=", "web")]),
    ("spec.nodeName!=", [("spec.nodeName", "!=", "")]),
    (" metadata.name = a=b ", [("metadata.name", "=", "a=b")]),
    ("metadata.name=a,spec.nodeName!=n", [("metadata.name", "=", "a"), ("spec.nodeName", "!=", "n")]),
], ids=["equals", "double-equals", "not-equals-empty", "value-with-equals", "two"])
def test_field_selectors(selector, parsed):
    got = parse_field_selector(selector, FIELDS, "pods")
    assert [(r.field, r.op, r.value) for r in got] == parsed


@pytest.mark.parametrize("make", [
    lambda n: "metadata.name=" + " " * n + "\nx\ny",  # a regular expression took seconds here
    lambda n: "metadata.name" + " " * n + "!",
], ids=["blanks-then-lines", "blanks-no-operator"])
def test_field_selector_parsing_is_linear(make):
    assert grows_linearly(lambda text: parse_field_selector(text, FIELDS, "pods"), make)
