"""Secrets through the generic registry store (no etcd, no HTTP): what is stored for a
create, an update and a patch, as kube-apiserver's Secret strategy keeps it."""
from __future__ import annotations

import base64

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.registry.interfaces import SERVER_USER
from services.apiserver.registry.store import Store
from services.apiserver.registry.validation import FieldValidation
from tests.apiserver.registry.fakes import FakeCache, FakeStorage


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
async def store() -> Store:
    s = Store(FakeStorage(), {"namespaces": FakeCache()})
    await s.create(R.NAMESPACES, {"metadata": {"name": "default"}}, None, fields=FieldValidation(),
                   dry_run=False, user=SERVER_USER)
    yield s
    s.namespaces.cancel()


async def create(store: Store, body: dict) -> dict:
    return await store.create(R.SECRETS, body, "default", fields=FieldValidation("Strict"),
                              dry_run=False, user=SERVER_USER)


async def test_string_data_is_merged_into_data_and_never_stored(store):
    created = await create(store, {"metadata": {"name": "s"}, "data": {"a": b64("1")},
                                   "stringData": {"b": "two"}})
    stored = await store.storage.get(R.SECRETS, "default", "s")
    assert stored == created
    assert stored["data"] == {"a": b64("1"), "b": b64("two")}
    assert "stringData" not in stored and stored["type"] == "Opaque"


async def test_a_patch_with_string_data_overrides_the_stored_value(store):
    await create(store, {"metadata": {"name": "s"}, "data": {"a": b64("1")}})
    patched, _ = await store.patch(R.SECRETS, "default", "s", {"stringData": {"a": "new"}},
                                   "application/merge-patch+json", status_only=False, manager=None,
                                   fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    assert patched["data"] == {"a": b64("new")} and "stringData" not in patched


async def test_an_immutable_secret_keeps_its_data(store):
    created = await create(store, {"metadata": {"name": "s"}, "data": {"a": b64("1")},
                                   "immutable": True})
    body = {**created, "data": {"a": b64("2")}}
    with pytest.raises(ApiError) as err:
        await store.update(R.SECRETS, "default", "s", body, status_only=False,
                           fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    assert err.value.code == 422
    assert err.value.message == ('Secret "s" is invalid: data: Forbidden: field is immutable when '
                                 '`immutable` is set')
    assert (await store.storage.get(R.SECRETS, "default", "s"))["data"] == {"a": b64("1")}


@pytest.mark.parametrize("body, code", [
    ({"metadata": {"name": "s"}, "data": {"a": "not base64!"}}, 400),
    ({"metadata": {"name": "s"}, "data": {"a": 1}}, 422),
    ({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"}, 422),
    ({"metadata": {"name": "s"}, "dat": {}}, 400),
], ids=["bad-base64", "value-not-a-string", "tls-without-keys", "unknown-field-strict"])
async def test_bad_secrets_are_refused_and_nothing_is_stored(store, body, code):
    with pytest.raises(ApiError) as err:
        await create(store, body)
    assert err.value.code == code
    assert not [k for k in store.storage.objects if k.startswith("/registry/secrets/")]
