"""Strict decoding: which fields the models report as unknown."""
from __future__ import annotations

import pytest

from kubecore.api import models


@pytest.mark.parametrize("model,obj,unknown", [
    (models.Service, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
                      "spec": {"ports": [{"port": 80, "targetPort": "http"}], "ipFamilyPolicy": "SingleStack",
                               "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}},
                      "status": {"loadBalancer": {}}}, []),
    (models.Service, {"spec": {"bogusField": 1}}, ["spec.bogusField"]),
    (models.Service, {"spec": {"ports": [{"port": 80}, {"port": 81, "prot": "TCP"}]}},
     ["spec.ports[1].prot"]),
    (models.Service, {"metadata": {"name": "a", "lables": {}}, "extra": 1}, ["metadata.lables", "extra"]),
    (models.Pod, {"spec": {"containers": [{"name": "c", "image": "i", "volumeMounts": [{"x": 1}],
                                           "ports": [{"containerPort": 1, "hostport": 2}]}],
                           "tolerations": [{"operator": "Exists"}]}},
     ["spec.containers[0].ports[0].hostport"]),
    (models.Pod, {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "valu": "1"}]}]}},
     ["spec.containers[0].env[0].valu"]),
    (models.Deployment, {"spec": {"selector": {"matchLabels": {}}, "replica": 2,
                                  "template": {"metadata": {"labls": {}}, "spec": {"containers": []}}}},
     ["spec.replica", "spec.template.metadata.labls"]),
    # models that do not list every field let anything through
    (models.Node, {"spec": {"providerID": "x"}, "status": {"anything": 1}}, []),
    (models.Pod, {"spec": {"containers": [{"name": "c", "readinessProbe": {"grpc": {"port": 1}}}]}}, []),
], ids=["service-ok", "service-spec", "service-port", "metadata-and-top", "container-port",
        "env", "deployment", "node-open", "probe-open"])
def test_unknown_fields(model, obj, unknown):
    assert models.unknown_fields(model, obj) == unknown
