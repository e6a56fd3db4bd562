"""Service types against the real API server and etcd: what each type claims (cluster IP,
node ports, health check node port), what a type change claims and releases in the same
write, and the LoadBalancer status subresource."""
from __future__ import annotations

from tests.apiserver.test_clusterip import etcd_keys

SVC = "/api/v1/namespaces/default/services"
MERGE = "application/merge-patch+json"
IPS, PORTS = "/registry/ranges/serviceips/", "/registry/ranges/servicenodeports/"


def claims(etcd, prefix: str) -> set[int]:
    return {int(k.rsplit("/", 1)[1], 16) for k in etcd_keys(etcd.endpoint, prefix)}


def ip_value(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


async def test_externalname_claims_nothing_and_switches_to_clusterip_and_back(etcd, http):
    before = claims(etcd, IPS)
    code, svc = await http.post(SVC, {"metadata": {"name": "db"},
                                      "spec": {"type": "ExternalName", "externalName": "db.example.com"}})
    assert code == 201, svc
    assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(svc["spec"])
    assert claims(etcd, IPS) == before
    code, svc = await http.patch(f"{SVC}/db", {"spec": {"type": "ClusterIP", "externalName": None,
                                                        "ports": [{"port": 5432}]}}, MERGE)
    assert code == 200, svc
    ip = svc["spec"]["clusterIP"]
    assert svc["spec"]["clusterIPs"] == [ip] and svc["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert claims(etcd, IPS) == before | {ip_value(ip)}
    code, svc = await http.patch(f"{SVC}/db", {"spec": {"type": "ExternalName",
                                                        "externalName": "db.example.com"}}, MERGE)
    assert code == 200, svc
    assert "clusterIP" not in svc["spec"] and "ipFamilies" not in svc["spec"]
    assert claims(etcd, IPS) == before


async def test_externalname_refused_without_name_or_with_an_ip(http):
    code, status = await http.post(SVC, {"metadata": {"name": "db"}, "spec": {"type": "ExternalName"}})
    assert code == 422 and "spec.externalName: Required value" in status["message"]
    code, status = await http.post(SVC, {"metadata": {"name": "db"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.com", "clusterIP": "10.96.3.3"}})
    assert code == 422, status
    assert "spec.clusterIPs: Forbidden: may not be set for ExternalName services" in status["message"]


async def test_loadbalancer_node_ports_health_check_port_and_release_on_type_change(etcd, http):
    before = claims(etcd, PORTS)
    code, svc = await http.post(SVC, {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "externalTrafficPolicy": "Local",
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})
    assert code == 201, svc
    spec = svc["spec"]
    assert spec["allocateLoadBalancerNodePorts"] is True and spec["internalTrafficPolicy"] == "Cluster"
    udp, tcp = (p["nodePort"] for p in spec["ports"])
    assert udp == tcp, "53/UDP and 53/TCP share their node port, as kube allocates them"
    hc = spec["healthCheckNodePort"]
    assert claims(etcd, PORTS) == before | {udp, hc}
    # switching to ClusterIP with a patch of the type only releases both
    code, svc = await http.patch(f"{SVC}/lb", {"spec": {"type": "ClusterIP"}}, MERGE)
    assert code == 200, svc
    assert not any("nodePort" in p for p in svc["spec"]["ports"])
    assert not {"healthCheckNodePort", "externalTrafficPolicy", "allocateLoadBalancerNodePorts"} \
        & set(svc["spec"])
    assert claims(etcd, PORTS) == before


async def test_loadbalancer_without_node_ports_and_delete_releases(etcd, http):
    ips, ports = claims(etcd, IPS), claims(etcd, PORTS)
    code, svc = await http.post(SVC, {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
        "loadBalancerClass": "example.com/other", "ports": [{"port": 80}, {"name": "b", "port": 81,
                                                                          "nodePort": 31081}]}})
    # two ports need names: the first one has none
    assert code == 422 and "spec.ports[0].name: Required value" in svc["message"]
    svc_body = {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
        "loadBalancerClass": "example.com/other",
        "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 31081}]}}
    code, svc = await http.post(SVC, svc_body)
    assert code == 201, svc
    assert "nodePort" not in svc["spec"]["ports"][0] and svc["spec"]["ports"][1]["nodePort"] == 31081
    assert claims(etcd, PORTS) == ports | {31081}
    # re-applying the manifest keeps what was allocated; changing the class is refused
    code, again = await http.put(f"{SVC}/lb", {**svc_body, "metadata": svc["metadata"]})
    assert code == 200 and again["spec"]["clusterIP"] == svc["spec"]["clusterIP"], again
    code, status = await http.patch(f"{SVC}/lb", {"spec": {"loadBalancerClass": "example.com/x"}}, MERGE)
    assert code == 422 and 'spec.loadBalancerClass: Invalid value: "example.com/x": may not change ' \
        "once set" in status["message"]
    assert (await http.delete(f"{SVC}/lb"))[0] == 200
    assert (claims(etcd, IPS), claims(etcd, PORTS)) == (ips, ports)


async def test_a_create_drops_the_status_it_is_sent(http):
    ingress = {"loadBalancer": {"ingress": [{"ip": "10.250.0.200"}]}}
    for name, stype in (("lb", "LoadBalancer"), ("plain", "ClusterIP")):
        code, svc = await http.post(SVC, {"metadata": {"name": name}, "spec": {
            "type": stype, "ports": [{"port": 80}]}, "status": ingress})
        assert code == 201 and svc["status"] == {"loadBalancer": {}}, svc


async def test_load_balancer_status_written_through_the_status_subresource(http):
    code, svc = await http.post(SVC, {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "ports": [{"port": 80}]}})
    assert code == 201 and svc["status"] == {"loadBalancer": {}}
    # the main resource keeps the stored status
    code, same = await http.patch(f"{SVC}/lb", {"status": {"loadBalancer": {"ingress": [
        {"ip": "10.250.0.200"}]}}}, MERGE)
    assert code == 200 and same["status"] == {"loadBalancer": {}}
    code, svc = await http.patch(f"{SVC}/lb/status", {"status": {"loadBalancer": {"ingress": [
        {"ip": "10.250.0.200"}]}}}, MERGE)
    assert code == 200, svc
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "10.250.0.200", "ipMode": "VIP"}]
    code, status = await http.patch(f"{SVC}/lb/status", {"status": {"loadBalancer": {"ingress": [
        {"ip": "10.250.0.999"}]}}}, MERGE)
    assert code == 422 and "status.loadBalancer.ingress[0].ip" in status["message"]
    # a type change away from LoadBalancer clears the status
    code, svc = await http.patch(f"{SVC}/lb", {"spec": {"type": "NodePort"}}, MERGE)
    assert code == 200 and svc["status"] == {"loadBalancer": {}}, svc
    code, status = await http.patch(f"{SVC}/lb/status", {"status": {"loadBalancer": {"ingress": [
        {"ip": "10.250.0.200"}]}}}, MERGE)
    assert code == 422 and "may only be used when `spec.type` is 'LoadBalancer'" in status["message"]
