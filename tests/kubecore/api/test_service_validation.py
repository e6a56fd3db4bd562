"""Service defaults, validation and type changes as tables, in kube-apiserver's words and
order (SetDefaults_Service, ValidateService, ValidateServiceUpdate, ValidateServiceStatusUpdate,
the service strategy's dropTypeDependentFields and patchAllocatedValues)."""
from __future__ import annotations

import copy

import pytest

from kubecore.api import resources as R
from kubecore.api import servicespec as S
from kubecore.api.types import Obj

INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
DUPLICATE = "FieldValueDuplicate"
UNSUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
             "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                 "'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
PORT_MSG = "must be between 1 and 65535, inclusive"
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def svc(**spec: object) -> Obj:
    return {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], **spec}}


def defaulted(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    R.SERVICES.default(obj)
    return obj


def causes(obj: Obj, old: Obj | None = None) -> list[tuple[str, str, str]]:
    """What a create (or an update from `old`) of `obj` reports, after defaulting as the
    server defaults."""
    new = defaulted(obj)
    if old is not None:
        old = defaulted(old)
        R.carry_over_service_allocations(new, old)
    return [(c.field, c.message, c.reason) for c in R.SERVICES.validate(new, old)]


@pytest.mark.parametrize("obj,old,expected", [
    (svc(selector={"app": "web"}), None, []),
    (svc(type="Balanced"), None,
     [("spec.type", 'Unsupported value: "Balanced": supported values: "ClusterIP", "ExternalName", '
       '"LoadBalancer", "NodePort"', UNSUPPORTED)]),
    (svc(clusterIP="300.1.1.1"), None,
     [("spec.clusterIPs[0]", f'Invalid value: "300.1.1.1": {IP_MSG}', INVALID)]),
    (svc(clusterIP="None", type="NodePort"), None,
     [("spec.clusterIPs[0]", "Invalid value: \"None\": may not be set to 'None' for NodePort services",
       INVALID)]),
    (svc(clusterIP="None", type="LoadBalancer"), None,
     [("spec.clusterIPs[0]", "Invalid value: \"None\": may not be set to 'None' for LoadBalancer "
       "services", INVALID)]),
    (svc(ports=[]), None, [("spec.ports", "Required value", REQUIRED)]),
    (svc(ports=[], clusterIP="None"), None, []),
    (svc(ports=[{"port": 80}, {"name": "Web", "port": 0, "protocol": "HTTP"},
                {"name": "Web", "port": 80, "targetPort": "x--y", "nodePort": 30000}]), None,
     [("spec.ports[0].name", "Required value", REQUIRED),
      ("spec.ports[1].name", f'Invalid value: "Web": {LABEL_MSG}', INVALID),
      ("spec.ports[1].port", f"Invalid value: 0: {PORT_MSG}", INVALID),
      ("spec.ports[1].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
       UNSUPPORTED),
      ("spec.ports[1].targetPort", f"Invalid value: 0: {PORT_MSG}", INVALID),
      ("spec.ports[2].name", f'Invalid value: "Web": {LABEL_MSG}', INVALID),
      ("spec.ports[2].name", 'Duplicate value: "Web"', DUPLICATE),
      ("spec.ports[2].targetPort", 'Invalid value: "x--y": must not contain consecutive hyphens',
       INVALID),
      ("spec.ports[2].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'", FORBIDDEN),
      ("spec.ports[2]", 'Duplicate value: {"port": 80, "protocol": "TCP"}', DUPLICATE)]),
    # kube-dns: the same port on UDP and TCP is two ports
    (svc(ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]), None, []),
    (svc(type="NodePort", ports=[{"name": "a", "port": 53, "protocol": "UDP", "nodePort": 30053},
                                 {"name": "b", "port": 53, "protocol": "TCP", "nodePort": 30053},
                                 {"name": "c", "port": 54, "protocol": "TCP", "nodePort": 30053}]), None,
     [("spec.ports[2].nodePort", "Duplicate value: 30053", DUPLICATE)]),
    (svc(clusterIP="10.96.0.2"), svc(clusterIP="10.96.0.1"),
     [("spec.clusterIPs[0]", 'Invalid value: []string{"10.96.0.2"}: may not change once set', INVALID)]),
    # ExternalName
    ({"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "db.example.com."}},
     None, []),
    ({"metadata": {"name": "db"}, "spec": {"type": "ExternalName"}}, None,
     [("spec.externalName", "Required value", REQUIRED)]),
    ({"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "Db_x",
                                           "clusterIP": "10.96.0.9", "ipFamilyPolicy": "SingleStack"}},
     None,
     [("spec.clusterIPs", "Forbidden: may not be set for ExternalName services", FORBIDDEN),
      ("spec.ipFamilyPolicy", "Forbidden: may not be set for ExternalName services", FORBIDDEN),
      ("spec.externalName", f'Invalid value: "Db_x": {SUBDOMAIN_MSG}', INVALID)]),
    # session affinity
    (svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}}), None,
     [("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
       "Invalid value: 86401: must be greater than 0 and less than 86400", INVALID)]),
    (svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}), None,
     [("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
       "Invalid value: 0: must be greater than 0 and less than 86400", INVALID)]),
    (svc(sessionAffinity="Sticky"), None,
     [("spec.sessionAffinity", 'Unsupported value: "Sticky": supported values: "ClientIP", "None"',
       UNSUPPORTED)]),
    # externalIPs
    (svc(externalIPs=["10.250.0.200", "1.2.3", "127.0.0.1", "0.0.0.0", "169.254.1.1"]), None,
     [("spec.externalIPs[1]", f'Invalid value: "1.2.3": {IP_MSG}', INVALID),
      ("spec.externalIPs[2]", 'Invalid value: "127.0.0.1": may not be in the loopback range '
       "(127.0.0.0/8, ::1/128)", INVALID),
      ("spec.externalIPs[3]", 'Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)', INVALID),
      ("spec.externalIPs[4]", 'Invalid value: "169.254.1.1": may not be in the link-local range '
       "(169.254.0.0/16, fe80::/10)", INVALID)]),
    # traffic policies
    (svc(externalTrafficPolicy="Local"), None,
     [("spec.externalTrafficPolicy", 'Invalid value: "Local": may only be set for '
       "externally-accessible services", INVALID)]),
    (svc(type="NodePort", externalTrafficPolicy="Nearby", internalTrafficPolicy="Node"), None,
     [("spec.externalTrafficPolicy", 'Unsupported value: "Nearby": supported values: "Cluster", "Local"',
       UNSUPPORTED),
      ("spec.internalTrafficPolicy", 'Unsupported value: "Node": supported values: "Cluster", "Local"',
       UNSUPPORTED)]),
    (svc(type="NodePort", healthCheckNodePort=30100), None,
     [("spec.healthCheckNodePort", "Invalid value: 30100: may only be set when `type` is "
       "'LoadBalancer' and `externalTrafficPolicy` is 'Local'", INVALID)]),
    (svc(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=70000), None,
     [("spec.healthCheckNodePort", f"Invalid value: 70000: {PORT_MSG}", INVALID)]),
    # LoadBalancer fields
    (svc(type="LoadBalancer", loadBalancerClass="example.com/lb", allocateLoadBalancerNodePorts=False),
     None, []),
    (svc(allocateLoadBalancerNodePorts=True, loadBalancerClass="example.com/lb"), None,
     [("spec.allocateLoadBalancerNodePorts", "Forbidden: may only be used when `type` is "
       "'LoadBalancer'", FORBIDDEN),
      ("spec.loadBalancerClass", "Forbidden: may only be used when `type` is 'LoadBalancer'",
       FORBIDDEN)]),
    (svc(type="LoadBalancer", loadBalancerClass="b"),
     svc(type="LoadBalancer", loadBalancerClass="a"),
     [("spec.loadBalancerClass", 'Invalid value: "b": may not change once set', INVALID)]),
    (svc(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=30001),
     svc(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=30000),
     [("spec.healthCheckNodePort", "Forbidden: field is immutable", FORBIDDEN)]),
    (svc(ipFamilies=["IPv5"], ipFamilyPolicy="Dual"), None,
     [("spec.ipFamilies[0]", 'Unsupported value: "IPv5": supported values: "IPv4", "IPv6"', UNSUPPORTED),
      ("spec.ipFamilyPolicy", 'Unsupported value: "Dual": supported values: "PreferDualStack", '
       '"RequireDualStack", "SingleStack"', UNSUPPORTED)]),
], ids=["valid", "type", "cluster-ip", "headless-nodeport", "headless-loadbalancer", "no-ports",
        "headless-no-ports", "ports", "same-port-tcp-and-udp", "duplicate-node-port",
        "cluster-ip-immutable", "externalname", "externalname-required", "externalname-fields",
        "affinity-timeout-high", "affinity-timeout-zero", "affinity-unsupported", "external-ips",
        "etp-not-external", "traffic-policies-unsupported", "hc-port-not-lb", "hc-port-range",
        "lb-fields", "lb-fields-not-lb", "lb-class-immutable", "hc-port-immutable", "ip-families"])
