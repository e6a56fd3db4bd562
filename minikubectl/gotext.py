"""Values as Go's kubectl writes them as text (pure).

kubectl's printers see objects as Go's `map[string]interface{}` trees and print them with
Go's own formatters; the bytes differ from Python's in small ways that users see in
`-o jsonpath` and `-o custom-columns`:

- `fmt.Sprint` (`%v`): floats in the shortest form, with an exponent from 1e+06 up and
  below 1e-04 (`1.23456785e+07`, `1e-05`), maps as `map[k:v ...]` with sorted keys,
  lists as `[a b]`, null as `<nil>`;
- `encoding/json`: keys sorted, no spaces, `<`, `>` and `&` escaped, floats without an
  exponent between 1e-6 and 1e21 (`10000000000000000`, `1`), then `1e-7`, `1e+21`;
- `strconv.Quote` (`%q`) in error messages.

Integers stay integers (int64), floats stay float64: JSON's `1.0` is a float and prints
as `1` in both forms, as in Go; an integer beyond int64 is a float64, as Go decodes it.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from kubecore.api.formats import go_quote


def _digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits that read back as `value` (as Go's and Python's float
    printing both choose), and the position of the decimal point: 0.DIGITS x 10**point."""
    parts = Decimal(repr(abs(value))).as_tuple()
    all_digits = "".join(str(d) for d in parts.digits)
    stripped = all_digits.rstrip("0")
    exponent = int(parts.exponent) + len(all_digits) - len(stripped)
    digits = stripped.lstrip("0")
    return digits, len(digits) + exponent


def _exp_form(digits: str, point: int, min_exp_digits: int = 2) -> str:
    exp = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exp < 0 else "+"
    return f"{mantissa}e{sign}{abs(exp):0{min_exp_digits}d}"


def _fixed_form(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def float_text(value: float) -> str:
    """`fmt.Sprint(float64)`: %g with the shortest digits, in exponent form below 1e-4 and
    from 1e+06 (strconv's shortest %g decides at precision 6)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    digits, point = _digits(value)
    exp = point - 1
    text = _exp_form(digits, point) if exp < -4 or exp >= 6 else _fixed_form(digits, point)
    return ("-" if value < 0 else "") + text


def float_json(value: float) -> str:
    """encoding/json's float64: plain digits from 1e-6 up to 1e21, else `1e-7`, `1e+21`."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    digits, point = _digits(value)
    if 1e-6 <= abs(value) < 1e21:
        text = _fixed_form(digits, point)
    else:
        text = _exp_form(digits, point, min_exp_digits=1)
    return ("-" if value < 0 else "") + text


_HTML_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                 ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def json_string(text: str) -> str:
    """A JSON string as Go's encoder writes it (HTML characters escaped)."""
    out = json.dumps(text, ensure_ascii=False)
    for raw, escaped in _HTML_ESCAPES:
        out = out.replace(raw, escaped)
    return out


def marshal(value: Any, indent: str = "", _level: int = 0) -> str:
    """`json.Marshal` (or, with `indent`, `json.MarshalIndent(v, "", indent)`) of an
    unstructured value: map keys sorted."""
    if isinstance(value, dict):
        items = [(json_string(str(k)), v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
        return _container("{", "}", [f"{k}:{' ' if indent else ''}{marshal(v, indent, _level + 1)}"
                                     for k, v in items], indent, _level)
    if isinstance(value, list | tuple):
        return _container("[", "]", [marshal(v, indent, _level + 1) for v in value], indent, _level)
    return scalar_json(value)


def _container(open_: str, close: str, parts: list[str], indent: str, level: int) -> str:
    if not parts:
        return open_ + close
    if not indent:
        return open_ + ",".join(parts) + close
    inner = "\n" + indent * (level + 1)
    return open_ + inner + ("," + inner).join(parts) + "\n" + indent * level + close


INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def in_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def as_go_number(value: int | float) -> int | float:
    """An integer beyond int64 is a float64 in Go's unstructured objects."""
    if isinstance(value, int) and not isinstance(value, bool) and not in_int64(value):
        return float(value)
    return value


def scalar_json(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = as_go_number(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return float_json(value)
    return json_string(str(value))


def sprint(value: Any) -> str:
    """`fmt.Sprint(v)` of an unstructured value."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = as_go_number(value)
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{sprint(v)}" for k, v in
                                 sorted(value.items(), key=lambda kv: str(kv[0]))) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(sprint(v) for v in value) + "]"
    return str(value)


def quote(text: str) -> str:
    """`strconv.Quote`: what `%q` makes of a string."""
    return go_quote(text)


def rune_text(ch: str) -> str:
    """`%#U`: `U+007B '{'`, or only `U+0009` for what does not print."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() else code
