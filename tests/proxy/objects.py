"""Builders for the plain Service / EndpointSlice dicts the API server returns.

Tests describe cluster state with these instead of literal JSON so each case
shows only what matters to it.
"""
from __future__ import annotations

from typing import Any


def service(
    name: str,
    cluster_ip: str,
    ports: list[dict[str, Any]],
    *,
    namespace: str = "default",
    type_: str = "ClusterIP",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"type": type_, "clusterIP": cluster_ip, "ports": ports, "selector": {"app": name}},
    }


def external(svc: dict[str, Any], *, external_ips: list[str] = (), lb_ips: list[str] = (),
             ip_mode: str | None = "VIP") -> dict[str, Any]:
    """`svc` with spec.externalIPs and, for a LoadBalancer, status.loadBalancer.ingress."""
    if external_ips:
        svc["spec"]["externalIPs"] = list(external_ips)
    if lb_ips:
        ingress = [{"ip": ip, **({"ipMode": ip_mode} if ip_mode else {})} for ip in lb_ips]
        svc["status"] = {"loadBalancer": {"ingress": ingress}}
    return svc


def port(
    port_: int,
    *,
    name: str | None = None,
    protocol: str = "TCP",
    target_port: int | str | None = None,
    node_port: int | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {"port": port_, "protocol": protocol, "targetPort": target_port or port_}
    if name is not None:
        result["name"] = name
    if node_port is not None:
        result["nodePort"] = node_port
    return result


def endpoint(
    ip: str,
    *,
    ready: bool | None = True,
    serving: bool | None = None,
    terminating: bool | None = None,
    node: str | None = "node-a",
) -> dict[str, Any]:
    conditions: dict[str, bool] = {}
    if ready is not None:
        conditions["ready"] = ready
    if serving is not None:
        conditions["serving"] = serving
    if terminating is not None:
        conditions["terminating"] = terminating
    result: dict[str, Any] = {"addresses": [ip], "conditions": conditions}
    if node is not None:
        result["nodeName"] = node
    return result


def endpoint_slice(
    service_name: str,
    endpoints: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    *,
    namespace: str = "default",
    name: str | None = None,
    address_type: str = "IPv4",
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": namespace,
            "name": name or f"{service_name}-abcde",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports,
    }


def slice_port(port_: int, *, name: str | None = None, protocol: str = "TCP") -> dict[str, Any]:
    result: dict[str, Any] = {"port": port_, "protocol": protocol}
    if name is not None:
        result["name"] = name
    return result
