"""What the API server does to a DaemonSet on create and update (kube's daemonSetStrategy):
the template generation it counts, and input of the wrong shape refused with a 422, never a
traceback."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from services.apiserver.registry.strategy import prepare_create, prepare_update

GENERATION = "deprecated.daemonset.template.generation"


def _ds(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                     **spec}}


def test_template_generation_counts_template_changes_only() -> None:
    stored = prepare_create(R.DAEMONSETS, _ds(), "default")
    assert (stored["metadata"]["generation"], stored["metadata"]["annotations"][GENERATION]) == (1, "1")
    tuned = copy.deepcopy(stored)
    tuned["spec"]["minReadySeconds"] = 5
    tuned["metadata"]["annotations"][GENERATION] = "9"
    tuned = prepare_update(R.DAEMONSETS, tuned, stored, status_only=False)
    assert (tuned["metadata"]["generation"], tuned["metadata"]["annotations"][GENERATION]) == (2, "1")
    replaced = _ds(minReadySeconds=5)  # kubectl replace: no annotation, a new image
    replaced["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    replaced = prepare_update(R.DAEMONSETS, replaced, tuned, status_only=False)
    assert (replaced["metadata"]["generation"], replaced["metadata"]["annotations"][GENERATION]) == (3, "2")


@pytest.mark.parametrize(("spec", "field"), [
    ({"updateStrategy": "RollingUpdate"}, "spec.updateStrategy"),
    ({"updateStrategy": {"rollingUpdate": "x"}}, "spec.updateStrategy.rollingUpdate"),
    ({"updateStrategy": {"rollingUpdate": {"maxSurge": [1]}}}, "spec.updateStrategy.rollingUpdate.maxSurge"),
    ({"revisionHistoryLimit": "10"}, "spec.revisionHistoryLimit"),
], ids=["strategy-not-an-object", "rolling-update-not-an-object", "surge-a-list", "limit-a-string"])
def test_wrong_shapes_are_refused(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as err:
        prepare_create(R.DAEMONSETS, _ds(**spec), "default")
    assert err.value.code == 422
    assert [c.field for c in err.value.causes] == [field]


def test_a_status_of_the_wrong_shape_is_refused() -> None:
    stored = prepare_create(R.DAEMONSETS, _ds(), "default")
    with pytest.raises(ApiError) as err:
        prepare_update(R.DAEMONSETS, {**stored, "status": {"collisionCount": "x"}}, stored, status_only=True)
    assert (err.value.code, [c.field for c in err.value.causes]) == (422, ["status.collisionCount"])
