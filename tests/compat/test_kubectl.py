"""Unmodified kubectl against the API server: get (Tables), apply (client- and
server-side), delete, watch, describe, label, strict field validation."""
from __future__ import annotations

import json
import time

import pytest

from tests.compat.conftest import Kubectl, rows

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: metrics
    port: %(metrics)d
"""

NODE = """\
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels: {node-role.kubernetes.io/worker: ""}
status:
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, message: ok}
  addresses:
  - {type: InternalIP, address: 192.168.50.2}
  nodeInfo:
    kubeletVersion: v1.31.0-minicluster
    osImage: Debian GNU/Linux 12
    kernelVersion: 6.1.0
    containerRuntimeVersion: minicluster://1
    machineID: m
    systemUUID: s
    bootID: b
    kubeProxyVersion: v1.31.0
    operatingSystem: linux
    architecture: amd64
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels: {app: web}
spec:
  nodeName: node-a
  containers:
  - name: web
    image: nginx
    ports:
    - containerPort: 8080
"""

SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
endpoints:
- addresses: [10.244.1.5]
  conditions: {ready: true}
- addresses: [10.244.1.6]
  conditions: {ready: true}
"""


def by_name(table: list[list[str]], name: str) -> dict[str, str]:
    header = table[0]
    for row in table[1:]:
        if name in row:
            return dict(zip(header, row, strict=False))
    raise AssertionError(f"{name} not in {table}")


def test_get_wide_shows_kubectl_columns(kubectl: Kubectl):
    kubectl("create", "-f", str(kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})))
    kubectl("create", "-f", str(kubectl.write("node.yaml", NODE)))
    kubectl("create", "-f", str(kubectl.write("pod.yaml", POD)))
    kubectl("create", "-f", str(kubectl.write("slice.yaml", SLICE)))

    svc = rows(kubectl("get", "svc", "-o", "wide").stdout)
    assert svc[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    web = by_name(svc, "web")
    assert web["TYPE"] == "ClusterIP" and web["CLUSTER-IP"].startswith("10.96.")
    assert web["EXTERNAL-IP"] == "<none>"
    assert web["PORT(S)"] == "80/TCP,9090/TCP"
    assert web["SELECTOR"] == "app=web"
    assert by_name(svc, "kubernetes")["PORT(S)"] == "443/TCP"

    pods = rows(kubectl("get", "pods", "-o", "wide").stdout)
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                       "NOMINATED NODE", "READINESS GATES"]
    assert pods[1][:4] == ["web-1", "0/1", "Pending", "0"]
    assert pods[1][5:] == ["<none>", "node-a", "<none>", "<none>"]

    nodes = rows(kubectl("get", "nodes", "-o", "wide").stdout)
    assert nodes[0][:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    node = by_name(nodes, "node-a")
    assert (node["STATUS"], node["ROLES"], node["VERSION"], node["INTERNAL-IP"]) == \
        ("Ready", "worker", "v1.31.0-minicluster", "192.168.50.2")
    assert node["KERNEL-VERSION"] == "6.1.0"

    slices = rows(kubectl("get", "endpointslices").stdout)
    assert slices[0] == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert slices[1][:4] == ["web-abc", "IPv4", "8080", "10.244.1.5,10.244.1.6"]

    # several kinds at once, as `kubectl get svc,pods,nodes,endpointslices -o wide`
    mixed = kubectl("get", "svc,pods,nodes,endpointslices", "-o", "wide").stdout
    for expected in ("service/web", "pod/web-1", "node/node-a",
                     "endpointslice.discovery.k8s.io/web-abc", "PORT(S)", "NOMINATED NODE"):
        assert expected in mixed

    ns = rows(kubectl("get", "ns").stdout)
    assert ns[0] == ["NAME", "STATUS", "AGE"] and by_name(ns, "default")["STATUS"] == "Active"


def test_get_all_uses_the_all_category(kubectl: Kubectl):
    kubectl("create", "-f", str(kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})))
    out = kubectl("get", "all").stdout
    assert "service/web" in out and "service/kubernetes" in out
    out = kubectl("get", "all", "-A").stdout
    assert rows(out)[0][0] == "NAMESPACE"


