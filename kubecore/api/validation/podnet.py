"""core/v1 pod spec fields that reach the node's network setup and the pod's files: hostname and
subdomain (the pod's /etc/hostname and /etc/hosts, its DNS name), dnsPolicy and dnsConfig (its
/etc/resolv.conf), hostNetwork and hostPorts (ports bound on the node).

These are the rules of kube-apiserver's ValidatePodSpec for those fields, in its words and field
paths. They matter beyond compatibility: a newline in a hostname would otherwise become a line
of the pod's hosts file, and a 70-character hostname a DNS name no resolver can build.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.types import Obj

DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
# Limits from the C library's resolver, as kube-apiserver has them (1.28 and later).
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048


def _format_causes(path: str, value: Any, check: Callable[[str], list[str]]) -> list[Cause]:
    if not isinstance(value, str):
        return [Cause(path, f"Invalid value: {value!r}: must be a string")]
    return [Cause(path, f"Invalid value: {f.go_quote(value)}: {msg}") for msg in check(value)]


def _go_list(values: list[Any]) -> str:
    """A []string as Go's %v prints it in a field.Invalid message."""
    return "[]string{" + ", ".join(f.go_quote(str(v)) for v in values) + "}"


def hostname_causes(spec: Obj, path: str) -> list[Cause]:
    """spec.hostname and spec.subdomain: each a DNS-1123 label when set."""
    causes: list[Cause] = []
    for name in ("hostname", "subdomain"):
        if spec.get(name):
            causes += _format_causes(f"{path}.{name}", spec[name], f.dns1123_label_errors)
    return causes


def dns_policy_causes(spec: Obj, path: str) -> list[Cause]:
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if policy == "":
        return [Cause(f"{path}.dnsPolicy", "Required value", "FieldValueRequired")]
    if policy not in DNS_POLICIES:
        return [Cause(f"{path}.dnsPolicy", f'Unsupported value: "{policy}": supported values: '
                      + ", ".join(f'"{p}"' for p in DNS_POLICIES), "FieldValueNotSupported")]
    return []


def dns_config_causes(spec: Obj, path: str) -> list[Cause]:
    """dnsConfig: required (with a nameserver) under dnsPolicy None; at most 3 nameservers, each
    an IP; at most 32 search domains of 2048 characters in all, each a DNS subdomain (a final
    dot allowed); every option named."""
    path = f"{path}.dnsConfig"
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            return [Cause(path, "Required value: must provide `dnsConfig` when `dnsPolicy` is None",
                          "FieldValueRequired")]
        if not config.get("nameservers"):
            return [Cause(f"{path}.nameservers", "Required value: must provide at least one DNS "
                          "nameserver when `dnsPolicy` is None", "FieldValueRequired")]
    if config is None:
        return []
    if not isinstance(config, dict):
        return [Cause(path, "Invalid value: must be an object")]
    return _nameserver_causes(path, config.get("nameservers") or []) + \
        _search_causes(path, config.get("searches") or []) + \
        _option_causes(path, config.get("options") or [])


def _nameserver_causes(path: str, nameservers: Any) -> list[Cause]:
    if not isinstance(nameservers, list):
        return [Cause(f"{path}.nameservers", "Invalid value: must be a list of strings")]
    causes = []
    if len(nameservers) > MAX_DNS_NAMESERVERS:
        causes.append(Cause(f"{path}.nameservers", f"Invalid value: {_go_list(nameservers)}: must not "
                            f"have more than {MAX_DNS_NAMESERVERS} nameservers"))
    for i, ns in enumerate(nameservers):
        if not isinstance(ns, str) or f.ip_errors(ns):
            causes.append(Cause(f"{path}.nameservers[{i}]", f"Invalid value: {f.go_quote(str(ns))}: must be a "
                                "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    return causes


def _search_causes(path: str, searches: Any) -> list[Cause]:
    if not isinstance(searches, list) or not all(isinstance(s, str) for s in searches):
        return [Cause(f"{path}.searches", "Invalid value: must be a list of strings")]
    causes = []
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        causes.append(Cause(f"{path}.searches", f"Invalid value: {_go_list(searches)}: must not have "
                            f"more than {MAX_DNS_SEARCH_PATHS} search paths"))
    if len(" ".join(searches)) > MAX_DNS_SEARCH_LIST_CHARS:
        causes.append(Cause(f"{path}.searches", f"Invalid value: {_go_list(searches)}: must not have "
                            f"more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in "
                            "the search list"))
    for i, search in enumerate(searches):
        domain = search.removesuffix(".")
        causes += [Cause(f"{path}.searches[{i}]", f"Invalid value: {f.go_quote(domain)}: {msg}")
                   for msg in f.dns1123_subdomain_errors(domain)]
    return causes


def _option_causes(path: str, options: Any) -> list[Cause]:
    if not isinstance(options, list):
        return [Cause(f"{path}.options", "Invalid value: must be a list of objects")]
    return [Cause(f"{path}.options[{i}]", "Required value: must not be empty", "FieldValueRequired")
            for i, option in enumerate(options) if not isinstance(option, dict) or not option.get("name")]


def host_port_conflict_causes(containers: list[Obj], path: str) -> list[Cause]:
    """No two ports of the pod's containers may claim the same hostPort, protocol and hostIP."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        for j, port in enumerate(container.get("ports") or []):
            host_port = port.get("hostPort")
            if not host_port:
                continue
            key = f'{port.get("protocol", "TCP")}/{port.get("hostIP", "")}/{host_port}'
            if key in seen:
                causes.append(Cause(f"{path}.containers[{i}].ports[{j}].hostPort",
                                    f'Duplicate value: "{key}"', "FieldValueDuplicate"))
            seen.add(key)
    return causes


def host_network_causes(spec: Obj, path: str, *, is_pod: bool) -> list[Cause]:
    """With hostNetwork a container's port is the node's port: hostPort must equal containerPort.
    A template may leave hostPort out (the Pod's defaults fill it in); a Pod may not."""
    if not spec.get("hostNetwork"):
        return []
    causes = []
    for i, container in enumerate(spec.get("containers") or []):
        for j, port in enumerate(container.get("ports") or []):
            host_port, container_port = port.get("hostPort") or 0, port.get("containerPort")
            if (is_pod or host_port != 0) and host_port != container_port:
                causes.append(Cause(f"{path}.containers[{i}].ports[{j}].hostPort",
                                    f"Invalid value: {host_port}: must match `containerPort` when "
                                    "`hostNetwork` is true"))
    return causes
