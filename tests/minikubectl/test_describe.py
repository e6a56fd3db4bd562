from datetime import UTC, datetime

from minikubectl.describe import (
    describe_generic,
    describe_pod,
    describe_service,
    events_text,
    service_endpoints,
)
from minikubectl.errors import api_error_from_status, format_api_error

SVC = {"metadata": {"name": "web", "namespace": "default", "labels": {"a": "1", "b": "2"},
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
       "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.7", "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
SLICES = [{"ports": [{"name": "http", "port": 8080}],
           "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True}},
                         {"addresses": ["10.244.0.6"], "conditions": {"ready": False}},
                         {"addresses": ["10.244.1.3"]}]}]


def test_service_text():
    text = describe_service(SVC, SLICES)
    assert text.splitlines() == [
        "Name:              web",
        "Namespace:         default",
        "Labels:            a=1",
        "                   b=2",
        "Annotations:       <none>",
        "Selector:          app=web",
        "Type:              ClusterIP",
        "IP:                10.96.0.7",
        "Port:              http  80/TCP",
        "TargetPort:        8080/TCP",
        "Endpoints:         10.244.0.5:8080,10.244.1.3:8080",
        "Session Affinity:  None",
    ]


def test_load_balancer_and_external_name_text():
    lb = {"metadata": {"name": "lb", "namespace": "default"},
          "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.8", "externalIPs": ["192.0.2.1"],
                   "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
                   "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]},
          "status": {"loadBalancer": {"ingress": [{"ip": "10.250.0.200", "ipMode": "VIP"}]}}}
    lines = describe_service(lb, []).splitlines()
    assert lines[5:9] == ["Type:                     LoadBalancer",
                          "IP:                       10.96.0.8",
                          "External IPs:             192.0.2.1",
                          "LoadBalancer Ingress:     10.250.0.200"]
    assert lines[-1] == "HealthCheck NodePort:     31000"
    name = {"metadata": {"name": "db", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert "External Name:     db.example.com" in describe_service(name, []).splitlines()


def test_service_endpoints_by_port_name():
    assert service_endpoints({"name": "other", "port": 81}, SLICES) == "<none>"
    many = [{"ports": [{"name": "", "port": 80}],
             "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}]
    assert service_endpoints({"port": 80}, many) == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."


def test_pod_text():
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx",
                                                     "ports": [{"containerPort": 80}]}]},
           "status": {"phase": "Running", "hostIP": "192.168.0.2", "podIP": "10.244.1.9",
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "c", "ready": True, "restartCount": 1,
                                             "state": {"running": {"startedAt": "T"}}}]}}
    text = describe_pod(pod)
    for line in ["Node:            n1/192.168.0.2", "Status:          Running",
                 "IP:              10.244.1.9", "  c:", "    Image:          nginx",
                 "    State:          Running", "      Started:  T", "    Ready:          True",
                 "    Restart Count:  1", "Conditions:", "  Type   Status", "  Ready  True"]:
        assert line in text.splitlines(), line


def test_error_lines_in_kubectls_words():
    nf = api_error_from_status({"kind": "Status", "reason": "NotFound", "code": 404,
                                "message": 'services "x" not found'}, 404)
    assert format_api_error(nf) == 'Error from server (NotFound): services "x" not found'
    assert format_api_error(nf, context='error when deleting "f.yaml": ') == \
        'Error from server (NotFound): error when deleting "f.yaml": services "x" not found'
    invalid = api_error_from_status({"kind": "Status", "reason": "Invalid", "code": 422,
                                     "message": "...", "details": {"kind": "Service", "name": "x",
                                     "causes": [{"field": "spec.ports", "message": "Required value"},
                                                {"field": "spec.type", "message": "bad"}]}}, 422)
    assert format_api_error(invalid) == \
        'The Service "x" is invalid: spec.ports: Required value; spec.type: bad'
    assert format_api_error(api_error_from_status("<html>oops</html>", 502)) == \
        "Error from server: <html>oops</html>"


NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)


def event(reason: str, message: str, first: str, last: str | None = None, count: int = 1,
          event_type: str = "Normal", component: str = "kubelet") -> dict:
    return {"type": event_type, "reason": reason, "message": message, "count": count,
            "source": {"component": component}, "firstTimestamp": first,
            "lastTimestamp": last or first}


EVENTS = [  # not in time order: the table is
    event("Started", "Started container web", "2026-01-01T00:59:58Z"),
    event("Scheduled", "Successfully assigned default/web-1 to mc-node-1",
          "2026-01-01T00:59:55Z", component="default-scheduler"),
    event("BackOff", "Back-off restarting failed container web in pod web-1_default(u1)",
          "2026-01-01T00:50:00Z", "2026-01-01T00:59:59Z", count=3, event_type="Warning"),
]


def test_events_table_as_kubectl_shows_it():
    assert events_text(EVENTS, NOW).splitlines() == [
        "Events:",
        "  Type     Reason     Age               From               Message",
        "  ----     ------     ----              ----               -------",
        "  Normal   Scheduled  5s                default-scheduler  "
        "Successfully assigned default/web-1 to mc-node-1",
        "  Normal   Started    2s                kubelet            Started container web",
        "  Warning  BackOff    1s (x3 over 10m)  kubelet            "
        "Back-off restarting failed container web in pod web-1_default(u1)",
    ]


def test_no_events_is_one_more_label_and_none_asked_is_no_section():
    text = describe_service(SVC, SLICES, [], NOW)
    assert text.splitlines()[-1] == "Events:            <none>"
    assert "Events" not in describe_service(SVC, SLICES)
    assert describe_generic({"metadata": {"name": "n1"}}, False, [], NOW).endswith(
        "Events:  <none>\n")


def test_pod_text_ends_with_its_events():
    pod = {"metadata": {"name": "web-1", "namespace": "default"},
           "spec": {"containers": [{"name": "web", "image": "nginx"}]}, "status": {}}
    text = describe_pod(pod, NOW, EVENTS[1:2])
    assert text.endswith("Events:\n  Type    Reason     Age   From               Message\n"
                         "  ----    ------     ----  ----               -------\n"
                         "  Normal  Scheduled  5s    default-scheduler  "
                         "Successfully assigned default/web-1 to mc-node-1\n")
