"""Discovery documents: /api, /api/v1, /apis, /apis/<group>[/<version>], /version.

/api and /apis come in two forms: the aggregated `apidiscovery.k8s.io/v2`
APIGroupDiscoveryList (every resource of every version in one document, what kubectl
1.26+ asks for first) and the older APIVersions / APIGroupList, whose resources are
then read from one APIResourceList per group version.
"""
from __future__ import annotations

from typing import Any

from kubecore.api import resources as R

VERSION_INFO = {
    "major": "1", "minor": "31", "gitVersion": "v1.31.0-minicluster",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "python3.11", "compiler": "cpython",
    "platform": "linux/amd64",
}

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def verbs(rt: R.ResourceType) -> list[str]:
    """A review is only ever created; every stored kind takes every verb."""
    return ["create"] if rt in R.REVIEWS else VERBS


def _resource_entries(group: str, version: str) -> list[dict[str, Any]]:
    out = []
    for rt in R.SERVED:
        if rt.group != group or rt.version != version:
            continue
        entry: dict[str, Any] = {
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": verbs(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        out.append(entry)
        for sub in rt.subresources:
            sub_entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "",
                                         "namespaced": rt.namespaced, "kind": rt.kind,
                                         "verbs": ["get", "patch", "update"]}
            if sub == "binding":
                sub_entry.update(kind="Binding", verbs=["create"])
            elif sub in ("log", "exec"):
                sub_entry.update(kind="Pod", verbs=["get"] if sub == "log" else ["create", "get"])
            elif sub == "proxy":
                sub_entry.update(kind="NodeProxyOptions", verbs=PROXY_VERBS)
            elif sub in CONNECT_KINDS:
                sub_entry.update(kind=CONNECT_KINDS[sub], verbs=["create", "get"])
            elif sub == "token":
                sub_entry.update(kind="TokenRequest", group="authentication.k8s.io", version="v1",
                                 verbs=["create"])
            elif sub == "scale":
                sub_entry.update(kind="Scale", group="autoscaling", version="v1")
            out.append(sub_entry)
    return out


# pods/attach and pods/portforward, with the option kinds kube-apiserver's discovery names
CONNECT_KINDS = {"attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}
PROXY_VERBS = ["create", "delete", "get", "patch", "update"]


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def resource_list(group: str, version: str) -> dict[str, Any]:
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": _resource_entries(group, version)}


def api_group(group: str) -> dict[str, Any] | None:
    versions = R.groups().get(group)
    if not versions:
        return None
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs,
            "preferredVersion": vs[0]}


def api_group_list() -> dict[str, Any]:
    groups = []
    for g in R.groups():
        grp = api_group(g)
        assert grp is not None
        grp.pop("kind")
        grp.pop("apiVersion")
        groups.append(grp)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


# --- aggregated discovery (apidiscovery.k8s.io/v2) ---------------------------------------

AGGREGATED_VERSIONS = ("v2", "v2beta1")


def aggregated_version(accept: str) -> str | None:
    """The apidiscovery version to answer with, if the client's first acceptable media
    type is the aggregated form; None for the older documents."""
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0] not in ("application/json", "*/*", "application/*"):
            continue
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if "as" not in params:
            return None
        if (params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io"
                and params.get("v") in AGGREGATED_VERSIONS):
            return params["v"]
    return None


def aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def _subresource_entry(rt: R.ResourceType, sub: str) -> dict[str, Any]:
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    verbs = ["get", "patch", "update"]
    if sub == "binding":
        kind, verbs = {"group": "", "version": "v1", "kind": "Binding"}, ["create"]
    elif sub == "log":
        verbs = ["get"]
    elif sub == "exec":
        verbs = ["create", "get"]
    elif sub in CONNECT_KINDS:
        kind, verbs = {"group": "", "version": "v1", "kind": CONNECT_KINDS[sub]}, ["create", "get"]
    elif sub == "proxy":
        kind, verbs = {"group": "", "version": "v1", "kind": "NodeProxyOptions"}, PROXY_VERBS
    elif sub == "token":
        kind, verbs = {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}, ["create"]
    elif sub == "scale":
        kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    return {"subresource": sub, "responseKind": kind, "verbs": verbs}


def _aggregated_resource(rt: R.ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural, "singularResource": rt.singular,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster", "verbs": verbs(rt),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    if rt.subresources:
        entry["subresources"] = [_subresource_entry(rt, s) for s in rt.subresources]
    return entry


def _group_discovery(group: str, versions: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [_aggregated_resource(rt) for rt in R.SERVED
                                        if rt.group == group and rt.version == v]}
                         for v in versions]}


def aggregated(core: bool, version: str = "v2") -> dict[str, Any]:
    """/api (core=True: the legacy group "") or /apis (every named group)."""
    items = ([_group_discovery("", ["v1"])] if core
             else [_group_discovery(g, vs) for g, vs in R.groups().items()])
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}
