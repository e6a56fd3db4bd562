"""How many requests one client may have in flight, as kube-apiserver's max-in-flight filter
(`server/filters/maxinflight.go`) counts them, but per client rather than for the whole
server: one client holding hundreds of slow requests or watches must not starve the others.

- Requests are read-only (GET, HEAD, OPTIONS: kube's get/list/watch verbs) or mutating,
  each kind with its own limit (kube's --max-requests-inflight 400 and
  --max-mutating-requests-inflight 200), checked when a request arrives: a body still
  trickling in holds its slot.
- Long-running requests (watches; pods/log, pods/exec and the other streaming subresources)
  are not in those counts, as in kube; they have their own limit per client here.
- Over a limit: 429 with `Retry-After: 1`, as kube answers, as a Status "TooManyRequests".

Who a client is: `client_key` (the peer address for now; the authenticated user once
requests carry one). A limit of 0 means none.
"""
from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from kubecore.api.errors import ApiError
from services.apiserver.endpoints.filters import USER

RETRY_AFTER_SECONDS = 1
LONG_RUNNING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/metrics"})


class Kind(enum.Enum):
    READ_ONLY = "readOnly"
    MUTATING = "mutating"
    LONG_RUNNING = "longRunning"


def client_key(request: web.Request) -> str:
    """Whom a request counts against: the authenticated user (kube's priority and fairness
    flows are per user), else the client's address."""
    user = request.get(USER)
    return f"user:{user.name}" if user is not None else f"addr:{request.remote or ''}"


def request_kind(request: web.Request, subresource: str | None) -> Kind:
    watch = request.query.get("watch", "").lower() in ("true", "1")
    if (request.method == "GET" and watch) or subresource in LONG_RUNNING_SUBRESOURCES:
        return Kind.LONG_RUNNING
    return Kind.READ_ONLY if request.method in READ_ONLY_METHODS else Kind.MUTATING


def too_many_requests() -> ApiError:
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": RETRY_AFTER_SECONDS})


@dataclass
class InFlight:
    """The requests each client has in flight, by kind, against per-client limits."""
    limits: dict[Kind, int]
    counts: Counter[tuple[str, Kind]] = field(default_factory=Counter)

    def acquire(self, client: str, kind: Kind) -> bool:
        limit = self.limits.get(kind, 0)
        if limit and self.counts[client, kind] >= limit:
            return False
        self.counts[client, kind] += 1
        return True

    def release(self, client: str, kind: Kind) -> None:
        self.counts[client, kind] -= 1
        if self.counts[client, kind] <= 0:
            del self.counts[client, kind]
