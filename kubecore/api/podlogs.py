"""`pods/log`'s options (core/v1 PodLogOptions) from the query, checked as kube-apiserver checks them.

The API server validates (`ValidatePodLogOptions`: a 422 `PodLogOptions "web" is invalid: ...`)
and passes the query on; the node agent reads the same options from it and applies them to
the container's log (`services/nodeagent/podlog.py`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from kubecore.api.errors import Cause, bad_request, invalid

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}
AGENT_PARAMS = ("follow", "previous", "timestamps", "tailLines", "limitBytes", "sinceSeconds", "sinceTime")


def _bool(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _int(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value, 10)
    except ValueError:
        raise bad_request(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def parse_time(value: str) -> float:
    """An RFC 3339 time as seconds since the epoch; ValueError when it is not one."""
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed.timestamp()


@dataclass(frozen=True)
class PodLogOptions:
    container: str | None = None
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> PodLogOptions:
        """Raises a 400 ApiError for a value of the wrong type."""
        since_time = None
        if query.get("sinceTime"):
            try:
                since_time = parse_time(query["sinceTime"])
            except ValueError:
                raise bad_request(f'parsing time "{query["sinceTime"]}" as "2006-01-02T15:04:05Z07:00": '
                                  "cannot parse as RFC3339") from None
        return cls(container=query.get("container") or None, follow=_bool(query, "follow"),
                   previous=_bool(query, "previous"), timestamps=_bool(query, "timestamps"),
                   tail_lines=_int(query, "tailLines"), limit_bytes=_int(query, "limitBytes"),
                   since_seconds=_int(query, "sinceSeconds"), since_time=since_time)

    def causes(self) -> list[Cause]:
        """kube's ValidatePodLogOptions."""
        out = []
        if self.tail_lines is not None and self.tail_lines < 0:
            out.append(Cause("tailLines", f"Invalid value: {self.tail_lines}: must be greater than or equal to 0"))
        if self.limit_bytes is not None and self.limit_bytes < 1:
            out.append(Cause("limitBytes", f"Invalid value: {self.limit_bytes}: must be greater than 0"))
        if self.since_seconds is not None and self.since_time is not None:
            out.append(Cause("", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                             "FieldValueForbidden"))
        elif self.since_seconds is not None and self.since_seconds < 1:
            out.append(Cause("sinceSeconds", f"Invalid value: {self.since_seconds}: must be greater than 0"))
        return out

    def check(self, pod_name: str) -> None:
        causes = self.causes()
        if causes:
            raise invalid("PodLogOptions", pod_name, causes)

    def since(self, now: float) -> float | None:
        """The earliest time a line may have to be shown (kubelet's NewLogOptions: the later of both)."""
        since = now - self.since_seconds if self.since_seconds is not None else None
        if self.since_time is not None and (since is None or self.since_time > since):
            since = self.since_time
        return since


def agent_query(query: Mapping[str, str]) -> dict[str, str]:
    """What the API server passes on to the node agent."""
    return {k: query[k] for k in AGENT_PARAMS if k in query}

