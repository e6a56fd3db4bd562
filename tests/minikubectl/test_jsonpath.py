"""kubectl's JSONPath (minikubectl.jsonpath): client-go's own test cases (jsonpath_test.go, with
its Go structs written as the JSON objects kubectl sees), then what kubectl 1.33 printed for a
set of templates over one object (`kubectl label --local -f DOC -o jsonpath=...`)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from minikubectl.jsonpath import JsonPathError, Template


@dataclass(frozen=True)
class ParseError:
    message: str


@dataclass(frozen=True)
class ExecError:
    message: str


def run(template: str, data, *, allow_missing: bool = True):
    try:
        parsed = Template.parse(template, allow_missing_keys=allow_missing)
    except JsonPathError as exc:
        return ParseError(str(exc))
    try:
        return parsed.render(data)
    except JsonPathError as exc:
        return ExecError(str(exc))


# --- client-go's jsonpath_test.go ------------------------------------------------------------

TYPES = {
    "bools": [True, False, True, False],
    "integers": [1, 2, 3, 4],
    "floats": [1.0, 2.2, 3.3, 4.0],
    "strings": ["one", "two", "three", "four"],
    "interfaces": [True, "one", 1, 1.1],
    "maps": [{"name": "one", "value": 1}, {"name": "two", "value": 2.02},
             {"name": "three", "value": 3.03}, {"name": "four", "value": 4.04}],
}
STORE = {
    "Name": "jsonpath",
    "Book": [{"Category": "reference", "Author": "Nigel Rees", "Title": "Sayings of the Centurey", "Price": 8.95},
             {"Category": "fiction", "Author": "Evelyn Waugh", "Title": "Sword of Honour", "Price": 12.99},
             {"Category": "fiction", "Author": "Herman Melville", "Title": "Moby Dick", "Price": 8.99}],
    "Bicycle": [{"Color": "red", "Price": 19.95, "IsNew": True}, {"Color": "green", "Price": 20.01, "IsNew": False}],
    "Labels": {"engieer": 10, "web/html": 15, "k8s-app": 20},
    "Employees": {"jason": "manager", "dan": "clerk"},
}
POINTS = json.loads("""[
    {"id": "i1", "x":4, "y":-5}, {"id": "i2", "x":-2, "y":-5, "z":1}, {"id": "i3", "x":  8, "y":  3 },
    {"id": "i4", "x": -6, "y": -1 }, {"id": "i5", "x":  0, "y":  2, "z": 1 }, {"id": "i6", "x":  1, "y":  4 }]""")
NODES = json.loads("""{
  "kind": "List",
  "items": [
    {"kind": "None", "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
     "status": {"capacity": {"cpu": "4"}, "ready": true,
                "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]}},
    {"kind": "None", "metadata": {"name": "127.0.0.2", "labels": {"kubernetes.io/hostname": "127.0.0.2"}},
     "status": {"capacity": {"cpu": "8"}, "ready": false,
                "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.2"},
                              {"type": "another", "address": "127.0.0.3"}]}}],
  "users": [{"name": "myself", "user": {}}, {"name": "e2e", "user": {"username": "admin", "password": "secret"}}]
}""")
PODS = {"items": [
    {"metadata": {"name": "pod1"}, "spec": {"containers": [
        {"name": "foo", "another": [{"name": "value1"}, {"name": "value2"}]},
        {"name": "bar", "another": [{"name": "value1"}, {"name": "value2"}]}]}},
    {"metadata": {"name": "pod2"}, "spec": {"containers": [
        {"name": "baz", "another": [{"name": "value1"}, {"name": "value2"}]}]}}]}
ANNOTATED = {"kind": "List", "items": [
    {"kind": "Pod", "metadata": {"name": "pod1", "annotations": {"color": "blue"}}},
    {"kind": "Pod", "metadata": {"name": "pod2"}},
    {"kind": "Pod", "metadata": {"name": "pod3", "annotations": {"color": "green"}}},
    {"kind": "Pod", "metadata": {"name": "pod4", "annotations": {"color": "blue"}}}]}
FAKES = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
    {"image": "radial/busyboxplus:curl", "name": f"fake{i}"} for i in range(6)]}}
FOUR_FAKES = {**FAKES, "spec": {"containers": FAKES["spec"]["containers"][:4]}}

CLIENT_GO = [
    # TestTypesInput
    ("{ .bools }", TYPES, "[true,false,true,false]"),
    ("{ .bools[0] }", TYPES, "true"),
    ("{ .bools[-1] }", TYPES, "false"),
    ("{ .bools[0:2] }", TYPES, "true false"),
    ("{ .bools[:2] }", TYPES, "true false"),
    ("{ .bools[:4:2] }", TYPES, "true true"),
    ("{ .integers }", TYPES, "[1,2,3,4]"),
    ("{ .integers[-2] }", TYPES, "3"),
    ("{ .integers[:4:2] }", TYPES, "1 3"),
    ("{ .floats }", TYPES, "[1,2.2,3.3,4]"),
    ("{ .floats[0] }", TYPES, "1"),
    ("{ .floats[-2] }", TYPES, "3.3"),
    ("{ .floats[:4:2] }", TYPES, "1 3.3"),
    ("{ .strings }", TYPES, '["one","two","three","four"]'),
    ("{ .strings[-2] }", TYPES, "three"),
    ("{ .strings[:4:2] }", TYPES, "one three"),
    ("{ .interfaces }", TYPES, '[true,"one",1,1.1]'),
    ("{ .interfaces[-2] }", TYPES, "1"),
    ("{ .interfaces[:4:2] }", TYPES, "true 1"),
    ("{ .maps }", TYPES, '[{"name":"one","value":1},{"name":"two","value":2.02},'
                         '{"name":"three","value":3.03},{"name":"four","value":4.04}]'),
    ("{ .maps[-2] }", TYPES, '{"name":"three","value":3.03}'),
    ("{ .maps[0:2] }", TYPES, '{"name":"one","value":1} {"name":"two","value":2.02}'),
    ("{ .maps[::2] }", TYPES, '{"name":"one","value":1} {"name":"three","value":3.03}'),
    ("{ .maps[1::2] }", TYPES, '{"name":"two","value":2.02} {"name":"four","value":4.04}'),
    # TestStructInput
    ("hello jsonpath", None, "hello jsonpath"),
    ("{..}", [1, 2, 3], "[1,2,3]"),
    ("{[?(@<5)]}", [2, 6, 3, 7], "2 3"),
    ('{"{"}', None, "{"),
    ("{[1,3,4]}", [0, 1, 2, 3, 4], "1 3 4"),
    ("{[0:2]}", ["Monday", "Tudesday"], "Monday Tudesday"),
    ("hello {.Name}", STORE, "hello jsonpath"),
    ("{$.Labels.web/html}", STORE, "15"),
    ("{$.Employees.jason}", STORE, "manager"),
    ("{$.Employees.dan}", STORE, "clerk"),
    ("{.Labels.k8s-app}", STORE, "20"),
    ("{.Bicycle[*].Color}", STORE, "red green"),
    ("{.Book[*].Author}", STORE, "Nigel Rees Evelyn Waugh Herman Melville"),
    ('{range .Bicycle[*]}{ "{" }{ @.* }{ "} " }{end}', STORE, "{red true 19.95} {green false 20.01} "),
    # a map, not Go's struct: Bicycle comes before Book in key order
    ("{..Price}", STORE, "19.95 20.01 8.95 12.99 8.99"),
    ("{...Price}", STORE, "19.95 20.01 8.95 12.99 8.99"),
    ("{............................................................Price}", STORE,
     ParseError("invalid multiple recursive descent")),
    ("{.Bicycle}", STORE, '[{"Color":"red","IsNew":true,"Price":19.95},{"Color":"green","IsNew":false,"Price":20.01}]'),
    ('{range .Bicycle[*]}{ @ }{ " " }{end}', STORE,
     '{"Color":"red","IsNew":true,"Price":19.95} {"Color":"green","IsNew":false,"Price":20.01} '),
    ("{.Book[-1:]}", STORE, '{"Author":"Herman Melville","Category":"fiction","Price":8.99,"Title":"Moby Dick"}'),
    ("{..Book[2]}", STORE, '{"Author":"Herman Melville","Category":"fiction","Price":8.99,"Title":"Moby Dick"}'),
    ("{.Bicycle[?(@.IsNew==true)]}", STORE, '{"Color":"red","IsNew":true,"Price":19.95}'),
    ("{.hello}", STORE, ""),
    # TestJSONInput
    ("{[?(@.z)].id}", POINTS, "i2 i5"),
    ("{[0]['id']}", POINTS, "i1"),
    # TestKubernetes
    ("{range .items[*]}{.metadata.name}, {end}{.kind}", NODES, "127.0.0.1, 127.0.0.2, List"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{end}', NODES, "127.0.0.1\t127.0.0.2\t"),
    ("{.items[*].status.addresses[*].address}", NODES, "127.0.0.1 127.0.0.2 127.0.0.3"),
    ("{range .items[*]}{range .status.addresses[*]}{.address}, {end}{end}", NODES,
     "127.0.0.1, 127.0.0.2, 127.0.0.3, "),
    ("{.items[*].metadata.name}", NODES, "127.0.0.1 127.0.0.2"),
    ("{.items[*]['metadata.name', 'status.capacity']}", NODES, '127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}'),
    ("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}", NODES,
     '[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] '),
    ('{.users[?(@.name=="e2e")].user.password}', NODES, "secret"),
    ("{.items[0].metadata.labels.kubernetes\\.io/hostname}", NODES, "127.0.0.1"),
    ('{.items[?(@.metadata.labels.kubernetes\\.io/hostname=="127.0.0.1")].kind}', NODES, "None"),
    ("{.items[?(@..ready==true)].metadata.name}", NODES, "127.0.0.1"),
    ("{..name}", NODES, "127.0.0.1 127.0.0.2 myself e2e"),
    # TestEmptyRange
    ("{range .items[*]}{.metadata.name}{end}", {"items": []}, ""),
    ('{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}',
     {"items": []}, ""),
    # TestNestedRanges
    ('{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}', PODS,
     "pod1:foo,bar,+pod2:baz,+"),
    ('{range .items[*]}{.metadata.name}{"~"}{range @.spec.containers[*]}{.name}{":"}'
     '{range @.another[*]}{.name}{","}{end}{"+"}{end}{"#"}{end}', PODS,
     "pod1~foo:value1,value2,+bar:value1,value2,+#pod2~baz:value1,value2,+#"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{range @.spec.containers[*]}{.name}{" "}{end}{"\\t"}'
     '{range @.spec.containers[*]}{.name}{" "}{end}{"\\n"}{end}', PODS,
     "pod1\tfoo bar \tfoo bar \npod2\tbaz \tbaz \n"),
    # TestFilterPartialMatchesSometimesMissingAnnotations
    ('{.items[?(@.metadata.annotations.color=="blue")].metadata.name}', ANNOTATED, "pod1 pod4"),
    # TestNegativeIndex
    ("{.spec.containers[0].name}", FOUR_FAKES, "fake0"),
    ("{.spec.containers[0:0].name}", FOUR_FAKES, ""),
    ("{.spec.containers[0:-1].name}", FOUR_FAKES, "fake0 fake1 fake2"),
    ("{.spec.containers[-1:0].name}", FOUR_FAKES, ExecError("starting index 3 is greater than ending index 0")),
    ("{.spec.containers[-1].name}", FOUR_FAKES, "fake3"),
    ("{.spec.containers[-1:].name}", FOUR_FAKES, "fake3"),
    ("{.spec.containers[-2].name}", FOUR_FAKES, "fake2"),
    ("{.spec.containers[-2:].name}", FOUR_FAKES, "fake2 fake3"),
    ("{.spec.containers[-3].name}", FOUR_FAKES, "fake1"),
    ("{.spec.containers[-4].name}", FOUR_FAKES, "fake0"),
    ("{.spec.containers[-4:].name}", FOUR_FAKES, "fake0 fake1 fake2 fake3"),
    ("{.spec.containers[-5].name}", FOUR_FAKES, ExecError("array index out of bounds: index -1, length 4")),
    ("{.spec.containers[5:5].name}", FOUR_FAKES, ""),
    ("{.spec.containers[-5:-5].name}", FOUR_FAKES, ""),
    ("{.spec.containers[3:1].name}", FOUR_FAKES, ExecError("starting index 3 is greater than ending index 1")),
    ("{.spec.containers[-1:-2].name}", FOUR_FAKES, ExecError("starting index 3 is greater than ending index 2")),
    # TestStep
    ("{.spec.containers[0:].name}", FAKES, "fake0 fake1 fake2 fake3 fake4 fake5"),
    ("{.spec.containers[0:6:].name}", FAKES, "fake0 fake1 fake2 fake3 fake4 fake5"),
    ("{.spec.containers[0:6:1].name}", FAKES, "fake0 fake1 fake2 fake3 fake4 fake5"),
    ("{.spec.containers[0:6:0].name}", FAKES, ExecError("step must be > 0")),
    ("{.spec.containers[0:6:-1].name}", FAKES, ExecError("step must be > 0")),
    ("{.spec.containers[1:4:2].name}", FAKES, "fake1 fake3"),
    ("{.spec.containers[1:4:3].name}", FAKES, "fake1"),
    ("{.spec.containers[1:4:4].name}", FAKES, "fake1"),
    ("{.spec.containers[0:6:2].name}", FAKES, "fake0 fake2 fake4"),
    ("{.spec.containers[0:6:3].name}", FAKES, "fake0 fake3"),
    ("{.spec.containers[0:6:5].name}", FAKES, "fake0 fake5"),
    ("{.spec.containers[0:6:6].name}", FAKES, "fake0"),
    # failStoreTests
    ("{hello}", STORE, ExecError("unrecognized identifier hello")),
    ("{.Labels[0]}", STORE, ExecError("map[string]interface {} is not array or slice")),
    ("{.Book[?(@.Price<>10)]}", STORE, ExecError("unrecognized filter operator <>")),
    ("{range .Labels.*}{@}{end}{end}", STORE, ExecError("not in range, nothing to end")),
]


def _order_free(text: str) -> list[str]:
    return sorted(text.split())


@pytest.mark.parametrize("template, data, expected", CLIENT_GO, ids=[c[0][:60] for c in CLIENT_GO])
def test_client_go_cases(template, data, expected):
    got = run(template, data)
    if template == "{..name}":  # over maps: Go's order is random, client-go compares sorted words
        assert _order_free(got) == _order_free(expected)
    else:
        assert got == expected


@pytest.mark.parametrize("template, data, message", [
    ("{.hello}", STORE, "hello is not found"),
    ('{.items[?(@.metadata.annotations.color=="blue")].metadata.name}', ANNOTATED, "annotations is not found"),
    ("{range .items[*]}{.name}{end}", {"items": []}, "name is not found"),
])
def test_missing_keys_are_errors_when_not_allowed(template, data, message):
    assert run(template, data, allow_missing=False) == ExecError(message)
    assert run(template, data) in ("", "pod1 pod4")


# --- what kubectl 1.33 printed for DOC ------------------------------------------------------

DOC = json.loads("""{"apiVersion":"example.com/v1","kind":"Foo","metadata":{"name":"x","labels":{"zz":"1"}},
 "nums":{"i":3,"f":2.5,"big":12345678.5,"tiny":0.0000001,"neg":-4,"one":1.0,"e16":1e16},
 "list":[1,null,"a",true,{"k":"v"},[1,2]],
 "empty":[], "emptymap":{}, "s":"h\u00e9llo<&>", "n":null, "t":true,
 "things":[{"name":"a","v":1,"w":"x"},{"name":"b","v":2},{"name":"c","v":3,"w":"y"}]}""")

KUBECTL = [
    ('{.nums.i} {.nums.f} {.nums.big} {.nums.tiny} {.nums.neg} {.nums.one} {.nums.e16}', '3 2.5 1.23456785e+07 1e-07 -4 1 1e+16'),
    ('{.nums}', '{"big":12345678.5,"e16":10000000000000000,"f":2.5,"i":3,"neg":-4,"one":1,"tiny":1e-7}'),
    ('{.list}', '[1,null,"a",true,{"k":"v"},[1,2]]'),
    ('{.list[*]}', '1 null a true {"k":"v"} [1,2]'),
    ('{.list[1]}', 'null'),
    ('{.n}', 'null'),
    ('{.t}', 'true'),
    ('{.s}', 'héllo<&>'),
    ('{.empty}', '[]'),
    ('{.emptymap}', '{}'),
    ('{.}', ''),
    ('{}', '{"apiVersion":"example.com/v1","empty":[],"emptymap":{},"kind":"Foo","list":[1,null,"a",true,{"k":"v"},[1,2]],"metadata":{"labels":{"zz":"1"},"name":"x"},"n":null,"nums":{"big":12345678.5,"e16":10000000000000000,"f":2.5,"i":3,"neg":-4,"one":1,"tiny":1e-7},"s":"héllo\\u003c\\u0026\\u003e","t":true,"things":[{"name":"a","v":1,"w":"x"},{"name":"b","v":2},{"name":"c","v":3,"w":"y"}]}'),
    ('{@}', '{"apiVersion":"example.com/v1","empty":[],"emptymap":{},"kind":"Foo","list":[1,null,"a",true,{"k":"v"},[1,2]],"metadata":{"labels":{"zz":"1"},"name":"x"},"n":null,"nums":{"big":12345678.5,"e16":10000000000000000,"f":2.5,"i":3,"neg":-4,"one":1,"tiny":1e-7},"s":"héllo\\u003c\\u0026\\u003e","t":true,"things":[{"name":"a","v":1,"w":"x"},{"name":"b","v":2},{"name":"c","v":3,"w":"y"}]}'),
    ('{$}', '{"apiVersion":"example.com/v1","empty":[],"emptymap":{},"kind":"Foo","list":[1,null,"a",true,{"k":"v"},[1,2]],"metadata":{"labels":{"zz":"1"},"name":"x"},"n":null,"nums":{"big":12345678.5,"e16":10000000000000000,"f":2.5,"i":3,"neg":-4,"one":1,"tiny":1e-7},"s":"héllo\\u003c\\u0026\\u003e","t":true,"things":[{"name":"a","v":1,"w":"x"},{"name":"b","v":2},{"name":"c","v":3,"w":"y"}]}'),
    ('{$.metadata.name}', 'x'),
    ('{.metadata.name.*}', '120'),
    ('{.s[0]}', ExecError('string is not array or slice')),
    ('{range .empty[*]}x{end}after', 'after'),
    ('{range .things[*]}{.name}{end}after', 'abcafter'),
    ('{range .things[*]}[{.name}]{end}{end}', ExecError('not in range, nothing to end')),
    ('{.things[?(@.v>1)].name}', 'b c'),
    ('{.things[?(@.v==2)].name}', 'b'),
    ('{.things[?(@.w)].name}', 'a c'),
    ('{.things[?(@.w=="y")].name}', 'c'),
    ('{.things[?(@.v<"a")].name}', ExecError('incompatible types for comparison')),
    ('{.things[?(@.v>1.5)].name}', ExecError('incompatible types for comparison')),
    ('{.things[?(@.v=1)].name}', ExecError('unrecognized filter operator =')),
    ('{.things[?(@.v<>1)].name}', ExecError('unrecognized filter operator <>')),
    ('{.things[?(@.name!="a")].name}', 'b c'),
    ('{.things[?(@.v>=2)].name}', 'b c'),
    ('{.things[?(@.v<=2)].name}', 'a b'),
    ('{.things[?(@.zz==1)].name}', ''),
    ('{.things[-1].name}', 'c'),
    ('{.things[-4].name}', ExecError('array index out of bounds: index -1, length 3')),
    ('{.things[3].name}', ExecError('array index out of bounds: index 3, length 3')),
    ('{.things[1:].name}', 'b c'),
    ('{.things[::2].name}', 'a c'),
    ('{.things[0:3:0].name}', ExecError('step must be > 0')),
    ('{.things[2:1].name}', ExecError('starting index 2 is greater than ending index 1')),
    ('{.things[0,2].name}', 'a c'),
    ("{.things['name']}", ''),
    ("{.things[*]['name','v']}", 'a b c 1 2 3'),
    ('{..v}', '1 2 3'),
    ('{..name}', 'x a b c'),
    ('{....v}', ParseError('invalid multiple recursive descent')),
    ('{.things[}', ParseError('unterminated array')),
    ('{.things', ParseError('unclosed action')),
    ('{.things[?(@.v>1]}', ParseError('unterminated filter')),
    ('{"a\\tb\\n"}', 'a\tb\n'),
    ("{'x\\'y'}", "x'y"),
    ('{"\\q"}', ParseError('unquote string "\\q" error invalid syntax')),
    ('{"unterminated}', ParseError('unterminated quoted string')),
    ('{hello}', ExecError('unrecognized identifier hello')),
    ('{range}', ''),
    ('{end}', ExecError('not in range, nothing to end')),
    ('{.things[*].name}{end}', ExecError('not in range, nothing to end')),
    ('{5}', '5'),
    ('{1.5}', '1.5'),
    ('{-}', ParseError('cannot parse number -')),
    ('{true}', 'true'),
    ('{5[0]}', ExecError('int is not array or slice')),
    ('{.nums.i[0]}', ExecError('int64 is not array or slice')),
    ('{.list[4].k}', 'v'),
    ('{{.a}}', ParseError("unrecognized character in action: U+007B '{'")),
    ('{.a\\.b}', ''),
    ('{ .metadata.name }', 'x'),
    ('text only', 'text only'),
    ('{.things[x]}', ParseError('invalid array index x')),
    ('{.things[1:2:3:4]}', ParseError('invalid array index 1:2:3:4')),
    ('{.things[*].nope}', ''),
    ('{.nope.deeper}', ''),
    ('{.things[?(@.nope==1)].name}', ''),
    ('{.list[?(@==1)]}', ExecError('invalid type for comparison')),
    ('{.list[?(@)]}', '1 null a true {"k":"v"} [1,2]'),
    ('{.things[?(@.v)].name}', 'a b c'),
    ('{.things[?(@.name)]}', '{"name":"a","v":1,"w":"x"} {"name":"b","v":2} {"name":"c","v":3,"w":"y"}'),
    ('{.n[0]}', ''),
    ('{.n.x}', ''),
    ('{.n[?(@.x)]}', ExecError('<nil> is not array or slice and cannot be filtered')),
    ('{.nums[?(@.x)]}', ExecError('map[big:1.23456785e+07 e16:1e+16 f:2.5 i:3 neg:-4 one:1 tiny:1e-07] is not array or slice and cannot be filtered')),
    ('{.things[?(@..v==1)].name}', 'a'),
    ('{.things[*].v[?(@>1)]}', ExecError('1 is not array or slice and cannot be filtered')),
    ('{.emptymap.*}', ''),
    ('{.things[0].*}', 'a 1 x'),
    ('{.metadata..name}', 'x'),
    ('{..metadata.labels}', '{"zz":"1"}'),
    ("{.things[?(@.v>=2)]['name']}", 'b c'),
    ("{.things[?(@.name=='b')].v}", '2'),
    ('{.t[?(@)]}', ExecError('true is not array or slice and cannot be filtered')),
    ('{range .things[*]}{range .w}{@}{end}{end}', 'xy'),
    ('{range .things[*]}{.name}:{range .things[*]}{.v}{end};{end}|', 'a:;b:;c:;|'),
    ('{.things[0:0].name}x', 'x'),
    ('{.things[5:5].name}x', 'x'),
    ('{.things[-5:-5].name}x', 'x'),
    ('{.things[-1:0].name}', ExecError('starting index 2 is greater than ending index 0')),
    ('{.things[0:-1].name}', 'a b'),
    ('a{"}"}b', 'a}b'),
    ('{"{"}', '{'),
    ('x{.metadata.name}y{.kind}z', 'xxyFooz'),
    ('{.list[5]}', '[1,2]'),
    ('{.list[-7]}', ExecError('array index out of bounds: index -1, length 6')),
    ('{.list[0:7]}', ExecError('array index out of bounds: index 6, length 6')),
]

KUBECTL += [
    # ranges: nested, empty, without an {end}, text after them
    ("{range .things[*]}{.name}", "abc"),
    ("{range .things[*]}{.name}{range .things[*]}{end}", "abc"),
    ("{range .things[*]}{.name}{end}{range .things[*]}{.v}{end}|", "abc123|"),
    ("{range .things[*]}{.name}{end}{range .things[*]}{.v}{.kind}", "abc123Foo"),
    ("{range .things[*]}{.name}{end}{.kind}", "abcFoo"),
    ("{range .empty[*]}x", "x"),
    ("{range .things[*]}{range .things[*]}{end}{.name}{end}{.kind}", "abcFoo"),
    ("{range .things[0]}{.name}{end}|{range .things[*].zzz}{.name}{end}|", "a||"),
    ("{.things[*].name}{range .things[*]}{end}{.kind}", "a b cFoo"),
    ('{range .things[*]}{.name}{"\\n"}{end}', "a\nb\nc\n"),
]


@pytest.mark.parametrize("template, expected", KUBECTL, ids=[c[0][:60] for c in KUBECTL])
def test_as_kubectl_printed(template, expected):
    assert run(template, DOC) == expected


def test_recursive_descent_visits_every_container_and_string():
    got = run("{..}", DOC).split(" ")
    assert got[0].startswith('{"apiVersion":"example.com/v1","empty":[]')
    assert {"x", "Foo", "example.com/v1", "héllo<&>", '{"zz":"1"}', "[1,2]"} <= set(got)
    assert "3" not in got  # numbers have no children: `..` does not list them


@pytest.mark.parametrize("template, data, expected", [
    # kubectl 1.33 over {"a":123456.5,"b":1234567.0,"c":0.0001,"d":0.00001,"e":100000.0,"f":1e20,"g":-0.0,
    # "h": 99999999999999999999999}
    ("{.a} {.b} {.c} {.d} {.e} {.f} {.g} {.h}", None, "123456.5 1.234567e+06 0.0001 1e-05 100000 1e+20 -0 1e+23"),
    ("{@}", None, '{"a":123456.5,"b":1234567,"c":0.0001,"d":0.00001,"e":100000,"f":100000000000000000000,'
                  '"g":-0,"h":1e+23}'),
], ids=["text", "json"])
def test_numbers_print_as_go_prints_them(template, data, expected):
    data = json.loads('{"a":123456.5,"b":1234567.0,"c":0.0001,"d":0.00001,"e":100000.0,"f":1e20,"g":-0.0,'
                      '"h": 99999999999999999999999}')
    assert run(template, data) == expected


def test_jsonpath_as_json_prints_each_action_as_an_indented_list():
    template = Template.parse('{.things[*].name}{.nums.i}{"x"}{.nope}', output_json=True)
    assert template.render(DOC) == '[\n    "a",\n    "b",\n    "c"\n]\n[\n    3\n]\n[\n    "x"\n]\n[]\n'
