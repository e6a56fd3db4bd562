"""/healthz, /livez and /readyz as the Kubernetes components serve them (k8s.io/apiserver's
pkg/server/healthz): a list of named checks per path, each also at `<path>/<name>`.

- `GET /readyz` runs every check: `ok` when all pass; `?verbose` lists them (`[+]etcd ok`)
  and ends `readyz check passed`; `?exclude=<name>` skips one (`[+]etcd excluded: ok`).
- A failure is a 500 that always lists the checks, the failed one as `[-]etcd failed:
  reason withheld` (the path is public; the reason goes to the log), ending `readyz check
  failed`.
- `GET /readyz/etcd` runs one: `ok`, or a 500 `internal server error: <reason>`.

The API server uses these (`Health.named`); the other services keep `health.py`'s plain
answers, which their probes and tests read.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger("healthz")

Check = Callable[[], Awaitable[str | None]]
"""None when the check passes; otherwise why not."""

TEXT_HEADERS = {"X-Content-Type-Options": "nosniff"}


async def always_ok() -> str | None:
    return None


@dataclass(frozen=True)
class NamedChecks:
    """The checks of each path, in the order they are listed."""
    livez: Sequence[tuple[str, Check]]
    readyz: Sequence[tuple[str, Check]]

    def for_path(self, path: str) -> Sequence[tuple[str, Check]]:
        return self.readyz if path == "readyz" else self.livez  # /healthz lists the live checks


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body, charset="utf-8", headers=TEXT_HEADERS)


def _excluded(request: web.Request) -> list[str]:
    return [name.strip() for value in request.query.getall("exclude", [])
            for name in value.split(",") if name.strip()]


async def root(request: web.Request, path: str, checks: Sequence[tuple[str, Check]]) -> web.Response:
    """kube's handleRootHealth for `path` (healthz, livez, readyz)."""
    excluded = _excluded(request)
    lines, failed = [], []
    for name, check in checks:
        if name in excluded:
            excluded = [e for e in excluded if e != name]
            lines.append(f"[+]{name} excluded: ok\n")
            continue
        reason = await check()
        if reason is None:
            lines.append(f"[+]{name} ok\n")
        else:
            lines.append(f"[-]{name} failed: reason withheld\n")
            failed.append(f"[-]{name} failed: {reason}")
    if excluded:
        quoted = ",".join(f'"{e}"' for e in sorted(set(excluded)))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}\n")
    if failed:
        log.info("%s check failed: %s", path, "; ".join(failed))
        return _text("".join(lines) + f"{path} check failed\n", status=500)
    if "verbose" not in request.query:
        return _text("ok")
    return _text("".join(lines) + f"{path} check passed\n")


async def single(name: str, checks: Sequence[tuple[str, Check]]) -> web.Response | None:
    """kube's adaptCheckToHandler for the check `name`; None if there is none of that name."""
    for check_name, check in checks:
        if check_name == name:
            reason = await check()
            return _text("ok") if reason is None else _text(f"internal server error: {reason}\n", 500)
    return None
