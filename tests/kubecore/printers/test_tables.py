"""kubectl's columns as pure functions: table tests per kind."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubecore.printers import tables

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"),
    (150, "2m30s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (2 * 86400, "2d"), (2 * 86400 + 3600, "2d1h"),
    (8 * 86400, "8d"), (2 * 365 * 86400, "2y"), (2 * 365 * 86400 + 86400, "2y1d"),
    (9 * 365 * 86400, "9y"),
], ids=str)
def test_human_duration(seconds, text):
    assert tables.human_duration(seconds) == text


def svc(**spec) -> dict:
    return {"metadata": {"name": "web", "creationTimestamp": ts(30)}, "spec": spec}


@pytest.mark.parametrize("obj,expected", [
    (svc(type="ClusterIP", clusterIP="10.96.0.5", ports=[{"port": 80, "protocol": "TCP"}],
         selector={"b": "2", "a": "1"}),
     ["web", "ClusterIP", "10.96.0.5", "<none>", "80/TCP", "30s", "a=1,b=2"]),
    (svc(type="NodePort", clusterIP="10.96.0.6", externalIPs=["1.2.3.4"],
         ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080},
                {"port": 53, "protocol": "UDP"}]),
     ["web", "NodePort", "10.96.0.6", "1.2.3.4", "80:30080/TCP,53/UDP", "30s", "<none>"]),
    (svc(clusterIP="None"), ["web", "ClusterIP", "None", "<none>", "<none>", "30s", "<none>"]),
    (svc(type="LoadBalancer", clusterIP="10.96.0.7", ports=[{"port": 443}]),
     ["web", "LoadBalancer", "10.96.0.7", "<pending>", "443/TCP", "30s", "<none>"]),
    (svc(type="ExternalName", externalName="example.com"),
     ["web", "ExternalName", "<none>", "example.com", "<none>", "30s", "<none>"]),
], ids=["cluster-ip", "node-port", "headless", "load-balancer", "external-name"])
def test_service_cells(obj, expected):
    assert tables.cells("Service", obj, NOW) == expected


def pod(status: dict, *, containers: int = 1, deleting: bool = False, **spec) -> dict:
    meta = {"name": "p", "creationTimestamp": ts(3600)}
    if deleting:
        meta["deletionTimestamp"] = ts(0)
    return {"metadata": meta, "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)],
                                       **spec}, "status": status}


RUNNING = {"running": {"startedAt": ts(100)}}


@pytest.mark.parametrize("obj,expected", [
    (pod({"phase": "Pending"}), ["p", "0/1", "Pending", "0", "60m", "<none>", "<none>", "<none>", "<none>"]),
    (pod({"phase": "Running", "podIP": "10.244.1.2",
          "containerStatuses": [{"name": "c0", "ready": True, "restartCount": 0, "state": RUNNING},
                                {"name": "c1", "ready": False, "restartCount": 0, "state": RUNNING}]},
         containers=2, nodeName="n1"),
     ["p", "1/2", "Running", "0", "60m", "10.244.1.2", "n1", "<none>", "<none>"]),
    (pod({"phase": "Running", "containerStatuses": [
        {"name": "c0", "ready": False, "restartCount": 3,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(90)}}}]}),
     ["p", "0/1", "CrashLoopBackOff", "3 (90s ago)", "60m", "<none>", "<none>", "<none>", "<none>"]),
    (pod({"phase": "Succeeded", "containerStatuses": [
        {"name": "c0", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
     ["p", "0/1", "Completed", "0", "60m", "<none>", "<none>", "<none>", "<none>"]),
    (pod({"phase": "Running", "containerStatuses": [
        {"name": "c0", "ready": True, "restartCount": 0, "state": RUNNING}]}, deleting=True),
     ["p", "1/1", "Terminating", "0", "60m", "<none>", "<none>", "<none>", "<none>"]),
    (pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]},
         initContainers=[{"name": "i0"}, {"name": "i1"}]),
     ["p", "0/1", "Init:0/2", "0", "60m", "<none>", "<none>", "<none>", "<none>"]),
    (pod({"phase": "Running", "conditions": [{"type": "G", "status": "True"}]},
         readinessGates=[{"conditionType": "G"}, {"conditionType": "H"}]),
     ["p", "0/1", "Running", "0", "60m", "<none>", "<none>", "<none>", "1/2"]),
], ids=["pending", "half-ready", "crash-loop", "completed", "terminating", "init", "gates"])
def test_pod_cells(obj, expected):
    assert tables.cells("Pod", obj, NOW) == expected


def node(conditions: list, **extra) -> dict:
    return {"metadata": {"name": "n1", "creationTimestamp": ts(86400 * 3),
                         "labels": extra.pop("labels", {})},
            "spec": extra.pop("spec", {}),
            "status": {"conditions": conditions, **extra}}


@pytest.mark.parametrize("obj,expected", [
    (node([{"type": "Ready", "status": "True"}],
          labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"},
          addresses=[{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.2"}],
          nodeInfo={"kubeletVersion": "v1.31.0", "osImage": "Debian", "kernelVersion": "6.1",
                    "containerRuntimeVersion": "x://1"}),
     ["n1", "Ready", "control-plane,worker", "3d", "v1.31.0", "10.0.0.2", "<none>", "Debian", "6.1", "x://1"]),
    (node([{"type": "Ready", "status": "False"}], spec={"unschedulable": True}),
     ["n1", "NotReady,SchedulingDisabled", "<none>", "3d", "", "<none>", "<none>", "<unknown>",
      "<unknown>", "<unknown>"]),
    (node([]), ["n1", "Unknown", "<none>", "3d", "", "<none>", "<none>", "<unknown>", "<unknown>",
                "<unknown>"]),
], ids=["ready", "cordoned", "no-conditions"])
def test_node_cells(obj, expected):
    assert tables.cells("Node", obj, NOW) == expected


@pytest.mark.parametrize("obj,expected", [
    ({"metadata": {"name": "s", "creationTimestamp": ts(5)}, "addressType": "IPv4",
      "ports": [{"port": 80}, {"name": "dns"}, {}],
      "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]},
     ["s", "IPv4", "80,dns,*", "10.0.0.1,10.0.0.2", "5s"]),
    ({"metadata": {"name": "s", "creationTimestamp": ts(5)}, "addressType": "IPv4",
      "ports": [{"port": p} for p in (1, 2, 3, 4, 5)],
      "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 5)]},
     ["s", "IPv4", "1,2,3 + 2 more...", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "5s"]),
    ({"metadata": {"name": "s", "creationTimestamp": ts(5)}, "addressType": "IPv4"},
     ["s", "IPv4", "<unset>", "<unset>", "5s"]),
], ids=["few", "many", "empty"])
def test_endpointslice_cells(obj, expected):
    assert tables.cells("EndpointSlice", obj, NOW) == expected


def test_workload_cells():
    template = {"spec": {"containers": [{"name": "web", "image": "nginx:1"},
                                        {"name": "side", "image": "busybox"}]}}
    dep = {"metadata": {"name": "d", "creationTimestamp": ts(61)},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": template},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert tables.cells("Deployment", dep, NOW) == ["d", "2/3", 3, 2, "61s", "web,side",
                                                    "nginx:1,busybox", "app=d"]
    rs = {"metadata": {"name": "r", "creationTimestamp": ts(61)},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"},
                                               "matchExpressions": [{"key": "x", "operator": "Exists"}]},
                   "template": template},
          "status": {"replicas": 2}}
    assert tables.cells("ReplicaSet", rs, NOW) == ["r", 2, 2, 0, "61s", "web,side", "nginx:1,busybox",
                                                   "app=d,x"]


def test_namespace_and_unknown_kind_cells():
    ns = {"metadata": {"name": "default", "creationTimestamp": ts(10)}, "status": {"phase": "Active"}}
    assert tables.cells("Namespace", ns, NOW) == ["default", "Active", "10s"]
    assert tables.cells("Widget", {"metadata": {"name": "w"}}, NOW) == ["w", "<unknown>"]


@pytest.mark.parametrize("secret, expected", [
    ({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
     ["s", "kubernetes.io/tls", 2, "5s"]),
    ({"type": "Opaque"}, ["s", "Opaque", 0, "5s"]),
], ids=["tls", "no-data"])
def test_secret_cells(secret, expected):
    obj = {"metadata": {"name": "s", "creationTimestamp": ts(5)}, **secret}
    assert tables.cells("Secret", obj, NOW) == expected


@pytest.mark.parametrize("kind,names", [
    ("Service", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]),
    ("Pod", ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
             "Readiness Gates"]),
    ("Node", ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
              "Kernel-Version", "Container-Runtime"]),
    ("Namespace", ["Name", "Status", "Age"]),
    ("EndpointSlice", ["Name", "AddressType", "Ports", "Endpoints", "Age"]),
    ("Deployment", ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images",
                    "Selector"]),
    ("ReplicaSet", ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]),
    ("Secret", ["Name", "Type", "Data", "Age"]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_column_names_match_kubectl(kind, names):
    assert [c.name for c in tables.columns_for(kind)] == names
    first_wide = next((i for i, c in enumerate(tables.columns_for(kind)) if c.priority), len(names))
    assert all(c.priority == 1 for c in tables.columns_for(kind)[first_wide:])


def test_table_object_and_include_object():
    obj = {"kind": "Service", "apiVersion": "v1",
           "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ts(1)},
           "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80}]}}
    t = tables.table("Service", [obj], now=NOW, resource_version="42")
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    assert t["columnDefinitions"][0] == {"name": "Name", "type": "string", "format": "name",
                                         "description": tables.NAME.description, "priority": 0}
    assert t["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                      "metadata": obj["metadata"]}
    assert tables.table("Service", [obj], include_object="Object")["rows"][0]["object"] is obj
    assert "object" not in tables.table("Service", [obj], include_object="None")["rows"][0]


def test_render_text_pads_like_kubectl():
    objs = [{"metadata": {"name": "default", "creationTimestamp": ts(10)}, "status": {"phase": "Active"}},
            {"metadata": {"name": "kube-system", "creationTimestamp": ts(10)},
             "status": {"phase": "Active"}}]
    assert tables.render_text("Namespace", objs, now=NOW) == (
        "NAME          STATUS   AGE\n"
        "default       Active   10s\n"
        "kube-system   Active   10s\n")
