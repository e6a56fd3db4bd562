"""The live state a trace reads, fetched through the API server: the API's objects and each
node's network view through the node proxy (`/api/v1/nodes/<node>/proxy/debug/network`), and a
probe from a pod (`.../debug/network/probe`). Shared by `minikubectl trace` and the cluster's
live picture; `requester` is any client with kube's `request(method, path, body=...)`."""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.nettrace.trace import Destination, Trace, World, trace

Obj = dict[str, Any]


class Requester(Protocol):
    async def request(self, method: str, path: str, *, body: Any = None) -> Any: ...


def collection_path(rt: R.ResourceType) -> str:
    return f"/apis/{rt.group}/{rt.version}/{rt.plural}" if rt.group else f"/api/{rt.version}/{rt.plural}"


def node_path(node: str, tail: str) -> str:
    return f"/api/v1/nodes/{quote(node, safe='')}/proxy/{tail}"


async def _items(api: Requester, rt: R.ResourceType) -> list[Obj]:
    answer = await api.request("GET", collection_path(rt))
    return list((answer or {}).get("items") or ())


async def node_view(api: Requester, node: str) -> tuple[Obj | None, str]:
    """(the node agent's view of its network, or None and why not)."""
    try:
        return await api.request("GET", node_path(node, "debug/network")), ""
    except ApiError as exc:
        return None, exc.message


async def gather(api: Requester) -> tuple[World, list[str]]:
    """Pods, Services, EndpointSlices, Nodes and every node's view; -> (world, warnings about
    nodes whose view could not be read)."""
    pods, services, slices, nodes = await asyncio.gather(
        _items(api, R.PODS), _items(api, R.SERVICES), _items(api, R.ENDPOINTSLICES), _items(api, R.NODES))
    names = [str((n.get("metadata") or {}).get("name") or "") for n in nodes]
    views = await asyncio.gather(*(node_view(api, name) for name in names))
    warnings = [f"node {name}: {why}" for name, (view, why) in zip(names, views, strict=True) if view is None]
    world = World(pods=pods, services=services, slices=slices, nodes=nodes,
                  node_views={name: view for name, (view, _) in zip(names, views, strict=True) if view is not None})
    return world, warnings


async def probe(api: Requester, source: Mapping[str, Any], body: Obj) -> Obj:
    """Ask the source pod's node agent to resolve a name and/or connect from inside the pod."""
    meta, node = source.get("metadata") or {}, (source.get("spec") or {}).get("nodeName") or ""
    request = {"namespace": meta.get("namespace"), "pod": meta.get("name"), **body}
    answer: Obj = await api.request("POST", node_path(node, "debug/network/probe"), body=request)
    return answer


def not_probeable(source: Mapping[str, Any], dest: Destination, do_probe: bool) -> str | None:
    """Why no probe can start from `source`, when one is needed (a name to resolve, or asked)."""
    if dest.kind != "dns" and not do_probe:
        return None
    meta = source.get("metadata") or {}
    if not (source.get("status") or {}).get("podIP") or not (source.get("spec") or {}).get("nodeName"):
        return f"pod {meta.get('namespace')}/{meta.get('name')} is not running: no probe can start from it"
    return None


async def traced(api: Requester, world: World, source: Mapping[str, Any], dest: Destination, *, do_probe: bool,
                 warnings: list[str]) -> Trace:
    """The account of one packet, with the probes it needs: the pod's own DNS lookup for a name,
    and with `do_probe` one real connection from the pod, after which the account is told
    again along the endpoint that connection took (its conntrack entry)."""
    if dest.kind == "dns":
        world.dns = (await probe(api, source, {"dns": dest.name})).get("dns")
    account = trace(world, source, dest)
    if not do_probe:
        return account
    host, _, port = account.address.rpartition(":")
    if not host or not port.isdigit():
        warnings.append("no probe: the path breaks before the destination has an address")
        return account
    world.probe = await probe(api, source, {"connect": {"host": host, "port": int(port), "protocol": dest.protocol}})
    return trace(world, source, dest)
