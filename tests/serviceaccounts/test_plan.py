"""What a namespace needs: ServiceAccounts to create and the root CA ConfigMap write."""
from __future__ import annotations

import pytest

from services.serviceaccounts.plan import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    missing_service_accounts,
    root_ca_configmap,
)

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ACTIVE = {"metadata": {"name": "ns"}, "status": {"phase": "Active"}}
TERMINATING = {"metadata": {"name": "ns", "deletionTimestamp": "2026-01-01T00:00:00Z"},
               "status": {"phase": "Terminating"}}
GOOD_CM = {"metadata": {"name": "kube-root-ca.crt", "namespace": "ns", "resourceVersion": "5",
                        "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}}, "data": {"ca.crt": CA}}


@pytest.mark.parametrize(("namespace", "existing", "wanted"), [
    (ACTIVE, set(), ["default"]),
    (ACTIVE, {"default", "other"}, []),
    (TERMINATING, set(), []),
    (None, set(), []),
], ids=["missing", "present", "terminating", "namespace-gone"])
def test_service_accounts(namespace, existing, wanted) -> None:
    assert [sa["metadata"]["name"] for sa in missing_service_accounts(namespace, existing)] == wanted


@pytest.mark.parametrize(("namespace", "current", "outcome"), [
    (ACTIVE, None, "create"),
    (ACTIVE, GOOD_CM, None),
    (ACTIVE, {**GOOD_CM, "data": {"ca.crt": "tampered"}}, "update"),
    (ACTIVE, {**GOOD_CM, "data": {"ca.crt": CA, "extra": "x"}}, "update"),
    (ACTIVE, {**GOOD_CM, "metadata": {"name": "kube-root-ca.crt", "namespace": "ns", "resourceVersion": "5"}},
     "update"),
    (TERMINATING, None, None),
], ids=["missing", "as-it-should-be", "other-ca", "extra-key", "no-description", "terminating"])
def test_root_ca_configmap(namespace, current, outcome) -> None:
    write = root_ca_configmap(namespace, current, CA)
    if outcome is None:
        assert write is None
        return
    assert write is not None and write.create == (outcome == "create")
    assert write.obj["data"] == {"ca.crt": CA}
    assert write.obj["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION
    if current is not None:  # an update keeps the version it read: a compare-and-swap
        assert write.obj["metadata"]["resourceVersion"] == current["metadata"].get("resourceVersion")
