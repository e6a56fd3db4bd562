"""The node agent for real: etcd, the API server, node namespaces, CNI, containers run by runc
from the default images (real nginx, busybox).

Each test builds a scratch node network (`agent_harness.NodeNetwork`), runs agent processes
with their node's namespace as host side, and drives everything through the API server. The
pods ask for the images the node has (IfNotPresent): there is no registry here.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

import pytest

from kubecore.api.errors import ApiError
from kubecore.api.resources import EVENTS, NODES, PODS
from kubecore.client.rest import ApiClient
from tests.nodeagent.agent_harness import ROOT, AgentProcess, NodeNetwork, sh
from tests.nodeagent.conftest import leases, needs_netns

pytestmark = [needs_netns, pytest.mark.netns]  # agent_harness makes the node namespaces


async def eventually(check, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Await `check()` (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
        except (ApiError, AssertionError, KeyError, IndexError, OSError) as exc:
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last error: {last_exc!r})")
        await asyncio.sleep(interval)


async def run(*argv: str, timeout: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def curl_in(network: NodeNetwork, node: str, url: str) -> str:
    code, out, err = await run("nsenter", f"--net=/run/netns/{network.netns(node)}", "--",
                               "curl", "-sS", "--max-time", "3", url)
    assert code == 0, f"curl {url} from {node}: {err}"
    return out


def nginx_pod(name: str, node: str, **spec) -> dict:
    container = {"name": "web", "image": "nginx", "imagePullPolicy": "IfNotPresent",
                 "ports": [{"name": "http", "containerPort": 80}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [container], "terminationGracePeriodSeconds": 5, **spec}}


def condition(pod: dict, ctype: str) -> str | None:
    return next((c["status"] for c in pod.get("status", {}).get("conditions", []) if c["type"] == ctype), None)


@pytest.fixture
def tag() -> str:
    return secrets.token_hex(2)


@pytest.fixture
async def client(apiserver):
    async with ApiClient(apiserver.config) as c:
        yield c


@pytest.fixture
def cluster_net(tag):
    """Factory for a node network; torn down (with every pod namespace of its nodes) afterwards."""
    made: list[NodeNetwork] = []
    agents: list[AgentProcess] = []

    def make(n: int) -> NodeNetwork:
        network = NodeNetwork(tag, [f"t{tag}n{i}" for i in range(1, n + 1)])
        made.append(network)
        return network.up()

    make.agents = agents  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for agent in agents:
            agent.kill()
        for network in made:
            network.down()  # kills what runs in the pods' namespaces
        for agent in agents:
            agent.remove_leftovers()


def start_agent(make, apiserver, network: NodeNetwork, node: str, tmp_path: Path) -> AgentProcess:
    kubeconfig = apiserver.kubeconfig(tmp_path / f"{node}.kubeconfig", f"system:node:{node}", ("system:nodes",))
    agent = AgentProcess(kubeconfig=kubeconfig, node=node, node_ip=network.ips[node], netns=network.netns(node),
                         state_dir=tmp_path / node, runtime="runc")
    make.agents.append(agent)
    return agent.start()


async def ready_node(client: ApiClient, name: str, agent: AgentProcess) -> dict:
    async def check():
        assert agent.alive(), agent.log()
        node = await client.get(NODES, name)
        return node if condition(node, "Ready") == "True" and node["spec"].get("podCIDR") else None
    return await eventually(check, 30, what=f"node {name} Ready")


async def test_pod_lifecycle_logs_exec_restart_adoption(apiserver, client, cluster_net, tmp_path):
    network = cluster_net(1)
    [node] = network.nodes
    apiserver.state.nodes.dial_netns = f"/run/netns/{network.net}"
    agent = start_agent(cluster_net, apiserver, network, node, tmp_path)

    # --- the Node
    n = await ready_node(client, node, agent)
    cidr = ipaddress.ip_network(n["spec"]["podCIDR"])
    assert {"type": "InternalIP", "address": network.ips[node]} in n["status"]["addresses"]
    assert {"type": "Hostname", "address": node} in n["status"]["addresses"]
    assert (n["status"]["capacity"]["pods"] == "110"
            and n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250)
    assert n["status"]["nodeInfo"]["operatingSystem"] == "linux"
    conflist = json.loads((agent.state_dir / "cni-conf" / "10-minicluster.conflist").read_text())
    assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": str(cidr)}]]
    beat = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")["lastHeartbeatTime"]
    await eventually(lambda: _heartbeat_moved(client, node, beat), 10, what="heartbeat")

    # --- a pod becomes Running, then Ready after its probe
    await client.create(PODS, nginx_pod("web", node))
    pod = await eventually(lambda: _get_ready(client, "web"), 30, what="web Ready")
    ip = ipaddress.ip_address(pod["status"]["podIP"])
    assert ip in cidr and pod["status"]["podIPs"] == [{"ip": str(ip)}]
    assert pod["status"]["hostIP"] == network.ips[node] and pod["status"]["startTime"]
    [cs] = pod["status"]["containerStatuses"]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"].startswith("minicluster://") and cs["image"] == "docker.io/library/nginx:latest"
    assert cs["imageID"].startswith("docker.io/library/nginx@sha256:")
    assert {c["type"] for c in pod["status"]["conditions"]} == {"PodScheduled", "Initialized", "ContainersReady",
                                                                "Ready"}
    assert "<title>Welcome to nginx!</title>" in await curl_in(network, node, f"http://{ip}/")

    # --- what kubectl describe pod shows: kubelet's events about the container
    started = await eventually(lambda: _events_about(client, pod, {"Pulled", "Created", "Started"}), 10,
                               what="Pulled, Created, Started events")
    assert [started[r]["message"] for r in ("Pulled", "Created", "Started")] == [
        'Container image "nginx" already present on machine', "Created container: web", "Started container web"]
    for ev in (started[r] for r in ("Pulled", "Created", "Started")):
        assert ev["type"] == "Normal" and ev["source"] == {"component": "kubelet", "host": node}
        assert ev["involvedObject"]["fieldPath"] == "spec.containers{web}"
        assert ev["involvedObject"]["kind"] == "Pod" and ev["involvedObject"]["namespace"] == "default"

    # --- logs and exec through the API server
    async with apiserver.session() as http:
        async with http.get("/api/v1/namespaces/default/pods/web/log") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
        assert '"GET / HTTP/1.1" 200' in text  # nginx's access log, on the container's stdout
        async with http.get("/api/v1/namespaces/default/pods/web/log", params={"tailLines": "1"}) as r:
            assert len((await r.text()).splitlines()) == 1
        async with http.post("/api/v1/namespaces/default/pods/web/exec",
                             params=[("command", "hostname"), ("container", "web")]) as r:
            assert r.status == 200, await r.text()
            assert await r.json() == {"exitCode": 0, "stdout": "web\n", "stderr": ""}
        async with http.post("/api/v1/namespaces/default/pods/web/exec",
                             json={"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}) as r:
            assert await r.json() == {"exitCode": 3, "stdout": "out\n", "stderr": "err\n"}
        # follow streams what is written after the request
        async with http.get("/api/v1/namespaces/default/pods/web/log", params={"follow": "true"}) as r:
            await r.content.readline()
            await curl_in(network, node, f"http://{ip}/followed")
            line = await asyncio.wait_for(_line_with(r, b"/followed"), 10)
            assert b"GET /followed" in line
        # a pod not bound to any node, and one not running
        await client.create(PODS, {"metadata": {"name": "unbound"},
                                   "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
        async with http.post("/api/v1/namespaces/default/pods/unbound/exec", params={"command": "true"}) as r:
            assert r.status == 503 and "does not have a host assigned" in (await r.json())["message"]
        async with http.post("/api/v1/namespaces/default/pods/noagent/exec", params={"command": "true"}) as r:
            assert r.status == 404

    # --- the CLI, end to end
    kubeconfig = str(apiserver.kubeconfig(tmp_path / "admin.kubeconfig"))
    code, out, err = await run(sys.executable, "-m", "minikubectl", "--kubeconfig", kubeconfig, "logs", "web")
    assert code == 0 and '"GET / HTTP/1.1" 200' in out, err
    code, out, err = await run(sys.executable, "-m", "minikubectl", "--kubeconfig", kubeconfig,
                               "exec", "web", "--", "hostname")
    assert code == 0 and out == "web\n", (out, err)

    # --- restartPolicy Always: a crashing container is restarted, restartCount grows
    crash = {"metadata": {"name": "crasher"}, "spec": {"nodeName": node, "containers": [
        {"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
         "command": ["sh", "-c", "echo boom; exit 3"]}]}}
    await client.create(PODS, crash)

    async def restarted():
        p = await client.get(PODS, "crasher", "default")
        [s] = p["status"].get("containerStatuses") or [{}]
        return p if s.get("restartCount", 0) >= 2 else None
    p = await eventually(restarted, 30, what="crasher restarted twice")
    [s] = p["status"]["containerStatuses"]
    assert s["lastState"]["terminated"]["exitCode"] == 3 and p["status"]["phase"] == "Running"
    backoff = (await eventually(lambda: _events_about(client, p, {"BackOff"}), 10, what="BackOff"))["BackOff"]
    assert backoff["type"] == "Warning" and backoff["message"] == (
        f"Back-off restarting failed container c in pod crasher_default({p['metadata']['uid']})")

    # --- an image no registry gives (nothing listens on that port: refused at once)
    await client.create(PODS, {"metadata": {"name": "noimage"}, "spec": {"nodeName": node, "containers": [
        {"name": "c", "image": "127.0.0.1:1/nothing:1"}]}})

    waiting = await eventually(lambda: _waiting(client, "noimage", "ErrImagePull"), 20, what="ErrImagePull")
    assert "127.0.0.1:1/nothing:1" in waiting["message"]
    noimage = await client.get(PODS, "noimage", "default")

    async def pull_events():
        uid = noimage["metadata"]["uid"]
        items, _ = await client.list(EVENTS, "default", field_selector=f"involvedObject.uid={uid}")
        told = [(e["type"], e["reason"], e["message"]) for e in items]
        return told if ("Warning", "Failed", "Error: ErrImagePull") in told else None
    told = await eventually(pull_events, 10, what="the pull's events")
    assert ("Normal", "Pulling", 'Pulling image "127.0.0.1:1/nothing:1"') in told
    assert any(t == "Warning" and r == "Failed" and m.startswith('Failed to pull image "127.0.0.1:1/nothing:1": ')
               for t, r, m in told)
    # the next sync inside the back-off pulls nothing: ImagePullBackOff, with the pull's error
    waiting = await eventually(lambda: _waiting(client, "noimage", "ImagePullBackOff"), 20, what="ImagePullBackOff")
    assert waiting["message"].startswith('Back-off pulling image "127.0.0.1:1/nothing:1": ErrImagePull: ')
    assert (await client.get(PODS, "noimage", "default"))["status"]["phase"] == "Pending"

    # --- SIGKILL the agent; while it is down a pod is force-deleted; restart: adopt and clean up
    runtime_dir = agent.state_dir / "runtime" / "sandboxes"
    before = {json.loads(p.read_text())["name"]: json.loads(p.read_text()) for p in runtime_dir.glob("*/sandbox.json")}
    web_pid = _container_pids(runtime_dir, before["web"]["id"])
    crasher_ns = before["crasher"]["netns_name"]
    ipam = agent.state_dir / "ipam"
    assert before["web"]["ip"] in leases(ipam) and before["crasher"]["ip"] in leases(ipam)
    agent.kill(signal.SIGKILL)
    await client.delete(PODS, "crasher", "default", grace_period_seconds=0)
    agent.start()
    crasher_dir = runtime_dir / before["crasher"]["id"]
    await eventually(lambda: not os.path.exists(f"/run/netns/{crasher_ns}") and not crasher_dir.exists(), 30,
                     what="orphan removed")
    assert before["crasher"]["ip"] not in leases(ipam)
    after = {json.loads(p.read_text())["name"]: json.loads(p.read_text()) for p in runtime_dir.glob("*/sandbox.json")}
    assert "crasher" not in after
    web_sandboxes = [s for s in after.values() if s["name"] == "web"]
    assert [s["id"] for s in web_sandboxes] == [before["web"]["id"]]  # adopted, no second sandbox
    assert _container_pids(runtime_dir, before["web"]["id"]) == web_pid
    pod = await eventually(lambda: _get_ready(client, "web"), 20, what="web Ready again")  # re-probed after restart
    assert pod["status"]["podIP"] == before["web"]["ip"]
    assert "Welcome to nginx!" in await curl_in(network, node, f"http://{before['web']['ip']}/")

    # --- delete: stopped within its grace period, sandbox and lease gone, object removed
    pid = web_pid[0]
    await client.delete(PODS, "web", "default")
    killing = (await eventually(lambda: _events_about(client, pod, {"Killing"}), 10, what="Killing"))["Killing"]
    assert killing["message"] == "Stopping container web"

    async def gone():
        try:
            await client.get(PODS, "web", "default")
            return False
        except ApiError as exc:
            return exc.code == 404
    await eventually(gone, 20, what="web deleted")
    assert not os.path.exists(f"/run/netns/{before['web']['netns_name']}")
    assert before["web"]["ip"] not in leases(ipam)
    assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    assert agent.alive(), agent.log()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


async def _line_with(resp, needle: bytes) -> bytes:
    while True:
        line = await resp.content.readline()
        if not line or needle in line:
            return line


def _container_pids(runtime_dir: Path, sandbox_id: str) -> list[int]:
    return sorted(json.loads(p.read_text())["pid"]
                  for p in (runtime_dir / sandbox_id).glob("containers/*/container.json"))


async def _events_about(client: ApiClient, pod: dict, reasons: set[str]) -> dict[str, dict] | None:
    """The events about this pod (this uid) by reason, once every one of `reasons` is there."""
    meta = pod["metadata"]
    items, _ = await client.list(EVENTS, meta["namespace"], field_selector=(
        f"involvedObject.name={meta['name']},involvedObject.uid={meta['uid']}"))
    by_reason = {e["reason"]: e for e in items}
    return by_reason if reasons <= set(by_reason) else None


async def _waiting(client: ApiClient, name: str, reason: str) -> dict | None:
    p = await client.get(PODS, name, "default")
    w = ((p["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting") or {}
    return w if w.get("reason") == reason else None


async def _heartbeat_moved(client: ApiClient, node: str, before: str) -> bool:
    n = await client.get(NODES, node)
    return next(c for c in n["status"]["conditions"] if c["type"] == "Ready")["lastHeartbeatTime"] != before


async def _get_ready(client: ApiClient, name: str) -> dict | None:
    pod = await client.get(PODS, name, "default")
    ok = pod.get("status", {}).get("phase") == "Running" and condition(pod, "Ready") == "True"
    return pod if ok else None


async def test_two_nodes_route_pod_to_pod_without_nat(apiserver, client, cluster_net, tmp_path):
    network = cluster_net(2)
    n1, n2 = network.nodes
    apiserver.state.nodes.dial_netns = f"/run/netns/{network.net}"
    a1 = start_agent(cluster_net, apiserver, network, n1, tmp_path)
    a2 = start_agent(cluster_net, apiserver, network, n2, tmp_path)
    node1, node2 = await ready_node(client, n1, a1), await ready_node(client, n2, a2)

    def routes(node: str) -> str:
        return sh("ip", "-n", network.netns(node), "route", "show", "proto", "77")

    await eventually(lambda: f"{node2['spec']['podCIDR']} via {network.ips[n2]}" in routes(n1), 15, what="route on n1")
    await eventually(lambda: f"{node1['spec']['podCIDR']} via {network.ips[n1]}" in routes(n2), 15, what="route on n2")
    assert routes(n1).count("\n") == 1 and routes(n2).count("\n") == 1

    await client.create(PODS, nginx_pod("a", n1))
    await client.create(PODS, nginx_pod("b", n2))
    a = await eventually(lambda: _get_ready(client, "a"), 30, what="a Ready")
    b = await eventually(lambda: _get_ready(client, "b"), 30, what="b Ready")
    ip_a, ip_b = a["status"]["podIP"], b["status"]["podIP"]
    assert ipaddress.ip_address(ip_b) in ipaddress.ip_network(node2["spec"]["podCIDR"])

    async with apiserver.session() as http:
        async with http.post("/api/v1/namespaces/default/pods/a/exec",
                             json={"command": ["wget", "-qO-", f"http://{ip_b}/?from-a"]}) as r:
            answer = await r.json()
            assert answer["exitCode"] == 0 and "Welcome to nginx!" in answer["stdout"], answer
        async with http.get("/api/v1/namespaces/default/pods/b/log") as r:
            log_b = await r.text()
    # nginx logs the client address: pod a's own IP, not its node's (no NAT on the way)
    assert any(line.startswith(f"{ip_a} ") and '"GET /?from-a ' in line for line in log_b.splitlines()), log_b

    # a node that goes away takes its route with it
    a2.kill(signal.SIGKILL)
    await client.delete(NODES, n2)
    await eventually(lambda: node2["spec"]["podCIDR"] not in routes(n1), 15, what="route removed")
    assert a1.alive(), a1.log()


async def test_the_agents_port_serves_only_callers_the_api_server_allows(apiserver, client, cluster_net,
                                                                         tmp_path):
    """The kubelet's port: no certificate is 401, a cluster user without `nodes/proxy` is 403
    (the agent asked the API server), the API server's own kubelet client gets through."""
    network = cluster_net(1)
    [node] = network.nodes
    agent = start_agent(cluster_net, apiserver, network, node, tmp_path)
    await ready_node(client, node, agent)
    pki = apiserver.pki
    url = f"https://{network.ips[node]}:{agent.port}/exec/default/nothere/c?command=true"

    async def curl(*cert: str) -> str:
        # in a thread: the agent asks this process's (in-process) API server meanwhile
        out = await asyncio.to_thread(network.run_in, node, "curl", "-s", "-o", "/dev/null", "-w",
                                      "%{http_code}", "--cacert", pki.ca_file, *cert, "-X", "POST", url)
        return out.stdout

    mallory = pki.client("mallory", ("dev",))
    kubelet_client = pki.kubelet_client
    assert await curl() == "401"
    assert await curl("--cert", str(mallory.cert), "--key", str(mallory.key)) == "403"
    # allowed through to the handler, which refuses the request's missing body
    assert await curl("--cert", str(kubelet_client.cert), "--key", str(kubelet_client.key)) == "400"
    health = network.run_in(node, "curl", "-s", f"http://127.0.0.1:{agent.port}/healthz")
    assert health.returncode != 0  # nothing plain on the secure port
