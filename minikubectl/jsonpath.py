"""kubectl's JSONPath dialect (client-go's `util/jsonpath`), as a pure module.

`-o jsonpath=`, `-o custom-columns=` and `--sort-by=` all read their paths with this one
template language, so they agree with kubectl down to its quirks:

- a template is text with actions in braces: `{.metadata.name}`, `{"\\n"}` (a quoted string,
  Go's escapes), `{range .items[*]}...{end}`, `{@}` and `{$}` (the current object);
- in an action: `.field` (`\\.` escapes a dot in a key), `[*]` and `.*`, indexes and slices
  `[i]`, `[-1]`, `[a:b:step]`, unions `[0,2]` and `['a','b']`, recursive descent `..name`,
  filters `[?(@.x=="y")]`, `[?(@.x)]`, with `==`, `!=`, `<`, `<=`, `>`, `>=` compared as
  Go's text/template compares (an int is never equal to a float: that is an error);
- results print joined by spaces, maps and lists as Go's JSON, null as `null`;
- a key that is missing gives nothing (`--allow-missing-template-keys`, kubectl's default);
  what kubectl reports as an error (an index out of range, a filter on a non-list, an
  unknown identifier, `{end}` outside a range) is an error here, in the same words.

Map iteration (`.*`, `..`) follows sorted keys; kubectl's order there is Go's random map
order, so any order is kubectl's.

Use: `Template.parse(text)` (raises `JsonPathError` with kubectl's parser message), then
`template.render(obj)` or `template.find_results(obj)`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from minikubectl import gotext


class JsonPathError(Exception):
    """A parse or execution error, worded as client-go words it."""


# --- the parse tree --------------------------------------------------------------------------

@dataclass
class ListNode:
    nodes: list[Node] = field(default_factory=list)


@dataclass(frozen=True)
class TextNode:
    text: str


@dataclass(frozen=True)
class FieldNode:
    name: str


@dataclass(frozen=True)
class Param:
    value: int = 0
    known: bool = False
    derived: bool = False


@dataclass(frozen=True)
class ArrayNode:
    params: tuple[Param, Param, Param]


@dataclass(frozen=True)
class FilterNode:
    left: ListNode
    right: ListNode
    operator: str


@dataclass(frozen=True)
class IntNode:
    value: int


@dataclass(frozen=True)
class FloatNode:
    value: float


@dataclass(frozen=True)
class BoolNode:
    value: bool


@dataclass(frozen=True)
class WildcardNode:
    pass


@dataclass(frozen=True)
class RecursiveNode:
    pass


@dataclass(frozen=True)
class UnionNode:
    nodes: tuple[ListNode, ...]


@dataclass(frozen=True)
class IdentifierNode:
    name: str


Node = Union[ListNode, TextNode, FieldNode, ArrayNode, FilterNode, IntNode, FloatNode,  # noqa: UP007
             BoolNode, WildcardNode, RecursiveNode, UnionNode, IdentifierNode]


class GoInt(int):
    """A number written in the template: Go's `int`, not the objects' `int64` (it shows in
    messages such as `int is not array or slice`)."""


class GoByte(int):
    """One byte of a string that `.*` or `..` walked into (Go indexes a string by byte)."""


# --- the parser (client-go's parser.go, step by step) ----------------------------------------

_EOF = ""
_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")


def _is_digit(ch: str) -> bool:
    return ch != _EOF and ch.isdecimal()


def _is_alnum(ch: str) -> bool:
    return ch == "_" or (ch != _EOF and (ch.isalpha() or ch.isdecimal()))


def _is_terminator(ch: str) -> bool:
    return ch == _EOF or ch in _TERMINATORS


class _Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.width = 0
        self.root = ListNode()

    def next(self) -> str:
        if self.pos >= len(self.input):
            self.width = 0
            return _EOF
        self.width = 1
        self.pos += 1
        return self.input[self.pos - 1]

    def peek(self) -> str:
        ch = self.next()
        self.backup()
        return ch

    def backup(self) -> None:
        self.pos -= self.width

    def consume(self) -> str:
        value = self.input[self.start:self.pos]
        self.start = self.pos
        return value

    def parse_text(self) -> ListNode:
        while True:
            brace = self.input.find("{", self.pos)
            if brace < 0:
                self.pos = len(self.input)
                if self.pos > self.start:
                    self.root.nodes.append(TextNode(self.consume()))
                return self.root
            self.pos = brace
            if self.pos > self.start:
                self.root.nodes.append(TextNode(self.consume()))
            self.pos += 1
            self.consume()
            action = ListNode()
            self.root.nodes.append(action)
            self.parse_inside_action(action)

    def parse_inside_action(self, cur: ListNode) -> None:
        while True:
            rest = self.input[self.pos:]
            if rest.startswith("}"):
                self.pos += 1
                self.consume()
                return
            if rest.startswith("[?("):
                self.parse_filter(cur)
                continue
            if rest.startswith(".."):
                self.parse_recursive(cur)
                continue
            self.parse_token(cur, self.next())

    def parse_token(self, cur: ListNode, ch: str) -> None:
        if ch == _EOF or ch in "\r\n":
            raise JsonPathError("unclosed action")
        if ch in " @$":
            self.consume()
        elif ch == "[":
            self.parse_array(cur)
        elif ch in "\"'":
            self.parse_quote(cur, ch)
        elif ch == ".":
            self.parse_field(cur)
        elif ch in "+-" or _is_digit(ch):
            self.backup()
            self.parse_number(cur)
        elif _is_alnum(ch):
            self.backup()
            self.parse_identifier(cur)
        else:
            raise JsonPathError(f"unrecognized character in action: {gotext.rune_text(ch)}")

    def parse_identifier(self, cur: ListNode) -> None:
        while not _is_terminator(self.next()):
            pass
        self.backup()
        value = self.consume()
        cur.nodes.append(BoolNode(value == "true") if value in ("true", "false") else IdentifierNode(value))

    def parse_recursive(self, cur: ListNode) -> None:
        if cur.nodes and isinstance(cur.nodes[-1], RecursiveNode):
            raise JsonPathError("invalid multiple recursive descent")
        self.pos += 2
        self.consume()
        cur.nodes.append(RecursiveNode())
        if _is_alnum(self.peek()):
            self.parse_field(cur)

    def parse_number(self, cur: ListNode) -> None:
        if self.peek() in ("+", "-"):
            self.next()
        while True:
            ch = self.next()
            if ch != "." and not _is_digit(ch):
                self.backup()
                break
        value = self.consume()
        if _INT.fullmatch(value) and gotext.in_int64(int(value)):
            cur.nodes.append(IntNode(int(value)))
        elif _FLOAT.fullmatch(value):
            cur.nodes.append(FloatNode(float(value)))
        else:
            raise JsonPathError(f"cannot parse number {value}")

    def parse_array(self, cur: ListNode) -> None:
        while True:
            ch = self.next()
            if ch in (_EOF, "\n"):
                raise JsonPathError("unterminated array")
            if ch == "]":
                break
        text = self.consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            cur.nodes.append(UnionNode(tuple(_parse_action(f"[{part.strip(' ')}]") for part in parts)))
            return
        key = _DICT_KEY.match(text)
        if key:
            cur.nodes.extend(_parse_action(f".{key.group(1)}").nodes)
            return
        cur.nodes.append(ArrayNode(_slice_params(text)))

    def parse_filter(self, cur: ListNode) -> None:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            ch = self.next()
            if ch in (_EOF, "\n"):
                raise JsonPathError("unterminated filter")
            if ch in "\"'":
                if not begin:
                    begin, pair = True, ch
                    continue
                if self.input[self.pos - 2] != "\\" and ch == pair:
                    end = True
            elif ch == ")" and begin == end:
                break
        if self.next() != "]":
            raise JsonPathError("unclosed array expect ]")
        text = self.consume()[:-2]
        match = _FILTER.match(text)
        if match is None:
            cur.nodes.append(FilterNode(_parse_action(text), ListNode(), "exists"))
        else:
            cur.nodes.append(FilterNode(_parse_action(match.group(1)), _parse_action(match.group(3)),
                                        match.group(2)))

    def parse_quote(self, cur: ListNode, quote: str) -> None:
        while True:
            ch = self.next()
            if ch in (_EOF, "\n"):
                raise JsonPathError("unterminated quoted string")
            if ch == quote and self.input[self.pos - 2] != "\\":
                break
        value = self.consume()
        try:
            cur.nodes.append(TextNode(unquote_extend(value)))
        except ValueError:
            raise JsonPathError(f"unquote string {value} error invalid syntax") from None

    def parse_field(self, cur: ListNode) -> None:
        self.consume()
        while True:
            ch = self.next()
            if ch == "\\":
                self.next()
            elif _is_terminator(ch):
                self.backup()
                break
        value = self.consume()
        cur.nodes.append(WildcardNode() if value == "*" else FieldNode(value.replace("\\", "")))


def _parse_action(text: str) -> ListNode:
    """An action's nodes on their own (a union member, a filter side)."""
    first = _Parser("{" + text + "}").parse_text().nodes[0]
    assert isinstance(first, ListNode)
    return first


