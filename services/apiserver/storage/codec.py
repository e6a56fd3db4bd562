"""An object as an etcd value and back, for one resource: its JSON without
`metadata.resourceVersion` (the resourceVersion a client sees is the key's mod revision),
through the resource's transformer (`transformers`: plain JSON, or encrypted at rest as
`--encryption-provider-config` says). Every read of an object from etcd goes through
`ValueCodec.decode` (the store's get, list, pages, updates and deletes, the watch cache's
list and events), so none can hand out, or trip over, a sealed value."""
from __future__ import annotations

from kubecore.api import jsonwire
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from services.apiserver.storage.transformers import IDENTITY, Transformer, TransformError


def encode(obj: Obj) -> bytes:
    """The object's plain JSON as stored (before any transformer)."""
    meta = obj.get("metadata") or {}
    if "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return jsonwire.dumps(obj)


def decode(value: bytes, mod_revision: int) -> Obj:
    """An object from its plain JSON, at the revision it was written."""
    obj: Obj = jsonwire.loads_stored(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
    return obj


def unreadable(key: str, err: TransformError) -> ApiError:
    """kube-apiserver's answer for a value it cannot open (storage.NewInternalError)."""
    detail = f'unable to transform key "{key}": {err}'
    return ApiError(500, "InternalError", f"Internal error occurred: {detail}",
                    {"causes": [{"message": detail}]})


class ValueCodec:
    """Objects of one resource to etcd values and back."""

    def __init__(self, transformer: Transformer = IDENTITY) -> None:
        self.transformer = transformer

    def plain(self, obj: Obj) -> bytes:
        return encode(obj)

    def seal(self, key: str, plain: bytes) -> bytes:
        return self.transformer.to_storage(plain, key.encode())

    def to_storage(self, key: str, obj: Obj) -> bytes:
        return self.seal(key, encode(obj))

    def open(self, key: str, value: bytes, mod_revision: int) -> tuple[Obj, bool]:
        """-> (the object, whether it was written under an older key or provider); a 500
        ApiError naming the key when no transformer opens it."""
        try:
            plain, stale = self.transformer.from_storage(value, key.encode())
        except TransformError as exc:
            raise unreadable(key, exc) from exc
        return decode(plain, mod_revision), stale

    def decode(self, key: str, value: bytes, mod_revision: int) -> Obj:
        return self.open(key, value, mod_revision)[0]


PLAIN = ValueCodec()
