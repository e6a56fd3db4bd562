"""Tables like kubectl's: the project's column definitions (`kubecore.printers.tables`, which the
API server's Table answers use too) laid out as kubectl lays them out.

Pure: rows from objects and the current time, then tab-aligned text. This module adds
what only the CLI needs: the NAMESPACE column of `-A`, `kind/name` names when several
kinds print, and column widths that a watch keeps from its first table.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.printers import tables


def qualified_kind(rt: ResourceType) -> str:
    """`service`, `deployment.apps`: how kubectl names a kind in `kind/name`."""
    kind = rt.kind.lower()
    return f"{kind}.{rt.group}" if rt.group else kind


def object_name(rt: ResourceType, obj: Obj) -> str:
    """`-o name` and the NAME cell when several kinds print: `service/mysvc`."""
    return f"{qualified_kind(rt)}/{(obj.get('metadata') or {}).get('name')}"


@dataclass(frozen=True)
class TableSpec:
    """What decides a table's shape: the kind, `-o wide`, `-A`, `kind/name` names."""
    rt: ResourceType
    wide: bool = False
    with_namespace: bool = False
    kind_prefix: bool = False

    def columns(self) -> list[tables.Column]:
        """The kind's columns; the priority-1 ones only with `-o wide`. Most kinds start
        with NAME; Events have it only in the wide form, last."""
        return [c for c in tables.columns_for(self.rt.kind) if self.wide or c.priority == 0]

    def header(self) -> list[str]:
        head = [c.name.upper() for c in self.columns()]
        return (["NAMESPACE"] if self.with_namespace else []) + head

    def row(self, obj: Obj, now: datetime) -> list[str]:
        cells = [object_name(self.rt, obj) if self.kind_prefix and c.format == "name"
                 else str(c.cell(obj, now)) for c in self.columns()]
        if self.with_namespace:
            cells.insert(0, str((obj.get("metadata") or {}).get("namespace") or ""))
        return cells


def render_table(rows: Iterable[list[str]], widths: list[int] | None = None) -> str:
    """Columns padded like kubectl's tabwriter (min width 6, padding 3, last cell unpadded).

    `widths` lets a watch keep the widths of its first table for later rows.
    """
    rows = list(rows)
    if widths is None:
        widths = column_widths(rows)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells))
    return "".join(line + "\n" for line in lines)


def column_widths(rows: list[list[str]]) -> list[int]:
    count = max((len(r) for r in rows), default=0)
    return [max(6, max((len(r[i]) for r in rows if i < len(r)), default=0) + 3)
            for i in range(count)]
