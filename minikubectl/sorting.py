"""`--sort-by`: kubectl's ordering of objects by a JSONPath field (pure).

As kubectl's `get/sorter.go` sorts: the path is read relaxed (`.metadata.name`,
`metadata.name` and `{.metadata.name}` are one path), the first value found is the key,
an object without it sorts first; int64 and float64 keys compare as numbers, strings as
quantities when both are (`100m` < `1` < `2Ki`, `2` < `10`) and otherwise byte by byte
(`pod-10` < `pod-9`, as kubectl 1.33 orders them; RFC 3339 timestamps therefore by time).
Other key types are an error, as are keys of different types. The field must be found in at
least one object.

Equal keys keep the order that Go's `sort.Sort` (pattern-defeating quicksort, an insertion
sort up to 12 items) leaves them in, so ties come out as kubectl prints them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, TypeVar

from kubecore.api import quantity
from minikubectl import gotext
from minikubectl.jsonpath import JsonPathError, Template, Values, relaxed_expression

T = TypeVar("T")

class SortError(Exception):
    """A failure of --sort-by, in kubectl's words."""


def sort_objects(objs: Sequence[T], sort_by: str, key: Callable[[T], Any] = lambda o: o, *,
                 table: bool = True) -> list[T]:
    """`objs` in kubectl's order for `--sort-by=sort_by` (`key` gives the object of an item).

    `table`: kubectl sorts the rows of a table (default and wide output) and the items of a
    list (other outputs) with the same order but words a bad path differently."""
    try:
        field = relaxed_expression(sort_by)
    except JsonPathError as exc:
        if not table:
            raise SortError(str(exc)) from None
        field = sort_by
    try:
        template = Template.parse(field)
    except JsonPathError as exc:
        raise SortError(f"sorting error: {exc}" if table else str(exc)) from None
    try:
        keys = [_first(template.find_results(key(o))) for o in objs]
    except JsonPathError as exc:
        raise SortError(str(exc)) from None
    if objs and all(k is _MISSING for k in keys):
        raise SortError(f"couldn't find any field with path {gotext.quote(field)} in the list of objects")
    order = list(range(len(objs)))

    def less(i: int, j: int) -> bool:
        a, b = keys[order[i]], keys[order[j]]
        if a is _MISSING:
            return True
        if b is _MISSING:
            return False
        try:
            return is_less(a, b)
        except SortError as exc:
            raise SortError(f"Field {field} is an unsortable type: interface, err: {exc}") from None

    def swap(i: int, j: int) -> None:
        order[i], order[j] = order[j], order[i]

    go_sort(len(objs), less, swap)
    return [objs[i] for i in order]


_MISSING = object()


def _first(results: list[Values]) -> Any:
    if not results or not results[0]:
        return _MISSING
    return results[0][0]


def is_less(a: Any, b: Any) -> bool:
    """sorter.go's isLess for the values of an unstructured object."""
    if a is None and b is None:
        return False
    if a is None:
        return True
    if b is None:
        return False
    for kind in (int, float):
        if _is(a, kind):
            if _is(b, kind):
                return bool(gotext.as_go_number(a) < gotext.as_go_number(b))
            raise SortError("unsortable interface: interface")
    if isinstance(a, str):
        if not isinstance(b, str):
            raise SortError("unsortable interface: interface")
        qa, qb = parse_quantity(a), parse_quantity(b)
        if qa is not None and qb is not None:
            return qa < qb
        return a < b
    raise SortError(f"unsortable type: {_type_name(a)}")


def _is(value: Any, kind: type) -> bool:
    """Go's dynamic type: int64 for ints (a float64 beyond int64), float64 for floats."""
    if isinstance(value, bool):
        return False
    return isinstance(gotext.as_go_number(value) if isinstance(value, int) else value, kind)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "[]interface {}"


def parse_quantity(text: str) -> Fraction | None:
    """The value of a resource quantity (`500m`, `1Gi`, `1e3`), None if `text` is not one."""
    if text != text.strip():
        return None
    try:
        return quantity.parse(text)
    except quantity.QuantityError:
        return None


# --- Go's sort.Sort (pdqsort), so that ties land where kubectl's land ------------------------

Less = Callable[[int, int], bool]
Swap = Callable[[int, int], None]


def go_sort(n: int, less: Less, swap: Swap) -> None:
    if n > 1:
        _pdqsort(less, swap, 0, n, n.bit_length())


def _insertion_sort(less: Less, swap: Swap, a: int, b: int) -> None:
    for i in range(a + 1, b):
        j = i
        while j > a and less(j, j - 1):
            swap(j, j - 1)
            j -= 1


def _sift_down(less: Less, swap: Swap, lo: int, hi: int, first: int) -> None:
    root = lo
    while True:
        child = 2 * root + 1
        if child >= hi:
            return
        if child + 1 < hi and less(first + child, first + child + 1):
            child += 1
        if not less(first + root, first + child):
            return
        swap(first + root, first + child)
        root = child


