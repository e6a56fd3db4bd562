"""The checks a write makes against the stored object inside its etcd transaction: the
resourceVersion a client sent, a DELETE's preconditions, a sweep's "unchanged since"."""
from __future__ import annotations

from kubecore.api import resources as R
from kubecore.api.errors import bad_request, conflict
from kubecore.api.types import Obj
from services.apiserver.registry.interfaces import Precondition


def check_resource_version(rt: R.ResourceType, wanted: str | None, current: Obj) -> None:
    """An update that names a resourceVersion applies only to that version (409 else)."""
    if wanted and wanted != current["metadata"]["resourceVersion"]:
        raise conflict(rt.plural, current["metadata"]["name"],
                       "the object has been modified; please apply your changes to the latest "
                       "version and try again", rt.group)


def delete_preconditions(rt: R.ResourceType, opts: Obj) -> Precondition:
    """DeleteOptions.preconditions (uid, resourceVersion) as a check of the stored object."""
    pre = opts.get("preconditions") or {}

    def check(current: Obj) -> None:
        meta = current["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise conflict(rt.plural, meta["name"], f"Precondition failed: UID in precondition: "
                           f"{pre['uid']}, UID in object meta: {meta.get('uid')}", rt.group)
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise conflict(rt.plural, meta["name"], "Precondition failed: ResourceVersion in "
                           f"precondition: {pre['resourceVersion']}, ResourceVersion in object "
                           f"meta: {meta.get('resourceVersion')}", rt.group)
    return check


def unchanged_since(resource_version: str) -> Precondition:
    """A delete precondition for the sweeps: the object is as they saw it."""
    def check(current: Obj) -> None:
        if current["metadata"]["resourceVersion"] != resource_version:
            raise bad_request("changed")
    return check
