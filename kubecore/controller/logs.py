"""Logs of every service process: one line per record, the record's extra fields on it.

Controllers log with `extra={"key": "ns/name"}`, so a line can be found by the object it was
about: `KeyValueFormatter` for people, `JsonFormatter` (`--log-json`) for machines.
"""
from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class KeyValueFormatter(logging.Formatter):
    """`2024-01-01T00:00:00 INFO endpointslice: synced key=default/web queue=services`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            tail = " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
            head, nl, rest = line.partition("\n")  # keep a traceback below the fields
            line = f"{head} {tail}{nl}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
                    for k, v in _extras(record).items()})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str | int = "INFO", *, json_lines: bool = False,
                  stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
