from datetime import UTC, datetime

import pytest

from kubecore.api import resources as R
from kubecore.printers import tables
from minikubectl import printers
from minikubectl.printers import TableSpec, render_table

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
CREATED = "2026-01-01T00:59:55Z"  # 5s before NOW


def meta(name, ns="default", **extra):
    return {"name": name, "namespace": ns, "creationTimestamp": CREATED, **extra}


SVC = {"metadata": meta("web"), "spec": {"type": "NodePort", "clusterIP": "10.96.0.7",
       "selector": {"app": "web"},
       "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}
HEADLESS = {"metadata": meta("db"), "spec": {"clusterIP": "None", "ports": []}}
POD = {"metadata": meta("web-1"), "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
       "status": {"phase": "Running", "podIP": "10.244.1.5", "containerStatuses": [
           {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {"startedAt": CREATED}}},
           {"name": "b", "ready": False, "restartCount": 1,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
NODE = {"metadata": meta("n1", None, labels={"node-role.kubernetes.io/control-plane": ""}),
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.31.0"}}}
DEPLOY = {"metadata": meta("web"), "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
          "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
          "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
RS = {"metadata": meta("web-abc"), "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 1}}
SLICE = {"metadata": meta("web-x1"), "addressType": "IPv4",
         "ports": [{"port": 8080, "name": "http"}],
         "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 6)]}
NS = {"metadata": meta("default", None), "status": {"phase": "Active"}}
EVENT = {"metadata": meta("web-1.17a3b5d6e7f80001"), "type": "Warning", "reason": "BackOff",
         "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1",
                            "fieldPath": "spec.containers{web}"},
         "source": {"component": "kubelet", "host": "mc-node-1"}, "count": 4,
         "firstTimestamp": "2026-01-01T00:58:00Z", "lastTimestamp": "2026-01-01T00:59:50Z",
         "message": "Back-off restarting failed container web in pod web-1_default(u1)\n"}


@pytest.mark.parametrize("rt, obj, wide, row", [
    (R.SERVICES, SVC, False, ["web", "NodePort", "10.96.0.7", "<none>", "80:30080/TCP,53/UDP", "5s"]),
    (R.SERVICES, SVC, True, ["web", "NodePort", "10.96.0.7", "<none>", "80:30080/TCP,53/UDP", "5s",
                             "app=web"]),
    (R.SERVICES, HEADLESS, False, ["db", "ClusterIP", "None", "<none>", "<none>", "5s"]),
    (R.PODS, POD, False, ["web-1", "1/2", "CrashLoopBackOff", "3", "5s"]),
    (R.PODS, POD, True, ["web-1", "1/2", "CrashLoopBackOff", "3", "5s", "10.244.1.5", "n1",
                         "<none>", "<none>"]),
    (R.NODES, NODE, False, ["n1", "Ready,SchedulingDisabled", "control-plane", "5s", "v1.31.0"]),
    (R.DEPLOYMENTS, DEPLOY, False, ["web", "2/3", "3", "2", "5s"]),
    (R.DEPLOYMENTS, DEPLOY, True, ["web", "2/3", "3", "2", "5s", "web", "nginx", "app=web"]),
    (R.REPLICASETS, RS, False, ["web-abc", "3", "3", "1", "5s"]),
    (R.ENDPOINTSLICES, SLICE, False, ["web-x1", "IPv4", "8080", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...",
                                      "5s"]),
    (R.NAMESPACES, NS, False, ["default", "Active", "5s"]),
    (R.EVENTS, EVENT, False, ["10s", "Warning", "BackOff", "pod/web-1",
                              "Back-off restarting failed container web in pod web-1_default(u1)"]),
    (R.EVENTS, EVENT, True, ["10s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}",
                             "kubelet, mc-node-1",
                             "Back-off restarting failed container web in pod web-1_default(u1)",
                             "2m", "4", "web-1.17a3b5d6e7f80001"]),
], ids=["svc", "svc-wide", "svc-headless", "pod", "pod-wide", "node", "deploy", "deploy-wide", "rs",
        "endpointslice", "ns", "event", "event-wide"])
def test_rows(rt, obj, wide, row):
    spec = TableSpec(rt, wide=wide)
    assert spec.row(obj, NOW) == row
    assert len(spec.header()) == len(row)


@pytest.mark.parametrize("rt, header", [
    (R.SERVICES, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE"),
    (R.PODS, "NAME READY STATUS RESTARTS AGE"),
    (R.NODES, "NAME STATUS ROLES AGE VERSION"),
    (R.DEPLOYMENTS, "NAME READY UP-TO-DATE AVAILABLE AGE"),
    (R.REPLICASETS, "NAME DESIRED CURRENT READY AGE"),
    (R.ENDPOINTSLICES, "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"),
    (R.NAMESPACES, "NAME STATUS AGE"),
    (R.EVENTS, "LAST SEEN TYPE REASON OBJECT MESSAGE"),
], ids=lambda v: getattr(v, "plural", "h"))
def test_headers(rt, header):
    assert " ".join(TableSpec(rt).header()) == header


def test_all_namespaces_and_kind_prefix():
    spec = TableSpec(R.DEPLOYMENTS, with_namespace=True, kind_prefix=True)
    assert spec.header()[:2] == ["NAMESPACE", "NAME"]
    assert spec.row(DEPLOY, NOW)[:2] == ["default", "deployment.apps/web"]


@pytest.mark.parametrize("pod, status", [
    ({"status": {"phase": "Pending"}}, "Pending"),
    ({"status": {"phase": "Running", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 137, "signal": 9}}}]}}, "Signal:9"),
    ({"status": {"phase": "Failed", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 3}}}]}}, "ExitCode:3"),
    ({"spec": {"initContainers": [{"name": "i"}]}, "status": {"phase": "Pending",
      "initContainerStatuses": [{"state": {"running": {}}}]}}, "Init:0/1"),
    ({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}}, "Terminating"),
    ({"status": {"phase": "Failed", "reason": "Evicted"}}, "Evicted"),
], ids=["pending", "signal", "exitcode", "init", "terminating", "reason"])
def test_pod_status(pod, status):
    assert tables.pod_summary(pod, NOW)[1] == status


def test_render_table_pads_like_tabwriter():
    text = render_table([["NAME", "AGE"], ["a", "5s"], ["longer-name", "3m2s"]])
    assert text == ("NAME          AGE\n"
                    "a             5s\n"
                    "longer-name   3m2s\n")
    # min width 6 with padding 3
    assert render_table([["A", "B"], ["x", "y"]]) == "A     B\nx     y\n"


def test_object_names():
    assert printers.object_name(R.SERVICES, SVC) == "service/web"
    assert printers.object_name(R.ENDPOINTSLICES, SLICE) == "endpointslice.discovery.k8s.io/web-x1"


def test_events_have_a_name_only_in_the_wide_form():
    assert TableSpec(R.EVENTS, wide=True).header() == [
        "LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN",
        "COUNT", "NAME"]
    spec = TableSpec(R.EVENTS, with_namespace=True, kind_prefix=True)
    assert spec.header()[:2] == ["NAMESPACE", "LAST SEEN"]
    assert spec.row(EVENT, NOW)[:2] == ["default", "10s"]
    assert TableSpec(R.EVENTS, wide=True, kind_prefix=True).row(EVENT, NOW)[-1] == \
        "event/web-1.17a3b5d6e7f80001"
