"""`-o`: what `get` prints, parsed as kubectl's print flags parse it (pure but for reading a
template file).

`wide`, `json`, `yaml`, `name`, and the templates: `jsonpath=TEMPLATE`,
`jsonpath-file=FILE`, `jsonpath-as-json=TEMPLATE`, `custom-columns=HEADER:PATH,...` and
`custom-columns-file=FILE` (a line of headers and a line of paths, split on whitespace).
Custom columns read each path relaxed (`.metadata.name`, `metadata.name`,
`{.metadata.name}`), print `<none>` for what is missing and join several values with commas,
each as Go's `fmt.Sprint` writes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minikubectl import gotext
from minikubectl.errors import CliError
from minikubectl.jsonpath import JsonPathError, Template, relaxed_expression

FORMATS = ("custom-columns", "custom-columns-file", "json", "jsonpath", "jsonpath-as-json",
           "jsonpath-file", "name", "wide", "yaml")
_JSONPATH = ("jsonpath", "jsonpath-file", "jsonpath-as-json")
_COLUMNS = ("custom-columns", "custom-columns-file")


@dataclass(frozen=True)
class Column:
    header: str
    template: Template


@dataclass(frozen=True)
class Output:
    """The parsed `-o`: `kind` is "" (the table), a format name, or "jsonpath" or
    "custom-columns" with the template or the columns."""
    kind: str = ""
    template: Template | None = None
    columns: tuple[Column, ...] = field(default=())
    column_headers: bool = True

    @property
    def table(self) -> bool:
        return self.kind in ("", "wide")


def parse(value: str | None, *, allow_missing_keys: bool = True) -> Output:
    if not value:
        return Output()
    if value in ("wide", "json", "yaml", "name"):
        return Output(kind=value)
    name, sep, arg = value.partition("=")
    if name in _JSONPATH:
        return _jsonpath(name, arg, allow_missing_keys)
    if name in _COLUMNS and (sep or name == "custom-columns"):
        return _columns(name, arg)
    raise CliError(f'unable to match a printer suitable for the output format "{value}", '
                   f"allowed formats are: {','.join(FORMATS)}")


def _jsonpath(name: str, text: str, allow_missing_keys: bool) -> Output:
    if not text:
        raise CliError("template format specified but no template given")
    if name == "jsonpath-file":
        text = _read(text, f"error reading --template {text}")
    try:
        template = Template.parse(text, allow_missing_keys=allow_missing_keys,
                                  output_json=name == "jsonpath-as-json")
    except JsonPathError as exc:
        raise CliError(f"error parsing jsonpath {text}, {exc}") from None
    return Output(kind="jsonpath", template=template)


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise CliError(f"{what}, open {path}: {(exc.strerror or str(exc)).lower()}") from None


def _columns(name: str, spec: str) -> Output:
    if not spec:
        raise CliError("custom-columns format specified but no custom columns given")
    if name == "custom-columns-file":
        return _columns_file(spec)
    pairs = []
    for part in spec.split(","):
        header, colon, path = part.partition(":")
        if not colon:
            raise CliError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        pairs.append((header, path))
    return Output(kind="custom-columns", columns=_compile(pairs))


_HOW = "Expected format is one line of space separated headers, one line of space separated column specs."


def _columns_file(path: str) -> Output:
    lines = _read(path, f"error reading template {path}").splitlines()
    if not lines:
        raise CliError(f"invalid template, missing header line. {_HOW}")
    if len(lines) < 2:
        raise CliError(f"invalid template, missing spec line. {_HOW}")
    headers, specs = lines[0].split(), lines[1].split()
    if len(headers) != len(specs):
        raise CliError(f"number of headers ({len(headers)}) and field specifications ({len(specs)}) "
                       "don't match")
    # kubectl's file form prints its header line even with --no-headers
    return Output(kind="custom-columns", columns=_compile(list(zip(headers, specs, strict=True))),
                  column_headers=False)


def _compile(pairs: list[tuple[str, str]]) -> tuple[Column, ...]:
    columns = []
    for header, path in pairs:
        try:
            columns.append(Column(header, Template.parse(relaxed_expression(path))))
        except JsonPathError as exc:
            raise CliError(str(exc)) from None
    return tuple(columns)


_TERMINAL_ESCAPES = (("\x1b", "^["), ("\r", "\\r"))


def escape_terminal(text: str) -> str:
    """cli-runtime's EscapeTerminal: no escape sequences reach the terminal from a cell."""
    for raw, shown in _TERMINAL_ESCAPES:
        text = text.replace(raw, shown)
    return text


def column_cells(columns: tuple[Column, ...], obj: Any) -> list[str]:
    """One object's row of custom columns (JsonPathError as kubectl's printer fails)."""
    cells = []
    for column in columns:
        results = column.template.find_results(obj)
        values = [] if results and results[0] else ["<none>"]
        values += [escape_terminal(gotext.sprint(v)) for group in results for v in group]
        cells.append(",".join(values))
    return cells


def no_headers_for(output: Output, no_headers: bool) -> bool:
    """--no-headers, except where kubectl ignores it (the custom-columns-file form)."""
    return no_headers and output.column_headers

