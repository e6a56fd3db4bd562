"""The environment kubelet gives every container about Services (pkg/kubelet/envvars and
kubelet_pods.go's getServiceEnvVarMap): for the `kubernetes` Service of the default namespace
always, and for every Service of the pod's namespace unless `enableServiceLinks: false`,
`<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT` (and one per named port) and the Docker link
variables `<NAME>_PORT`, `<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]`. Services without a
cluster IP (headless) give none. The container's own `env` is laid over these."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubecore.api.types import Obj

MASTER_SERVICES = frozenset({"kubernetes"})


def _name(text: str) -> str:
    return text.replace("-", "_").upper()


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _ip_set(svc: Obj) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def service_vars(svc: Obj) -> dict[str, str]:
    """envvars.FromServices for one Service."""
    spec = svc.get("spec") or {}
    ip, ports = spec["clusterIP"], [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    prefix = _name(svc["metadata"]["name"])
    out = {f"{prefix}_SERVICE_HOST": ip}
    if ports:
        out[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
    for p in ports:
        if p.get("name"):
            out[f"{prefix}_SERVICE_PORT_{_name(p['name'])}"] = str(p.get("port"))
    for i, p in enumerate(ports):
        proto = str(p.get("protocol") or "TCP")
        url = f"{proto.lower()}://{_host_port(ip, p.get('port', 0))}"
        if i == 0:
            out[f"{prefix}_PORT"] = url
        port_prefix = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
        out.update({port_prefix: url, f"{port_prefix}_PROTO": proto.lower(),
                    f"{port_prefix}_PORT": str(p.get("port")), f"{port_prefix}_ADDR": ip})
    return out


def service_env(pod: Mapping[str, Any], services: Iterable[Obj]) -> dict[str, str]:
    """getServiceEnvVarMap: the variables of the master Services and, with service links, the
    pod's namespace's Services (one of the same name there wins)."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks") is not False
    chosen: dict[str, Obj] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        name = meta.get("name")
        if not name or not _ip_set(svc):
            continue
        if meta.get("namespace") == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif meta.get("namespace") == namespace and links:
            chosen[name] = svc
    out: dict[str, str] = {}
    for svc in chosen.values():
        out.update(service_vars(svc))
    return out