def _slice_params(text: str) -> tuple[Param, Param, Param]:
    match = _SLICE.match(text)
    if match is None:
        raise JsonPathError(f"invalid array index {text}")
    params: list[Param] = []
    for i, group in enumerate(match.groups()):
        text_i = group or ""
        if not text_i:
            params.append(Param(params[0].value + 1, known=True, derived=True) if i == 1 else Param())
            continue
        number = text_i[1:] if i > 0 else text_i
        if i > 0 and number == "":
            params.append(Param())
        elif re.fullmatch(r"-?[0-9]+", number):
            params.append(Param(int(number), known=True))
        else:
            raise JsonPathError(f"array index {number} is not a number")
    return params[0], params[1], params[2]


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\"}


def unquote_extend(text: str) -> str:
    """strconv.Unquote, also for single-quoted strings of any length (ValueError if bad)."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'":
        raise ValueError("invalid syntax")
    quote, body = text[0], text[1:-1]
    if "\\" not in body and quote not in body:
        return body
    out = []
    while body:
        ch, body = _unquote_char(body, quote)
        out.append(ch)
    return "".join(out)


def _unquote_char(text: str, quote: str) -> tuple[str, str]:
    ch = text[0]
    if ch == quote:
        raise ValueError("invalid syntax")
    if ch != "\\":
        return ch, text[1:]
    if len(text) <= 1:
        raise ValueError("invalid syntax")
    esc, rest = text[1], text[2:]
    if esc in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[esc], rest
    if esc in "xuU":
        size = {"x": 2, "u": 4, "U": 8}[esc]
        digits = rest[:size]
        if len(digits) < size or not re.fullmatch(r"[0-9a-fA-F]+", digits):
            raise ValueError("invalid syntax")
        code = int(digits, 16)
        if esc != "x" and (code > 0x10FFFF or 0xD800 <= code < 0xE000):
            raise ValueError("invalid syntax")
        return chr(code), rest[size:]
    if esc in "01234567":
        digits = text[1:4]
        if len(digits) < 3 or not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        return chr(int(digits, 8)), text[4:]
    if esc in "'\"" and esc == quote:
        return esc, rest
    raise ValueError("invalid syntax")


_RELAXED = re.compile(r"^\{\.?([^{}]+)\}$|^\.?([^{}]+)$")


def relaxed_expression(path: str) -> str:
    """kubectl's RelaxedJSONPathExpression, for custom columns and --sort-by: `a.b`, `.a.b`,
    `{a.b}` and `{.a.b}` all mean `{.a.b}`."""
    if not path:
        return path
    match = _RELAXED.match(path)
    if match is None:
        raise JsonPathError("unexpected path string, expected a 'name1.name2' or '.name1.name2' "
                            "or '{name1.name2}' or '{.name1.name2}'")
    return "{.%s}" % (match.group(1) or match.group(2))


# --- evaluation (client-go's jsonpath.go) ----------------------------------------------------

Values = list[Any]
Result = tuple[Values, "str | None"]  # (values, error): Go's evaluators return both


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoByte):
        return "uint8"
    if isinstance(value, GoInt):
        return "int"
    if isinstance(value, int):
        return "int64" if gotext.in_int64(value) else "float64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "[]interface {}"


def _children(value: Any) -> Iterator[Any] | None:
    """What `.*` and `..` step into: map values (by sorted key), list items, a string's
    bytes; None for what has no children."""
    if isinstance(value, dict):
        return (value[k] for k in sorted(value, key=str))
    if isinstance(value, list):
        return iter(value)
    if isinstance(value, str):
        return (GoByte(b) for b in value.encode())
    return None


@dataclass
class Template:
    """A parsed template; `render` and `find_results` evaluate it against an object."""
    text: str
    root: ListNode
    allow_missing_keys: bool = True
    output_json: bool = False

    @classmethod
    def parse(cls, text: str, *, allow_missing_keys: bool = True, output_json: bool = False) -> Template:
        return cls(text, _Parser(text).parse_text(), allow_missing_keys, output_json)

    def find_results(self, data: Any) -> list[Values]:
        return _Run(self.root.nodes, self.allow_missing_keys).find_results(data, 0)

    def render(self, data: Any) -> str:
        """The text kubectl prints: each action's results joined by spaces (or, for
        `jsonpath-as-json`, each as an indented JSON list)."""
        if self.output_json:
            return "".join(gotext.marshal(list(r), "    ") + "\n" for r in self.find_results(data))
        return "".join(" ".join(_text(v) for v in results) for results in self.find_results(data))


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return gotext.marshal(value)
    if value is None:
        return "null"
    return gotext.sprint(value)


class _Run:
    """One evaluation: the range bookkeeping of client-go's JSONPath (nested ranges, an
    empty range still walking to its `{end}`)."""

    def __init__(self, nodes: list[Node], allow_missing: bool) -> None:
        self.nodes = nodes
        self.allow_missing = allow_missing
        self.begin_range = 0
        self.in_range = 0
        self.end_range = 0
        self.last_end = -1

    def find_results(self, data: Any, start: int) -> list[Values]:
        cur = [data]
        full: list[Values] = []
        i = start
        while i < len(self.nodes):
            results, err = self.walk(cur, self.nodes[i])
            if err is not None:
                raise JsonPathError(err)
            if self.end_range > 0:
                self.end_range -= 1
                self.last_end = i
                break
            if self.begin_range > 0:
                self.begin_range -= 1
                self.in_range += 1
                for value in results:
                    full.extend(self.find_results(value, i + 1))
                if not results:
                    self.find_results(None, i + 1)  # only to find the range's {end}
                self.in_range -= 1
                if i + 1 <= self.last_end < len(self.nodes):
                    i = self.last_end
                i += 1
                continue
            full.append(results)
            i += 1
        return full

    def walk(self, values: Values, node: Node) -> Result:
        if isinstance(node, ListNode):
            return self.eval_list(values, node)
        if isinstance(node, TextNode):
            return [node.text], None
        if isinstance(node, FieldNode):
            return self.eval_field(values, node)
        if isinstance(node, ArrayNode):
            return _eval_array(values, node)
        if isinstance(node, FilterNode):
            return self.eval_filter(values, node)
        if isinstance(node, IntNode):
            return [GoInt(node.value) for _ in values], None
        if isinstance(node, FloatNode | BoolNode):
            return [node.value for _ in values], None
        if isinstance(node, WildcardNode):
            return [c for v in values for c in (_children(v) or ())], None
        if isinstance(node, RecursiveNode):
            return _eval_recursive(values), None
        if isinstance(node, UnionNode):
            return self.eval_union(values, node)
        return self.eval_identifier(values, node)

    def eval_list(self, values: Values, node: ListNode) -> Result:
        for child in node.nodes:
            values, err = self.walk(values, child)
            if err is not None:
                return values, err
        return values, None

    def eval_identifier(self, values: Values, node: IdentifierNode) -> Result:
        if node.name == "range":
            self.begin_range += 1
            return values, None
        if node.name == "end":
            if self.in_range > 0:
                self.end_range += 1
                return [], None
            return [], "not in range, nothing to end"
        return values, f"unrecognized identifier {node.name}"

    def eval_field(self, values: Values, node: FieldNode) -> Result:
        if not values:
            return [], None
        found = [v[node.name] for v in values if isinstance(v, dict) and node.name in v]
        if not found and not self.allow_missing:
            return [], f"{node.name} is not found"
        return found, None

    def eval_union(self, values: Values, node: UnionNode) -> Result:
        out: Values = []
        for member in node.nodes:
            found, err = self.eval_list(values, member)
            if err is not None:
                return values, err
            out.extend(found)
        return out, None

    def eval_filter(self, values: Values, node: FilterNode) -> Result:
        out: Values = []
        for value in values:
            if not isinstance(value, list):
                return values, f"{gotext.sprint(value)} is not array or slice and cannot be filtered"
            for item in value:
                try:
                    passed = self.passes(item, node)
                except _FilterError as exc:
                    return values, str(exc)
                except JsonPathError as exc:
                    return out, str(exc)
                if passed:
                    out.append(item)
        return out, None

    def passes(self, item: Any, node: FilterNode) -> bool:
        """Whether `item` passes the filter. Raises `_FilterError` for what Go reports with
        the filter's input, JsonPathError for a failed comparison (reported with the
        results so far); either way the template fails."""
        lefts, err = self.eval_list([item], node.left)
        if node.operator == "exists":
            return bool(lefts)
        rights: Values = []
        if err is None and lefts and len(lefts) == 1:
            rights, err = self.eval_list([item], node.right)
        if err is not None:
            raise _FilterError(err)
        if not lefts or (len(lefts) == 1 and not rights):
            return False
        if len(lefts) > 1 or len(rights) > 1:
            raise _FilterError("can only compare one element at a time")
        return compare(node.operator, lefts[0], rights[0])


class _FilterError(JsonPathError):
    pass


def _eval_array(values: Values, node: ArrayNode) -> Result:
    out: Values = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            return values, f"{_go_type(value)} is not array or slice"
        length = len(value)
        first, last, step = node.params
        start = first.value if first.known else 0
        if start < 0:
            start += length
        end = last.value if last.known else length
        if end < 0 or (end == 0 and last.derived):
            end += length
        if end == start:
            return out, None
        if start >= length or start < 0:
            return values, f"array index out of bounds: index {start}, length {length}"
        if end > length or end < 0:
            return values, f"array index out of bounds: index {end - 1}, length {length}"
        if start > end:
            return values, f"starting index {start} is greater than ending index {end}"
        if step.known and step.value <= 0:
            return values, "step must be > 0"
        out.extend(value[start:end:step.value if step.known else 1])
    return out, None


def _eval_recursive(values: Values) -> Values:
    out: Values = []
    for value in values:
        if value is None:
            continue
        children = list(_children(value) or ())
        if children:
            out.append(value)
            out.extend(_eval_recursive(children))
    return out


# --- comparisons (the text/template functions client-go forked) ------------------------------

_BAD_TYPE = "invalid type for comparison"
_INCOMPATIBLE = "incompatible types for comparison"


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoByte):
        return "uint"
    if isinstance(value, int):
        return "int" if gotext.in_int64(value) else "float"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def _basic(left: Any, right: Any) -> tuple[str, str]:
    k1, k2 = _kind(left), _kind(right)
    if k1 is None or k2 is None:
        raise JsonPathError(_BAD_TYPE)
    if k1 != k2 and {k1, k2} != {"int", "uint"}:
        raise JsonPathError(_INCOMPATIBLE)
    return k1, k2


def _equal(left: Any, right: Any) -> bool:
    _basic(left, right)
    return bool(left == right)


def _less(left: Any, right: Any) -> bool:
    k1, _ = _basic(left, right)
    if k1 == "bool":
        raise JsonPathError(_BAD_TYPE)
    return bool(left < right)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": _less,
    "<=": lambda a, b: _less(a, b) or _equal(a, b),
    ">": lambda a, b: not (_less(a, b) or _equal(a, b)),
    ">=": lambda a, b: not _less(a, b),
}


def compare(operator: str, left: Any, right: Any) -> bool:
    """A filter's comparison; JsonPathError in text/template's words for what it cannot
    compare."""
    op = _OPERATORS.get(operator)
    if op is None:
        raise JsonPathError(f"unrecognized filter operator {operator}")
    return bool(op(left, right))
