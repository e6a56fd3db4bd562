"""coordination.k8s.io/v1 validation: Lease (kube's ValidateLeaseSpec; the MicroTimes are
checked as they are decoded, `kubecore.api.leases`)."""
from __future__ import annotations

from kubecore.api import formats as f
from kubecore.api.errors import Cause
from kubecore.api.types import Obj

LEASE_STRATEGIES = ("OldestEmulationVersion",)


def _strategy_causes(strategy: str) -> list[Cause]:
    """ValidateCoordinatedLeaseStrategy: a Kubernetes-defined name, or a qualified
    `<domain>/<name>` of one's own."""
    path = "spec.strategy.strategy"  # kube appends "strategy" to the field's own path
    if "/" not in strategy:
        if strategy in LEASE_STRATEGIES:
            return []
        listed = ", ".join(f'"{s}"' for s in LEASE_STRATEGIES)
        return [Cause(path, f"Unsupported value: {f.go_quote(strategy)}: supported values: {listed}",
                      "FieldValueNotSupported")]
    return [Cause(path, f"Invalid value: {f.go_quote(strategy)}: {msg}")
            for msg in f.qualified_name_errors(strategy)]


def validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    duration, transitions = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
    if isinstance(duration, int) and duration <= 0:
        causes.append(Cause("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be "
                            "greater than 0"))
    if isinstance(transitions, int) and transitions < 0:
        causes.append(Cause("spec.leaseTransitions", f"Invalid value: {transitions}: must be "
                            "greater than or equal to 0"))
    strategy = spec.get("strategy")
    if isinstance(strategy, str):
        causes += _strategy_causes(strategy)
    if spec.get("preferredHolder") and not strategy:
        causes.append(Cause("spec.preferredHolder", "Forbidden: may only be specified if "
                            "`strategy` is defined", "FieldValueForbidden"))
    return causes