def test_apply_creates_then_configures(kubectl: Kubectl):
    path = kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})
    assert "service/web created" in kubectl("apply", "-f", str(path)).stdout
    created = kubectl.json("get", "svc", "web")
    assert "kubectl.kubernetes.io/last-applied-configuration" in created["metadata"]["annotations"]

    path.write_text(SERVICE % {"metrics": 9191})
    assert "service/web configured" in kubectl("apply", "-f", str(path)).stdout
    stored = kubectl.json("get", "svc", "web")
    assert [(p["name"], p["port"]) for p in stored["spec"]["ports"]] == [("http", 80), ("metrics", 9191)]
    assert stored["spec"]["clusterIP"] == created["spec"]["clusterIP"]
    assert "service/web unchanged" in kubectl("apply", "-f", str(path)).stdout


def test_apply_server_side(kubectl: Kubectl):
    path = kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(path)).stdout
    path.write_text(SERVICE % {"metrics": 9191})
    kubectl("apply", "--server-side", "-f", str(path))
    stored = kubectl.json("get", "svc", "web", "--show-managed-fields")
    assert [p["port"] for p in stored["spec"]["ports"]] == [80, 9191]
    managers = [e["manager"] for e in stored["metadata"].get("managedFields") or []]
    assert managers == ["kubectl"]


def test_delete_file_waits_for_the_object_to_go(kubectl: Kubectl):
    path = kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})
    kubectl("apply", "-f", str(path))
    out = kubectl("delete", "-f", str(path)).stdout
    assert 'service "web" deleted' in out
    gone = kubectl("get", "svc", "web", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_get_watch_prints_added_and_deleted(kubectl: Kubectl):
    watcher = kubectl.popen("get", "svc", "-w", "--output-watch-events")
    try:
        time.sleep(1.5)
        kubectl("create", "-f", str(kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})))
        kubectl("delete", "svc", "web")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if watcher.poll() is not None:
                break
        watcher.terminate()
        out, err = watcher.communicate(timeout=10)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    table = rows(out)
    assert table[0][:3] == ["EVENT", "NAME", "TYPE"], out + err
    events = [(r[0], r[1]) for r in table[1:]]
    assert ("ADDED", "kubernetes") in events
    assert ("ADDED", "web") in events and ("DELETED", "web") in events
    assert events.index(("ADDED", "web")) < events.index(("DELETED", "web"))


def test_describe_service_lists_endpoints_and_events(kubectl: Kubectl):
    kubectl("create", "-f", str(kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})))
    kubectl("create", "-f", str(kubectl.write("slice.yaml", SLICE)))
    out = kubectl("describe", "svc", "web").stdout
    assert "Name:" in out and "web" in out
    assert "Selector:" in out and "app=web" in out
    assert "10.244.1.5:8080,10.244.1.6:8080" in out
    assert "Events:" in out


def test_label(kubectl: Kubectl):
    kubectl("create", "-f", str(kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})))
    assert "service/web labeled" in kubectl("label", "svc", "web", "a=b").stdout
    assert kubectl.json("get", "svc", "web")["metadata"]["labels"] == {"app": "web", "a": "b"}


@pytest.mark.parametrize("manifest,field", [
    (SERVICE % {"metrics": 9090} + "  bogusField: 1\n", "spec.bogusField"),
    (SERVICE.replace("    targetPort: 8080", "    targetPort: 8080\n    prot: TCP") % {"metrics": 9090},
     "spec.ports[0].prot"),
    (POD.replace("  labels:", "  labls: {}\n  labels:"), "metadata.labls"),
], ids=["service-spec", "service-port", "pod-metadata"])
def test_create_with_unknown_field_is_a_strict_decoding_error(kubectl: Kubectl, manifest, field):
    proc = kubectl("create", "-f", str(kubectl.write("bad.yaml", manifest)), check=False)
    assert proc.returncode != 0
    assert f'strict decoding error: unknown field "{field}"' in proc.stderr


def test_validate_warn_creates_with_a_warning(kubectl: Kubectl):
    manifest = SERVICE % {"metrics": 9090} + "  bogusField: 1\n"
    proc = kubectl("create", "--validate=warn", "-f", str(kubectl.write("bad.yaml", manifest)))
    assert 'Warning: unknown field "spec.bogusField"' in proc.stderr
    assert "service/web created" in proc.stdout


