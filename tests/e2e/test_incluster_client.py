"""A pod using its ServiceAccount the way in-cluster programs do: the official Python client's
`config.load_incluster_config()` finds the token, the CA and the namespace the node agent
projected at /var/run/secrets/kubernetes.io/serviceaccount and the KUBERNETES_SERVICE_*
variables, reaches the API server through the `kubernetes` Service (10.x.0.1:443, the proxies'
rules) and is who its token says: allowed what its ServiceAccount's roles allow, refused the rest."""
from __future__ import annotations

import ipaddress
import json
import sysconfig
import textwrap

from tests.e2e.harness import SERVICE_CIDR, Cluster, wait_until

SCRIPT = textwrap.dedent("""
    import json
    from kubernetes import client, config
    config.load_incluster_config()
    ns = open("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read()
    v1 = client.CoreV1Api()
    out = {"namespace": ns, "host": client.Configuration.get_default_copy().host}
    out["pods"] = sorted(p.metadata.name for p in v1.list_namespaced_pod(ns).items)
    try:
        v1.list_namespaced_pod("kube-system")
        out["elsewhere"] = 200
    except client.ApiException as exc:
        out["elsewhere"] = exc.status
    print("RESULT " + json.dumps(out), flush=True)
""")


SITE_PACKAGES = sysconfig.get_paths()["purelib"]


def reader_pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team"},
            "spec": {"serviceAccountName": "reader", "restartPolicy": "Never",
                     "containers": [{"name": "client", "image": "python:3.11",
                                     "command": ["python3", "-c", SCRIPT],
                                     # the official client, as this machine's Python 3.11 has it installed
                                     "env": [{"name": "PYTHONPATH", "value": "/client-libraries"}],
                                     "volumeMounts": [{"name": "libraries", "mountPath": "/client-libraries",
                                                       "readOnly": True}]}],
                     "volumes": [{"name": "libraries", "hostPath": {"path": SITE_PACKAGES, "type": "Directory"}}]}}


def result(c: Cluster, name: str) -> dict | None:
    pod = json.loads(c.mkctl("get", "pod", name, "-n", "team", "-o", "json").stdout)
    if pod["status"].get("phase") not in ("Succeeded", "Failed"):
        return None
    logs = c.mkctl("logs", name, "-n", "team").stdout
    lines = [line for line in logs.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result; phase {pod['status'].get('phase')}, logs:\n{logs}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def apply(c: Cluster, tmp_path, *objs: dict) -> None:
    path = tmp_path / "objs.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))
    c.mkctl("apply", "-f", str(path))


def test_the_python_client_in_a_pod_acts_as_its_service_account(cluster: Cluster, tmp_path) -> None:
    """A ServiceAccount bound to `view` in its namespace lists pods there, and is refused in
    another namespace."""
    # privileged: the pod mounts this machine's client library with a hostPath volume, which the
    # default (baseline) Pod Security level refuses
    apply(cluster, tmp_path, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "team", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    apply(cluster, tmp_path, {"apiVersion": "v1", "kind": "ServiceAccount",
                              "metadata": {"name": "reader", "namespace": "team"}})
    apply(cluster, tmp_path, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                              "metadata": {"name": "reader-view", "namespace": "team"},
                              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                          "name": "view"},
                              "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "team"}]})
    wait_until(lambda: cluster.mkctl("get", "configmap", "kube-root-ca.crt", "-n", "team", check=False)
               .returncode == 0, timeout=60, what="the root CA in the new namespace")
    apply(cluster, tmp_path, reader_pod("reader"))
    got = wait_until(lambda: result(cluster, "reader"), timeout=120, what="the client pod's result")
    kubernetes_ip = ipaddress.IPv4Network(SERVICE_CIDR).network_address + 1  # the `kubernetes` Service
    assert got["host"] == f"https://{kubernetes_ip}:443"
    assert got["namespace"] == "team"
    assert got["pods"] == ["reader"]
    assert got["elsewhere"] == 403
    pod = json.loads(cluster.mkctl("get", "pod", "reader", "-n", "team", "-o", "json").stdout)
    assert pod["status"]["phase"] == "Succeeded"
    # the ServiceAccount admission appends the projected token volume after the pod's own
    assert [v["name"] for v in pod["spec"]["volumes"]][0] == "libraries"
    assert pod["spec"]["volumes"][-1]["name"].startswith("kube-api-access-")
