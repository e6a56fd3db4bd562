"""What every write does to an object before it is stored (services.apiserver.registry.strategy)."""
from __future__ import annotations

import copy

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.registry.strategy import prepare_create, prepare_update


def stored_deployment() -> dict:
    obj = prepare_create(R.DEPLOYMENTS, {
        "metadata": {"name": "web", "finalizers": ["example.com/x"]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}}, "default")
    obj["metadata"]["resourceVersion"] = "5"
    obj["status"] = {"replicas": 1}
    return obj


def test_a_spec_change_counts_a_generation_and_keeps_the_status_and_server_metadata():
    old = stored_deployment()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["status"] = {"replicas": 99}
    new["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    new["metadata"].pop("uid")
    out = prepare_update(R.DEPLOYMENTS, new, old, status_only=False)
    assert out["metadata"]["generation"] == old["metadata"]["generation"] + 1
    assert out["status"] == {"replicas": 1}
    assert out["metadata"]["uid"] == old["metadata"]["uid"]
    assert out["metadata"]["creationTimestamp"] == old["metadata"]["creationTimestamp"]


def test_a_status_write_keeps_everything_but_the_status():
    old = stored_deployment()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 7
    new["metadata"]["labels"] = {"changed": "yes"}
    new["status"] = {"replicas": 2}
    out = prepare_update(R.DEPLOYMENTS, new, old, status_only=True)
    assert out == {**old, "status": {"replicas": 2}}


def test_an_emptied_finalizer_list_is_no_list():
    old = stored_deployment()
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    assert "finalizers" not in prepare_update(R.DEPLOYMENTS, new, old, status_only=False)["metadata"]


@pytest.mark.parametrize("change, code", [
    ({"name": "other"}, 400), ({"uid": "someone-else"}, 409), ({"namespace": "elsewhere"}, 400),
], ids=["name", "uid", "namespace"])
def test_an_update_names_the_stored_object(change, code):
    old = stored_deployment()
    new = copy.deepcopy(old)
    new["metadata"].update(change)
    with pytest.raises(ApiError) as err:
        prepare_update(R.DEPLOYMENTS, new, old, status_only=False)
    assert err.value.code == code
