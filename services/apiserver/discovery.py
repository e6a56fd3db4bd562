"""Discovery documents: /api, /api/v1, /apis, /apis/<group>[/<version>], /version."""
from __future__ import annotations

from typing import Any

from kubecore import resources as R

VERSION_INFO = {
    "major": "1", "minor": "31", "gitVersion": "v1.31.0-minicluster",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "python3.11", "compiler": "cpython",
    "platform": "linux/amd64",
}

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _resource_entries(group: str, version: str) -> list[dict[str, Any]]:
    out = []
    for rt in R.ALL:
        if rt.group != group or rt.version != version:
            continue
        entry: dict[str, Any] = {
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": VERBS,
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
            elif sub == "scale":
                sub_entry.update(kind="Scale", group="autoscaling", version="v1")
            out.append(sub_entry)
    return out


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
