"""What the user types (`svc`, `po,svc`, `deploy/web`) to resource types, and REST paths.

Names resolve through the project's resource registry (`kubecore.api.resources`), which is
also what the API server serves, so `svc`, `service`, `services` and `Service` all work
as they do with kubectl.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from kubecore.api import resources as R
from kubecore.api.resources import ResourceType
from minikubectl.errors import CliError


def resolve(name: str) -> ResourceType:
    rt = R.lookup(name)
    if rt is None:
        raise CliError(f'the server doesn\'t have a resource type "{name}"')
    return rt


def resolve_list(text: str) -> list[ResourceType]:
    """`svc,po` -> [services, pods], in the order given, without repeats."""
    out: list[ResourceType] = []
    for part in text.split(","):
        if not part:
            continue
        rt = resolve(part)
        if rt not in out:
            out.append(rt)
    if not out:
        raise CliError("you must specify the type of resource to get")
    return out


@dataclass(frozen=True)
class Request:
    """One kind and the names asked for (none: all of them)."""
    rt: ResourceType
    names: tuple[str, ...] = ()


def parse_targets(args: list[str]) -> list[Request]:
    """kubectl's `TYPE[,TYPE] [NAME...]` or `TYPE/NAME [TYPE/NAME...]`."""
    if not args:
        raise CliError("you must specify the type of resource to get")
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CliError("there is no need to specify a resource type as a separate argument "
                           "when passing arguments in resource/name form")
        by_kind: dict[ResourceType, list[str]] = {}
        for a in args:
            kind, name = a.split("/", 1)
            if not name:
                raise CliError(f"arguments in resource/name form must have a single resource and "
                               f"name: {a}")
            by_kind.setdefault(resolve(kind), []).append(name)
        return [Request(rt, tuple(names)) for rt, names in by_kind.items()]
    kinds = resolve_list(args[0])
    names = tuple(args[1:])
    return [Request(rt, names) for rt in kinds]


def path(rt: ResourceType, namespace: str | None = None, name: str | None = None,
         sub: str | None = None) -> str:
    """The REST path: `/api/v1/namespaces/ns/services/x`, `/apis/apps/v1/deployments`."""
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced and namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{rt.plural}"
    if name is not None:
        base += f"/{quote(name, safe='')}"
        if sub:
            base += f"/{sub}"
    return base
