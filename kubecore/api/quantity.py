"""Resource quantities (apimachinery's resource.Quantity), as much as the node agent and the CLI need (pure).

The downward API hands a container its own limits and requests (`resourceFieldRef`), divided by
a divisor and rounded up, as kubelet's ExtractContainerResourceValue does: CPU through
MilliValue, everything else through Value, both of which round up to a whole number. Values are
kept as exact fractions, so `0.1` CPU is 100 millicores and not 99.99999.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
            "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
            "P": Fraction(10**15), "E": Fraction(10**18)}
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?")


class QuantityError(ValueError):
    """Not a quantity (apimachinery's ErrFormatWrong)."""


def parse(text: str | int | float) -> Fraction:
    """The exact value of a quantity string ("500m", "1Gi", "1e3", "2")."""
    if isinstance(text, int | float):
        return Fraction(text)
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number, suffix = Fraction(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def value(q: Fraction) -> int:
    """Quantity.Value: rounded up to a whole number."""
    return math.ceil(q)


def milli_value(q: Fraction) -> int:
    """Quantity.MilliValue: thousandths, rounded up."""
    return math.ceil(q * 1000)
