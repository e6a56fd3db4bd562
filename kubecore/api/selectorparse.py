"""The label selector language, lexed and parsed as apimachinery's `labels.Parse` does it
(`pkg/labels/selector.go`): the same tokens, the same grammar, the same error messages.

A label selector arrives in a query string from anyone who can list, and parsing runs on
the API server's one event loop: the lexer and the parser each make one pass over the text
(no regular expression that backtracks over runs of blanks), so parsing time grows
linearly with the selector's length. aiohttp's request line limit (8190 bytes) bounds that
length, as Go's header limit bounds it for kube-apiserver, which sets no other.

    <selector>     ::= <requirement> | <requirement> "," <selector>
    <requirement>  ::= ["!"] KEY [ ("in" | "notin") "(" VALUES ")" | ("=" | "==" | "!=" | ">" | "<") VALUE ]
"""
from __future__ import annotations

import enum

from kubecore.api.formats import label_key_errors, label_value_errors


class SelectorError(ValueError):
    pass


class Tok(enum.Enum):
    ERROR = "error"
    END = "end"
    IDENT = "identifier"
    CLOSE = ")"
    COMMA = ","
    NOT = "!"
    DOUBLE_EQ = "=="
    EQ = "="
    GT = ">"
    IN = "in"
    LT = "<"
    NOT_EQ = "!="
    NOT_IN = "notin"
    OPEN = "("


_LITERALS = {t.value: t for t in Tok if t not in (Tok.ERROR, Tok.END, Tok.IDENT)}
_SPECIAL = frozenset("=!(),><")
_BLANK = frozenset(" \t\r\n")
# What a binary operator may be, in apimachinery's order (its "expected:" message lists them)
_BINARY = {Tok.IN: "in", Tok.EQ: "=", Tok.DOUBLE_EQ: "=", Tok.GT: "gt", Tok.LT: "lt",
           Tok.NOT_IN: "notin", Tok.NOT_EQ: "!="}
_BINARY_LISTED = "in, notin, =, ==, !=, gt, lt"


def _lex(text: str) -> list[tuple[Tok, str]]:
    """Every token of `text`, the last one END (or ERROR: the parser reports it when it
    gets there, as apimachinery's does)."""
    out: list[tuple[Tok, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _BLANK:
            i += 1
        if i >= n:
            out.append((Tok.END, ""))
            return out
        start = i
        if text[i] in _SPECIAL:
            tok, i = _special(text, i)
            out.append(tok)
            if tok[0] is Tok.ERROR:
                out.append((Tok.END, ""))
                return out
            continue
        while i < n and text[i] not in _SPECIAL and text[i] not in _BLANK:
            i += 1
        word = text[start:i]
        out.append((_LITERALS.get(word, Tok.IDENT), word))


def _special(text: str, i: int) -> tuple[tuple[Tok, str], int]:
    """The longest operator at `i` (`!=` before `!`), as the lexer's scanSpecialSymbol."""
    best: tuple[Tok, str] | None = None
    buf = ""
    while i < len(text) and text[i] in _SPECIAL:
        candidate = buf + text[i]
        tok = _LITERALS.get(candidate)
        if tok is not None:
            best, buf, i = (tok, candidate), candidate, i + 1
        elif best is not None:
            break
        else:
            buf, i = candidate, i + 1
    if best is None:
        return (Tok.ERROR, f"error expected: keyword found '{buf}'"), i
    return best, i


def _invalid(path: str, value: str, detail: str) -> SelectorError:
    return SelectorError(f'{path}: Invalid value: "{value}": {detail}')


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def peek(self) -> tuple[Tok, str]:
        tok, lit = self.items[self.pos]
        return (Tok.IDENT if tok in (Tok.IN, Tok.NOT_IN) else tok), lit

    def take(self, as_operator: bool = False) -> tuple[Tok, str]:
        tok, lit = self.items[self.pos]
        self.pos += 1
        if not as_operator and tok in (Tok.IN, Tok.NOT_IN):
            tok = Tok.IDENT  # `in` and `notin` are values too: `a in (in)`
        return tok, lit

    def parse(self) -> list[tuple[str, str, tuple[str, ...]]]:
        reqs: list[tuple[str, str, tuple[str, ...]]] = []
        while True:
            tok, lit = self.peek()
            if tok is Tok.END:
                return reqs
            if tok not in (Tok.IDENT, Tok.NOT):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            tok, lit = self.take()
            if tok is Tok.END:
                return reqs
            if tok is not Tok.COMMA:
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (Tok.IDENT, Tok.NOT):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> tuple[str, str, tuple[str, ...]]:
        negated = False
        tok, key = self.take()
        if tok is Tok.NOT:
            negated = True
            tok, key = self.take()
        if tok is not Tok.IDENT:
            raise SelectorError(f"found '{key}', expected: identifier")
        errs = label_key_errors(key)
        if errs:
            raise _invalid("<nil>", key, "; ".join(errs))
        if self.peek()[0] in (Tok.END, Tok.COMMA):
            return key, "!" if negated else "exists", ()
        if negated:  # `!a=b`: apimachinery reads the operator next, and finds no unary one
            return key, "!", ()
        tok, lit = self.take(as_operator=True)
        op = _BINARY.get(tok)
        if op is None:
            raise SelectorError(f"found '{lit}', expected: {_BINARY_LISTED}")
        values = self.value_set() if op in ("in", "notin") else self.exact_value()
        return key, op, _checked_values(key, op, values)

    def value_set(self) -> set[str]:
        tok, lit = self.take()
        if tok is not Tok.OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok is Tok.CLOSE:
            self.take()
            return {""}
        if tok not in (Tok.IDENT, Tok.COMMA):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] is not Tok.CLOSE:
            raise SelectorError(f"found '{lit}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """A comma-separated list up to `)`, where an empty item is the empty value."""
        values: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok is Tok.IDENT:
                values.add(lit)
                after, after_lit = self.peek()
                if after is Tok.CLOSE:
                    return values
                if after is not Tok.COMMA:
                    raise SelectorError(f"found '{after_lit}', expected: ',' or ')'")
            elif tok is Tok.COMMA:
                if not values:
                    values.add("")
                after = self.peek()[0]
                if after is Tok.CLOSE:
                    values.add("")
                    return values
                if after is Tok.COMMA:
                    values.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (Tok.END, Tok.COMMA):
            return {""}
        tok, lit = self.take()
        if tok is Tok.IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def _checked_values(key: str, op: str, values: set[str]) -> tuple[str, ...]:
    """apimachinery's NewRequirement: Gt/Lt take one integer, the others label values."""
    ordered = tuple(sorted(values))
    if op in ("gt", "lt"):
        try:
            int(ordered[0])
        except ValueError:
            raise _invalid("values[0]", ordered[0], "for 'Gt', 'Lt' operators, the value must "
                           "be an integer") from None
        return ordered
    for value in ordered:
        errs = label_value_errors(value)
        if errs:
            raise _invalid(f"[{key}]", value, "; ".join(errs))
    return ordered


def parse_requirements(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, operator, values) for each requirement of a label selector, in the order given:
    operators "=", "!=", "in", "notin", "exists", "!", "gt", "lt"."""
    return _Parser(text).parse()
