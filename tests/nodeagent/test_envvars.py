"""kubelet's Service environment variables, as a table."""
from __future__ import annotations

import pytest

from services.nodeagent.envvars import service_env


def svc(name: str, ns: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": list(ports)}}


KUBERNETES = svc("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})
KUBERNETES_VARS = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}
MY_SVC = svc("my-svc", "shop", "10.96.0.20", {"port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 53,
                                                                              "protocol": "UDP"})
MY_SVC_VARS = {
    "MY_SVC_SERVICE_HOST": "10.96.0.20", "MY_SVC_SERVICE_PORT": "8080", "MY_SVC_SERVICE_PORT_DNS": "53",
    "MY_SVC_PORT": "tcp://10.96.0.20:8080",
    "MY_SVC_PORT_8080_TCP": "tcp://10.96.0.20:8080", "MY_SVC_PORT_8080_TCP_PROTO": "tcp",
    "MY_SVC_PORT_8080_TCP_PORT": "8080", "MY_SVC_PORT_8080_TCP_ADDR": "10.96.0.20",
    "MY_SVC_PORT_53_UDP": "udp://10.96.0.20:53", "MY_SVC_PORT_53_UDP_PROTO": "udp",
    "MY_SVC_PORT_53_UDP_PORT": "53", "MY_SVC_PORT_53_UDP_ADDR": "10.96.0.20",
}


def pod(ns: str, **spec) -> dict:
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


@pytest.mark.parametrize(("the_pod", "services", "expected"), [
    (pod("shop"), [KUBERNETES], KUBERNETES_VARS),
    (pod("shop"), [KUBERNETES, MY_SVC], {**KUBERNETES_VARS, **MY_SVC_VARS}),
    (pod("shop", enableServiceLinks=False), [KUBERNETES, MY_SVC], KUBERNETES_VARS),
    (pod("other"), [KUBERNETES, MY_SVC], KUBERNETES_VARS),
    (pod("shop"), [KUBERNETES, svc("headless", "shop", "None", {"port": 80})], KUBERNETES_VARS),
    (pod("shop"), [], {}),
], ids=["master-service", "namespace-links", "links-off", "other-namespace", "headless", "none-yet"])
def test_service_env(the_pod, services, expected) -> None:
    assert service_env(the_pod, services) == expected
