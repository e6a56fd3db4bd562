"""Tables like kubectl's: the project's column definitions (`kubecore.printers.tables`, which the
API server's Table answers use too) laid out as kubectl lays them out.

Pure: rows from objects and the current time, then tab-aligned text. This module adds
what only the CLI needs: the NAMESPACE column of `-A`, `kind/name` names when several
kinds print, the label columns of `-L` and `--show-labels` (kubectl's decorateTable), the
rows of `-o custom-columns`, and column widths that a watch keeps from its first table.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.printers import tables
from minikubectl.output import Column, column_cells, escape_terminal


def qualified_kind(rt: ResourceType) -> str:
    """`service`, `deployment.apps`: how kubectl names a kind in `kind/name`."""
    kind = rt.kind.lower()
    return f"{kind}.{rt.group}" if rt.group else kind


def object_name(rt: ResourceType, obj: Obj) -> str:
    """`-o name` and the NAME cell when several kinds print: `service/mysvc`."""
    return f"{qualified_kind(rt)}/{(obj.get('metadata') or {}).get('name')}"


@dataclass(frozen=True)
class TableSpec:
    """What decides a table's shape: the kind, `-o wide`, `-A`, `kind/name` names, and the
    label columns: one per `-L` key (its last `/` segment upper-cased; the label's value or
    nothing), then LABELS for `--show-labels`."""
    rt: ResourceType
    wide: bool = False
    with_namespace: bool = False
    kind_prefix: bool = False
    label_columns: tuple[str, ...] = ()
    show_labels: bool = False

    def columns(self) -> list[tables.Column]:
        """The kind's columns; the priority-1 ones only with `-o wide`. Most kinds start
        with NAME; Events have it only in the wide form, last."""
        return [c for c in tables.columns_for(self.rt.kind) if self.wide or c.priority == 0]

    def header(self) -> list[str]:
        head = [c.name.upper() for c in self.columns()]
        head += [key.split("/")[-1].upper() for key in self.label_columns]
        head += ["LABELS"] if self.show_labels else []
        return (["NAMESPACE"] if self.with_namespace else []) + head

    def row(self, obj: Obj, now: datetime) -> list[str]:
        cells = [object_name(self.rt, obj) if self.kind_prefix and c.format == "name"
                 else str(c.cell(obj, now)) for c in self.columns()]
        if self.with_namespace:
            cells.insert(0, str((obj.get("metadata") or {}).get("namespace") or ""))
        labels = (obj.get("metadata") or {}).get("labels") or {}
        cells += [escape_terminal(str(labels.get(key, ""))) for key in self.label_columns]
        if self.show_labels:
            cells.append(escape_terminal(tables.format_labels(labels)))
        return cells


@dataclass(frozen=True)
class ColumnsSpec:
    """`-o custom-columns`: the user's headers as given, a cell per path."""
    columns: tuple[Column, ...]

    def header(self) -> list[str]:
        return [c.header for c in self.columns]

    def row(self, obj: Obj, now: datetime) -> list[str]:
        return column_cells(self.columns, obj)


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
