"""Reading `-f FILE|DIR|-`: multi-document YAML or JSON into objects, with their source.

Parse errors name the file and line, as kubectl's do. `kind: List` documents expand to
their items (kubectl does the same), empty documents are skipped.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from kubecore.api.types import Obj
from minikubectl.errors import CliError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "STDIN"


class _Loader(yaml.SafeLoader):
    """YAML as JSON sees it: timestamps stay strings (sigs.k8s.io/yaml does the same)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Manifest:
    source: str  # the file name as given, or STDIN
    obj: Obj


def parse_documents(text: str, source: str) -> list[Manifest]:
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise CliError(f"error parsing {source}: {line}{problem}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"error parsing {source}: {exc}") from None
    out: list[Manifest] = []
    for number, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise CliError(f'error parsing {source}: document {number}: expected an object, '
                           f'got {type(doc).__name__}')
        items = doc.get("items") if doc.get("kind") == "List" else [doc]
        for obj in items or []:
            if not isinstance(obj, dict) or not obj.get("kind") or not obj.get("apiVersion"):
                missing = "Kind" if not isinstance(obj, dict) or not obj.get("kind") else "apiVersion"
                raise CliError(f'unable to decode "{source}": Object \'{missing}\' is missing in '
                               f'document {number}')
            _ensure_json(obj, source)
            out.append(Manifest(source, obj))
    return out


def _ensure_json(obj: Obj, source: str) -> None:
    try:
        json.dumps(obj)
    except (TypeError, ValueError) as exc:
        raise CliError(f"error parsing {source}: {exc}") from None


def files_of(arg: str, recursive: bool = False) -> list[Path]:
    p = Path(arg)
    if p.is_dir():
        pattern = "**/*" if recursive else "*"
        return sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
    if not p.exists():
        raise CliError(f'the path "{arg}" does not exist')
    return [p]


def load(args: list[str], *, verb: str, stdin: TextIO | None = None,
         recursive: bool = False) -> list[Manifest]:
    """All objects of every `-f` argument, in order."""
    out: list[Manifest] = []
    for arg in args:
        if arg == "-":
            out += parse_documents((stdin or sys.stdin).read(), STDIN)
            continue
        for f in files_of(arg, recursive):
            try:
                text = f.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"error reading {f}: {exc}") from None
            out += parse_documents(text, str(f))
    if not out:
        raise CliError(f"no objects passed to {verb}")
    return out