def test_real_manifest_fields_we_do_not_model_pass_strict(kubectl: Kubectl):
    manifest = POD.replace("    image: nginx", "    image: nginx\n    securityContext: {runAsUser: 1000}\n"
                           "    volumeMounts: [{name: data, mountPath: /data}]") + \
        "  volumes: [{name: data, emptyDir: {}}]\n  tolerations: [{operator: Exists}]\n"
    kubectl("create", "-f", str(kubectl.write("pod.yaml", manifest)))
    pod = kubectl.json("get", "pod", "web-1")
    assert pod["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_delete_of_a_bound_pod_waits_on_a_watch_until_the_node_finishes(kubectl: Kubectl,
                                                                       apiserver_process):
    import urllib.request

    kubectl("create", "-f", str(kubectl.write("pod.yaml", POD)))
    deleting = kubectl.popen("delete", "pod", "web-1", "--timeout=30s")
    try:
        url = f"{apiserver_process.url}/api/v1/namespaces/default/pods/web-1"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # kubectl's DELETE marks the pod Terminating
            with urllib.request.urlopen(url, timeout=5, context=apiserver_process.config.ssl_context()) as resp:
                if json.load(resp)["metadata"].get("deletionTimestamp"):
                    break
            time.sleep(0.2)
        time.sleep(1)
        assert deleting.poll() is None  # still waiting: the node has not confirmed
        # the node agent's confirmation: delete with no grace period
        req = urllib.request.Request(url + "?gracePeriodSeconds=0", method="DELETE")
        urllib.request.urlopen(req, timeout=5, context=apiserver_process.config.ssl_context()).close()
        out, err = deleting.communicate(timeout=20)
    finally:
        if deleting.poll() is None:
            deleting.kill()
    assert deleting.returncode == 0, err
    assert 'pod "web-1" deleted' in out


def test_create_generators_and_their_columns(kubectl: Kubectl):
    kubectl("create", "namespace", "demo")
    assert by_name(rows(kubectl("get", "ns", "demo").stdout), "demo")["STATUS"] == "Active"
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    deploy = rows(kubectl("get", "deployments", "-o", "wide").stdout)
    assert deploy[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                         "SELECTOR"]
    row = by_name(deploy, "web")
    assert (row["READY"], row["IMAGES"], row["SELECTOR"]) == ("0/2", "nginx", "app=web")


def test_diff_server_side_of_a_new_object_creates_nothing(kubectl: Kubectl):
    path = kubectl.write("svc.yaml", SERVICE % {"metrics": 9090})
    proc = kubectl("diff", "--server-side", "-f", str(path), check=False)
    assert proc.returncode == 1, proc.stderr  # 1: differences found
    assert "+  name: web" in proc.stdout
    assert kubectl("get", "svc", "web", check=False).returncode != 0


def test_get_follows_continue_with_chunk_size(kubectl: Kubectl):
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: other}"]
    for ns in ("default", "other"):
        for i in range(5):
            docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: {ns}, "
                        f"labels: {{tier: {'db' if i % 2 else 'web'}}}}}\n"
                        f"spec: {{ports: [{{port: 80}}]}}")
    kubectl("create", "-f", str(kubectl.write("many.yaml", "\n---\n".join(docs))))
    expected = [["default", "kubernetes"]] + [[ns, f"s{i}"] for ns in ("default", "other")
                                              for i in range(5)]

    # -v=6 logs each request: the list came in pages of 3, each asked for with `continue`
    proc = kubectl("get", "services", "--chunk-size=3", "-A", "-v=6")
    table = rows(proc.stdout)
    assert table[0][:2] == ["NAMESPACE", "NAME"]
    assert [r[:2] for r in table[1:]] == expected
    requests = [line for line in proc.stderr.splitlines() if "/api/v1/services?" in line]
    assert len(requests) == 4 and all("limit=3" in line for line in requests)
    assert sum("continue=" in line for line in requests) == 3

    listed = kubectl.json("get", "services", "--chunk-size=2", "-A")
    assert [[o["metadata"]["namespace"], o["metadata"]["name"]] for o in listed["items"]] == expected

    db = rows(kubectl("get", "services", "--chunk-size=1", "-A", "-l", "tier=db").stdout)
    assert [r[:2] for r in db[1:]] == [[ns, f"s{i}"] for ns in ("default", "other") for i in (1, 3)]