def _heap_sort(less: Less, swap: Swap, a: int, b: int) -> None:
    hi = b - a
    for i in range((hi - 1) // 2, -1, -1):
        _sift_down(less, swap, i, hi, a)
    for i in range(hi - 1, -1, -1):
        swap(a, a + i)
        _sift_down(less, swap, 0, i, a)


_UNKNOWN, _INCREASING, _DECREASING = 0, 1, 2


def _pdqsort(less: Less, swap: Swap, a: int, b: int, limit: int) -> None:
    balanced = partitioned = True
    while True:
        length = b - a
        if length <= 12:
            _insertion_sort(less, swap, a, b)
            return
        if limit == 0:
            _heap_sort(less, swap, a, b)
            return
        if not balanced:
            _break_patterns(swap, a, b)
            limit -= 1
        pivot, hint = _choose_pivot(less, a, b)
        if hint == _DECREASING:
            _reverse(swap, a, b)
            pivot = (b - 1) - (pivot - a)
            hint = _INCREASING
        if balanced and partitioned and hint == _INCREASING and _partial_insertion_sort(less, swap, a, b):
            return
        if a > 0 and not less(a - 1, pivot):
            a = _partition_equal(less, swap, a, b, pivot)
            continue
        mid, partitioned = _partition(less, swap, a, b, pivot)
        left, right = mid - a, b - mid
        if left < right:
            balanced = left >= length // 8
            _pdqsort(less, swap, a, mid, limit)
            a = mid + 1
        else:
            balanced = right >= length // 8
            _pdqsort(less, swap, mid + 1, b, limit)
            b = mid


def _partition(less: Less, swap: Swap, a: int, b: int, pivot: int) -> tuple[int, bool]:
    swap(a, pivot)
    i, j = a + 1, b - 1
    while i <= j and less(i, a):
        i += 1
    while i <= j and not less(j, a):
        j -= 1
    if i > j:
        swap(j, a)
        return j, True
    swap(i, j)
    i, j = i + 1, j - 1
    while True:
        while i <= j and less(i, a):
            i += 1
        while i <= j and not less(j, a):
            j -= 1
        if i > j:
            break
        swap(i, j)
        i, j = i + 1, j - 1
    swap(j, a)
    return j, False


def _partition_equal(less: Less, swap: Swap, a: int, b: int, pivot: int) -> int:
    swap(a, pivot)
    i, j = a + 1, b - 1
    while True:
        while i <= j and not less(a, i):
            i += 1
        while i <= j and less(a, j):
            j -= 1
        if i > j:
            return i
        swap(i, j)
        i, j = i + 1, j - 1


def _partial_insertion_sort(less: Less, swap: Swap, a: int, b: int) -> bool:
    i = a + 1
    for _ in range(5):
        while i < b and not less(i, i - 1):
            i += 1
        if i == b:
            return True
        if b - a < 50:
            return False
        swap(i, i - 1)
        if i - a >= 2:
            for j in range(i - 1, 0, -1):
                if not less(j, j - 1):
                    break
                swap(j, j - 1)
        if b - i >= 2:
            for j in range(i + 1, b):
                if not less(j, j - 1):
                    break
                swap(j, j - 1)
    return False


def _break_patterns(swap: Swap, a: int, b: int) -> None:
    length = b - a
    if length < 8:
        return
    state = length
    modulus = 1 << length.bit_length()
    mask = (1 << 64) - 1
    for idx in range(a + (length // 4) * 2 - 1, a + (length // 4) * 2 + 2):
        state ^= (state << 13) & mask
        state ^= state >> 7
        state ^= (state << 17) & mask
        other = state & (modulus - 1)
        if other >= length:
            other -= length
        swap(idx, a + other)


def _choose_pivot(less: Less, a: int, b: int) -> tuple[int, int]:
    length = b - a
    swaps = [0]
    i, j, k = a + length // 4, a + length // 4 * 2, a + length // 4 * 3
    if length >= 8:
        if length >= 50:
            i = _median(less, i - 1, i, i + 1, swaps)
            j = _median(less, j - 1, j, j + 1, swaps)
            k = _median(less, k - 1, k, k + 1, swaps)
        j = _median(less, i, j, k, swaps)
    if swaps[0] == 0:
        return j, _INCREASING
    if swaps[0] == 12:
        return j, _DECREASING
    return j, _UNKNOWN


def _median(less: Less, a: int, b: int, c: int, swaps: list[int]) -> int:
    def order(x: int, y: int) -> tuple[int, int]:
        if less(y, x):
            swaps[0] += 1
            return y, x
        return x, y
    a, b = order(a, b)
    b, c = order(b, c)
    a, b = order(a, b)
    return b


def _reverse(swap: Swap, a: int, b: int) -> None:
    i, j = a, b - 1
    while i < j:
        swap(i, j)
        i, j = i + 1, j - 1
