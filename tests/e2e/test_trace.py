"""`minikubectl trace` on the real cluster: the seed's scenario (three agnhost servers behind a
Service, a client pod), told from live state through the API server's node proxy; `--probe`
checked against the kernel's conntrack; breaking things changes the account."""
from __future__ import annotations

import json
import subprocess

from tests.e2e.harness import NAME, deploy_serving_app, run, wait_until


def trace(cluster, *args: str) -> subprocess.CompletedProcess:
    return cluster.mkctl("trace", *args, check=False, timeout=60)


def test_trace_tells_the_seed_path_and_probe_checks_it(cluster, tmp_path):
    manifest, pods = deploy_serving_app(cluster, tmp_path, "tr")
    svc = json.loads(cluster.mkctl("get", "svc", "trsvc", "-o", "json").stdout)
    ip = svc["spec"]["clusterIP"]
    by_ip = {p["status"]["podIP"]: p for p in pods}

    # the raw node proxy, as kubectl get --raw reaches it
    kubectl = ("kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc"))
    node = f"{NAME}-node-1"
    view = json.loads(run(*kubectl, "get", "--raw", f"/api/v1/nodes/{node}/proxy/debug/network").stdout)
    assert view["node"] == node and "*nat" in view["iptables"] and view["routes"]

    # by name, resolved by the pod itself through the cluster DNS
    wait_until(lambda: trace(cluster, "trclient", "trsvc:8080").returncode == 0, timeout=30,
               what="a trace that gets through")
    out = trace(cluster, "trclient", "trsvc:8080").stdout
    assert "trsvc.default.svc.cluster.local. A -> NOERROR" in out and f"IN A {ip}" in out
    # as the kernel saves it (iptables-save orders the matches its own way)
    assert f'-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment "default/trsvc cluster IP"' in out
    assert out.count("KUBE-SEP-") >= 3 and "33.3%" in out
    assert "Result: reaches pod default/tr-" in out

    # --probe: the account follows the endpoint the kernel chose, and the counters it moved
    probed = json.loads(trace(cluster, "trclient", "svc/trsvc:8080", "--probe", "-o", "json").stdout)
    assert probed["ok"], probed["summary"]
    hit = [e for e in probed["endpoints"] if e["probed"]]
    assert len(hit) == 1 and hit[0]["address"].split(":")[0] in by_ip
    assert probed["summary"] == f"reaches pod {hit[0]['pod']} at {hit[0]['address']}"
    lines = [ln for s in probed["steps"] for ln in s["lines"] + s["rules"]]
    assert any(ln.startswith("conntrack: tcp") and f"src={hit[0]['address'].split(':')[0]}" in ln for ln in lines)
    assert any("during the probe" in ln and hit[0]["chain"] in ln for ln in lines)
    assert any(ln.startswith("probe: connected") and " 200 OK" in ln for ln in lines)

    # scaled to zero: the filter table's REJECT, and why
    run(*kubectl, "scale", "deployment/tr", "--replicas=0")
    # (while the pods go, a trace may meet a deleted pod's endpoint still in the rules: no route to it)
    broken = wait_until(lambda: (lambda r: r if r.returncode == 1 and "has no endpoints" in r.stdout else None)(
        trace(cluster, "trclient", "svc/trsvc:8080")), timeout=60, what="a trace broken at the REJECT")
    assert "BROKEN HERE" in broken.stdout and "default/trsvc has no endpoints" in broken.stdout
    assert "kube-proxy rejects its traffic" in broken.stdout
    refused = trace(cluster, "trclient", "svc/trsvc:8080", "--probe")  # and the kernel did reject it
    assert refused.returncode == 1 and "the probe's connection failed" in refused.stdout
    assert "Connect call failed" in refused.stdout or "refused" in refused.stdout.lower()

    # a name nobody serves
    nx = trace(cluster, "trclient", "nosuch:80")
    assert nx.returncode == 1 and "nosuch does not resolve" in nx.stdout and "NXDOMAIN" in nx.stdout

    # bad input: one line, exit 1
    bad = trace(cluster, "trclient", "svc/trsvc")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: 'svc/trsvc': a Service destination is svc/<name>:<port>"
    missing = trace(cluster, "nobody", "svc/trsvc:8080")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'error: pods "nobody" not found in namespace default'
    cluster.mkctl("delete", "-f", str(manifest))
