"""Content negotiation for the `meta.k8s.io` Table and PartialObjectMetadata forms.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io, application/json`:
the first media type the server can produce wins. The cells come from the pure
`kubecore.printers.tables`; this module only reads the request and wraps the result.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from kubecore.api import resources as R
from kubecore.api.errors import bad_request
from kubecore.api.types import Obj
from kubecore.printers import tables

INCLUDE_OBJECT = ("None", "Metadata", "Object")


@dataclass(frozen=True)
class Presentation:
    """How the client wants objects: as a Table, or as PartialObjectMetadata."""
    form: str  # "Table" | "PartialObjectMetadata"
    api_version: str  # meta.k8s.io/v1 or meta.k8s.io/v1beta1
    include_object: str = "Metadata"

    @property
    def content_type(self) -> str:
        group, version = self.api_version.split("/")
        return f"application/json;as={self.form};v={version};g={group}"


def _media_types(accept: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params = {}
        for f in fields[1:]:
            if "=" in f:
                k, v = f.split("=", 1)
                params[k.strip().lower()] = v.strip().strip('"')
        out.append((fields[0].lower(), params))
    return out


def negotiate(request: web.Request) -> Presentation | None:
    """The first acceptable meta.k8s.io form in the Accept header, or None for the
    plain object (also when plain JSON comes first)."""
    for mtype, params in _media_types(request.headers.get("Accept", "")):
        if mtype not in ("application/json", "*/*", "application/*"):
            continue
        form = params.get("as")
        if form is None:
            return None
        if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
            continue
        if form in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList"):
            include = request.query.get("includeObject") or "Metadata"
            if include not in INCLUDE_OBJECT:
                raise bad_request(f'includeObject: Unsupported value: "{include}": supported '
                                  'values: "Metadata", "None", "Object"')
            return Presentation("Table" if form == "Table" else "PartialObjectMetadata",
                                f"meta.k8s.io/{params['v']}", include)
    return None


def present_list(p: Presentation, rt: R.ResourceType, lst: Obj) -> Obj:
    meta = lst.get("metadata") or {}
    if p.form == "Table":
        out = tables.table(rt.kind, lst.get("items") or [], include_object=p.include_object,
                           api_version=p.api_version, resource_version=meta.get("resourceVersion", ""))
        # a Table's ListMeta pages like the list's: kubectl get follows `continue`
        out["metadata"].update({k: meta[k] for k in ("continue", "remainingItemCount") if k in meta})
        return out
    return {"kind": "PartialObjectMetadataList", "apiVersion": p.api_version,
            "metadata": dict(lst.get("metadata") or {}),
            "items": [tables.partial_metadata(o, p.api_version) for o in lst.get("items") or []]}


def present_object(p: Presentation, rt: R.ResourceType, obj: Obj) -> Obj:
    if p.form == "Table":
        return tables.table(rt.kind, [obj], include_object=p.include_object,
                            api_version=p.api_version,
                            resource_version=(obj.get("metadata") or {}).get("resourceVersion", ""))
    return tables.partial_metadata(obj, p.api_version)


def event_renderer(p: Presentation, rt: R.ResourceType) -> Callable[[str, Obj], Obj]:
    """Watch events carry a one-row Table (or PartialObjectMetadata) each."""
    def render(etype: str, obj: Obj) -> Obj:
        if etype == "ERROR" or obj.get("kind") == "Status":
            return obj
        return present_object(p, rt, obj)
    return render
