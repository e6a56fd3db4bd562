"""Validation of API objects, one module per API group, as kube-apiserver's
`pkg/apis/<group>/validation/validation.go`:

    meta.py       ObjectMeta (name, labels, annotations) and label maps, for every kind
    core.py       core/v1: Pod (and the pod spec that workloads embed), Node
    service.py    core/v1: Service (types, ports, cluster IPs, traffic policies, LB status)
    secrets.py    core/v1: Secret (data keys, size, the keys each type requires, immutability)
    podnet.py     the pod spec's fields that reach the node: hostname, subdomain, DNS policy
                  and config, hostNetwork and hostPorts
    apps.py       apps/v1: Deployment, ReplicaSet
    statefulset.py  apps/v1: StatefulSet (spec, the fields an update may change, status)
    discovery.py  discovery.k8s.io/v1: EndpointSlice
    endpoints.py  core/v1: Endpoints (subsets, addresses outside the special ranges, ports)
    batch.py      batch/v1: Job, CronJob (the schedule by kube's cron parser, the time zone)
    coordination.py  coordination.k8s.io/v1: Lease
    networking.py    networking.k8s.io/v1: NetworkPolicy

Each `validate_<kind>(obj, old)` returns the causes kube-apiserver would report, in its
order and words (kubectl and the tests compare them); `old` is the stored object on an
update, None on a create. The formats below all of them (DNS labels, qualified names,
ports, IPs) are `kubecore.api.formats`, re-exported here for the callers that read them
under their first home.
"""
from __future__ import annotations

from kubecore.api.formats import (
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    go_bool,
    ipv4_errors,
    label_key_errors,
    label_value_errors,
    port_name_errors,
    port_number_errors,
    qualified_name_errors,
)

__all__ = [
    "dns1035_label_errors", "dns1123_label_errors", "dns1123_subdomain_errors", "go_bool",
    "ipv4_errors", "label_key_errors", "label_value_errors", "port_name_errors",
    "port_number_errors", "qualified_name_errors",
]
