"""The generic registry store (services.apiserver.registry.store) over an in-memory storage:
what create, update, patch and delete do for any kind, with no etcd and no HTTP."""
from __future__ import annotations

import asyncio

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.registry import namespaces
from services.apiserver.registry.interfaces import SERVER_USER
from services.apiserver.registry.store import APPLY_PATCH, Store
from services.apiserver.registry.validation import FieldValidation
from tests.apiserver.registry.fakes import FakeCache, FakeStorage

SVC = R.SERVICES


def service(name: str, **meta) -> dict:
    return {"metadata": {"name": name, **meta}, "spec": {"ports": [{"port": 80}]}}


@pytest.fixture
async def store() -> Store:
    s = Store(FakeStorage(), {"namespaces": FakeCache()})
    for ns in ("default", "team"):
        await s.create(R.NAMESPACES, {"metadata": {"name": ns}}, None, fields=FieldValidation(),
                       dry_run=False, user=SERVER_USER)
    yield s
    s.namespaces.cancel()


async def create(store: Store, body: dict, *, dry_run: bool = False, fields: FieldValidation | None = None):
    return await store.create(SVC, body, "default", fields=fields or FieldValidation(), dry_run=dry_run,
                              user=SERVER_USER)


async def test_a_create_is_stored_with_the_server_s_metadata(store):
    created = await create(store, service("web", resourceVersion="7", uid="mine"))
    stored = await store.storage.get(SVC, "default", "web")
    assert stored == created
    assert created["metadata"]["uid"] != "mine" and created["metadata"]["resourceVersion"] != "7"
    assert created["metadata"]["namespace"] == "default" and created["kind"] == "Service"


async def test_a_dry_run_create_is_answered_not_stored(store):
    created = await create(store, service("web"), dry_run=True)
    assert created["metadata"]["name"] == "web"
    with pytest.raises(ApiError) as err:
        await store.storage.get(SVC, "default", "web")
    assert err.value.code == 404


@pytest.mark.parametrize("namespace, code", [("nowhere", 404), ("team", 403)], ids=["missing", "terminating"])
async def test_a_create_needs_an_open_namespace(store, namespace, code):
    store.namespaces.terminating.add("team")
    with pytest.raises(ApiError) as err:
        await store.create(SVC, service("web"), namespace, fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    assert err.value.code == code


@pytest.mark.parametrize("directive, code, warnings", [
    ("Strict", 400, []), (None, None, ['unknown field "spec.nope"']), ("Ignore", None, []),
    ("Sloppy", 400, []),
], ids=["strict", "warn-by-default", "ignore", "unknown-directive"])
async def test_unknown_fields_follow_the_field_validation(store, directive, code, warnings):
    fields = FieldValidation(directive)
    body = service("web")
    body["spec"]["nope"] = 1
    try:
        await create(store, body, fields=fields)
        assert code is None
    except ApiError as exc:
        assert exc.code == code
    assert fields.warnings == warnings


async def test_an_update_from_an_old_version_is_a_conflict(store):
    created = await create(store, service("web"))
    await store.update(SVC, "default", "web", service("web", labels={"a": "b"}), status_only=False,
                       fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    stale = service("web", resourceVersion=created["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as err:
        await store.update(SVC, "default", "web", stale, status_only=False, fields=FieldValidation(),
                           dry_run=False, user=SERVER_USER)
    assert err.value.code == 409


async def test_a_delete_without_finalizers_removes_the_object(store):
    await create(store, service("web"))
    deleted = await store.delete(SVC, "default", "web", {}, user=SERVER_USER)
    assert deleted["metadata"]["name"] == "web"
    assert store.storage.objects.get(SVC.key("default", "web")) is None


async def test_a_dry_run_delete_leaves_the_object(store):
    await create(store, service("web"))
    await store.delete(SVC, "default", "web", {"dryRun": ["All"]}, user=SERVER_USER)
    assert (await store.storage.get(SVC, "default", "web"))["metadata"].get("deletionTimestamp") is None


@pytest.mark.parametrize("opts,left", [
    ({"dryRun": ["All"]}, {"web", "db", "other"}),
    ({}, {"other"}),
], ids=["dry-run-deletes-nothing", "deletes-the-matching"])
async def test_a_collection_delete(store, opts, left):
    for name in ("web", "db", "other"):
        await create(store, service(name))
    answered = await store.delete_collection(SVC, "default", lambda o: o["metadata"]["name"] != "other",
                                             opts, user=SERVER_USER)
    assert sorted(o["metadata"]["name"] for o in answered) == ["db", "web"]
    assert {k.rsplit("/", 1)[1] for k in store.storage.objects if "/services/" in k} == left


async def test_finalizers_hold_a_deleted_object_until_the_last_goes(store):
    await create(store, service("held", finalizers=["example.com/wait"]))
    marked = await store.delete(SVC, "default", "held", {}, user=SERVER_USER)
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert (await store.storage.get(SVC, "default", "held"))["metadata"]["finalizers"] == ["example.com/wait"]
    patch = {"metadata": {"finalizers": None}}
    await store.patch(SVC, "default", "held", patch, "application/merge-patch+json", status_only=False,
                      manager=None, fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    assert SVC.key("default", "held") not in store.storage.objects


async def test_an_apply_to_a_missing_object_creates_it(store):
    applied = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"port": 80}]}}
    obj, created = await store.patch(SVC, "default", "web", applied, APPLY_PATCH, status_only=False,
                                     manager="me", fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    assert created and obj["metadata"]["managedFields"][0]["manager"] == "me"
    with pytest.raises(ApiError) as err:
        await store.patch(SVC, "default", "web", applied, APPLY_PATCH, status_only=False,
                          manager=None, fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    assert err.value.code == 400


async def test_delete_collection_takes_what_matches(store):
    for name in ("a", "b", "c"):
        await create(store, service(name))
    deleted = await store.delete_collection(SVC, "default", lambda o: o["metadata"]["name"] != "b", {},
                                            user=SERVER_USER)
    assert [o["metadata"]["name"] for o in deleted] == ["a", "c"]
    assert list(store.storage.objects) == [R.NAMESPACES.key(None, "default"), R.NAMESPACES.key(None, "team"),
                                           SVC.key("default", "b")]


async def test_a_protected_namespace_is_not_deleted(store):
    with pytest.raises(ApiError) as err:
        await store.delete(R.NAMESPACES, None, "default", {}, user=SERVER_USER)
    assert err.value.code == 403


async def test_a_deleted_namespace_is_emptied_then_removed(store, monkeypatch):
    monkeypatch.setattr(namespaces, "NAMESPACE_RETRY_SECONDS", 0.001)
    await store.create(SVC, service("web"), "team", fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    marked = await store.delete(R.NAMESPACES, None, "team", {}, user=SERVER_USER)
    assert marked["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError):
        await store.create(SVC, service("late"), "team", fields=FieldValidation(), dry_run=False, user=SERVER_USER)
    for _ in range(100):
        if R.NAMESPACES.key(None, "team") not in store.storage.objects:
            break
        await asyncio.sleep(0.01)
    assert [k for k in store.storage.objects if "team" in k] == []
    assert "team" not in store.namespaces.terminating