def test_service(obj: Obj, old: Obj | None, expected: list[tuple[str, str, str]]) -> None:
    assert causes(obj, old) == expected


@pytest.mark.parametrize("spec,expected", [
    ({"ports": [{"port": 80}]},
     {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "ClusterIP",
      "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}),
    ({"type": "NodePort", "ports": [{"port": 80, "targetPort": 0}]},
     {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "NodePort",
      "sessionAffinity": "None", "internalTrafficPolicy": "Cluster", "externalTrafficPolicy": "Cluster"}),
    ({"type": "LoadBalancer"},
     {"type": "LoadBalancer", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True}),
    ({"externalIPs": ["10.1.1.1"]},
     {"externalIPs": ["10.1.1.1"], "type": "ClusterIP", "sessionAffinity": "None",
      "internalTrafficPolicy": "Cluster", "externalTrafficPolicy": "Cluster"}),
    ({"type": "ExternalName", "externalName": "x.example.com"},
     {"type": "ExternalName", "externalName": "x.example.com", "sessionAffinity": "None"}),
    ({"sessionAffinity": "ClientIP"},
     {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
      "type": "ClusterIP", "internalTrafficPolicy": "Cluster"}),
    ({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}},
     {"sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster"}),
], ids=["clusterip", "nodeport", "loadbalancer", "external-ips", "externalname", "client-ip-affinity",
        "affinity-none-drops-config"])
def test_defaults(spec: Obj, expected: Obj) -> None:
    obj = {"metadata": {"name": "web"}, "spec": spec}
    R.SERVICES.default(obj)
    assert obj["spec"] == expected


def test_load_balancer_ingress_ips_default_to_vip() -> None:
    obj = svc(type="LoadBalancer")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.250.0.200"}, {"hostname": "lb.example"}]}}
    R.SERVICES.default(obj)
    assert obj["status"]["loadBalancer"]["ingress"] == [{"ip": "10.250.0.200", "ipMode": "VIP"},
                                                        {"hostname": "lb.example"}]


@pytest.mark.parametrize("status,stype,expected", [
    ({"loadBalancer": {"ingress": [{"ip": "10.250.0.200", "ipMode": "VIP"}]}}, "LoadBalancer", []),
    ({"loadBalancer": {"ingress": [{"ip": "10.250.0.200"}]}}, "ClusterIP",
     [("status.loadBalancer.ingress", "Forbidden: may only be used when `spec.type` is 'LoadBalancer'",
       FORBIDDEN)]),
    ({"loadBalancer": {"ingress": [{"ip": "10.250.0.300", "ipMode": "VIP"}, {"ip": "10.0.0.1"},
                                   {"ipMode": "Proxy"}, {"ip": "10.0.0.2", "ipMode": "Direct"},
                                   {"hostname": "10.0.0.3"}]}}, "LoadBalancer",
     [("status.loadBalancer.ingress[0].ip", f'Invalid value: "10.250.0.300": {IP_MSG}', INVALID),
      ("status.loadBalancer.ingress[1].ipMode", "Required value: must be specified when `ip` is set",
       REQUIRED),
      ("status.loadBalancer.ingress[2].ipMode", "Forbidden: may not be specified when `ip` is not set",
       FORBIDDEN),
      ("status.loadBalancer.ingress[3].ipMode", 'Unsupported value: "Direct": supported values: '
       '"Proxy", "VIP"', UNSUPPORTED),
      ("status.loadBalancer.ingress[4].hostname", 'Invalid value: "10.0.0.3": must be a DNS name, '
       "not an IP address", INVALID)]),
], ids=["valid", "not-a-load-balancer", "ingress-fields"])
def test_status(status: Obj, stype: str, expected: list[tuple[str, str, str]]) -> None:
    obj = {**svc(type=stype), "status": status}
    got = [(c.field, c.message, c.reason) for c in R.SERVICES.validate_status(obj, obj)]
    assert got == expected


NODEPORT = svc(type="NodePort", clusterIP="10.96.0.7", clusterIPs=["10.96.0.7"],
               ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", externalTrafficPolicy="Cluster",
               ports=[{"name": "http", "port": 80, "nodePort": 30080}])
LB_LOCAL = svc(type="LoadBalancer", clusterIP="10.96.0.8", clusterIPs=["10.96.0.8"],
               externalTrafficPolicy="Local", healthCheckNodePort=30999,
               allocateLoadBalancerNodePorts=True, loadBalancerClass="example.com/lb",
               ports=[{"port": 80, "nodePort": 30081}])
LB_LOCAL["status"] = {"loadBalancer": {"ingress": [{"ip": "10.250.0.200", "ipMode": "VIP"}]}}


def _patched(old: Obj, **spec: object) -> Obj:
    new = copy.deepcopy(old)
    new["spec"].update(spec)
    return new


@pytest.mark.parametrize("new,old,expected", [
    # a patch of the type only: what the new type does not use goes (and is released)
    (_patched(NODEPORT, type="ClusterIP"), NODEPORT,
     {"type": "ClusterIP", "clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"],
      "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"name": "http", "port": 80}]}),
    (_patched(NODEPORT, type="ExternalName", externalName="db.example.com"), NODEPORT,
     {"type": "ExternalName", "externalName": "db.example.com", "ports": [{"name": "http", "port": 80}]}),
    (_patched(LB_LOCAL, type="NodePort"), LB_LOCAL,
     {"type": "NodePort", "clusterIP": "10.96.0.8", "clusterIPs": ["10.96.0.8"],
      "externalTrafficPolicy": "Local", "ports": [{"port": 80, "nodePort": 30081}]}),
    # a manifest applied again: what was allocated stays
    (svc(type="NodePort", ports=[{"name": "http", "port": 80}]), NODEPORT,
     {"type": "NodePort", "clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"],
      "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
    (svc(type="LoadBalancer", externalTrafficPolicy="Local", ports=[{"port": 80}]), LB_LOCAL,
     {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "clusterIP": "10.96.0.8",
      "clusterIPs": ["10.96.0.8"], "healthCheckNodePort": 30999, "ports": [{"port": 80, "nodePort": 30081}]}),
], ids=["nodeport-to-clusterip", "nodeport-to-externalname", "lb-to-nodeport", "reapply-nodeport",
        "reapply-lb"])
def test_type_changes(new: Obj, old: Obj, expected: Obj) -> None:
    R.carry_over_service_allocations(new, old)
    assert new["spec"] == expected
    if expected["type"] != "LoadBalancer":
        assert new["status"] == {"loadBalancer": {}}


@pytest.mark.parametrize("spec,cluster_ip,node_ports,hc", [
    ({"type": "ClusterIP"}, True, False, False),
    ({"type": "ExternalName"}, False, False, False),
    ({"type": "NodePort"}, True, True, False),
    ({"type": "LoadBalancer"}, True, True, False),
    ({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False}, True, False, False),
    ({"type": "LoadBalancer", "externalTrafficPolicy": "Local"}, True, True, True),
    ({"type": "NodePort", "externalTrafficPolicy": "Local"}, True, True, False),
], ids=["clusterip", "externalname", "nodeport", "lb", "lb-no-node-ports", "lb-local", "nodeport-local"])
def test_what_each_type_needs(spec: Obj, cluster_ip: bool, node_ports: bool, hc: bool) -> None:
    obj = {"spec": spec}
    assert (S.needs_cluster_ip(obj), S.allocates_node_ports(obj),
            S.needs_health_check_node_port(obj)) == (cluster_ip, node_ports, hc)
