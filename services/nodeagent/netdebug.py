"""The node's network as the kernel has it, for `minikubectl trace` and the cluster's live
picture, read through the API server's node proxy (`/api/v1/nodes/<node>/proxy/debug/network`)
and so authorized as `nodes/proxy`, like everything on the kubelet's port that is not logs,
metrics or stats.

- GET /debug/network: the node's packet filter (`iptables-save -c`, every table, with counters,
  the nftables mode proxy's `ip kube-proxy` table and the NetworkPolicy agent's
  `ip minicluster-netpol`, each as `nft -j` JSON and `nft -a` text, or null when there is
  none), its routes, links and addresses, and each pod sandbox with its IP, the host side of its veth
  and the routes inside the pod.
- POST /debug/network/probe {"namespace", "pod", "dns": name?, "connect": {"host", "port",
  "protocol"}?}: from inside that pod's network namespace, resolve `dns` as the pod's resolver
  does (its resolv.conf: search list, ndots, nameserver) and/or open a connection to host:port
  (TCP: connect and send one HTTP GET; UDP: one datagram), then report the node's conntrack
  entry for it (which endpoint the DNAT chose) and the packet filter before and after, so the
  rule counters that moved can be shown. Read-only for the node; the pod sees one request.

What a probe may reach is what the pod itself may reach: the connection is made from the pod's
own namespace, never from the node's.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from dnslib import QTYPE, RCODE, DNSRecord

from services.nodeagent import netns
from services.nodeagent.httpstatus import status_response
from services.nodeagent.runtime import SANDBOX_READY, SandboxInfo

if TYPE_CHECKING:
    from services.nodeagent.agent import Agent

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0
_CT_FIELD = re.compile(r"(\w+)=(\S+)")


# --------------------------------------------------------------------------- pure parts


def search_names(name: str, search: list[str], ndots: int) -> list[str]:
    """The names a glibc resolver asks for, in order (res_search): a name with a trailing dot
    only as it is; one with at least `ndots` dots first as it is, then with each search domain;
    a shorter one with each search domain first, then as it is."""
    if name.endswith("."):
        return [name]
    expanded = [f"{name}.{domain.rstrip('.')}." for domain in search]
    if name.count(".") >= ndots:
        return [f"{name}.", *expanded]
    return [*expanded, f"{name}."]


def parse_resolv_conf(text: str) -> dict[str, Any]:
    """nameserver(s), search domains and ndots of a resolv.conf (glibc defaults: ndots 1)."""
    out: dict[str, Any] = {"nameservers": [], "search": [], "ndots": 1}
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            out["nameservers"].append(fields[1])
        elif fields[0] == "search":
            out["search"] = fields[1:]
        elif fields[0] == "options":
            for opt in fields[1:]:
                if opt.startswith("ndots:") and opt[6:].isdigit():
                    out["ndots"] = min(int(opt[6:]), 15)
    return out


def parse_conntrack(line: str) -> dict[str, Any] | None:
    """One `conntrack -L` line -> {"protocol", "state", "original": {src,dst,sport,dport},
    "reply": {...}}: the reply's source is where the packets really went (after DNAT)."""
    fields = line.split()
    if len(fields) < 4:
        return None
    pairs = _CT_FIELD.findall(line)
    tuples: list[dict[str, str]] = [{}, {}]
    which = 0
    for key, value in pairs:
        if key in ("src", "dst", "sport", "dport"):
            if key in tuples[which]:
                which = 1
                if key in tuples[1]:
                    break
            tuples[which][key] = value
    protocol = fields[0] if not fields[0].startswith("ipv") else fields[2]
    state = next((f for f in fields[:6] if re.fullmatch(r"[A-Z_]+", f)), "")  # TCP only: ESTABLISHED, TIME_WAIT
    return {"protocol": protocol, "state": state, "original": tuples[0], "reply": tuples[1],
            "assured": "[ASSURED]" in fields, "unreplied": "[UNREPLIED]" in fields}


def _printable(data: bytes) -> str:
    """An answer as text when it is text, else its size (a binary protocol's reply)."""
    text = data.decode(errors="replace")
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return text[:200]
    return f"<{len(data)} bytes>"


def host_veth(sandbox: SandboxInfo) -> str:
    """The node side of the pod's veth, as the CNI result names it (the interface without a
    `sandbox`)."""
    for iface in (sandbox.cni_result or {}).get("interfaces") or ():
        if isinstance(iface, dict) and not iface.get("sandbox") and iface.get("name"):
            return str(iface["name"])
    return ""


# --------------------------------------------------------------------------- the kernel's view


def _links_routes_addresses() -> dict[str, Any]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        links: dict[int, dict[str, Any]] = {}
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            links[link["index"]] = {
                "index": link["index"], "name": link.get_attr("IFLA_IFNAME"),
                "state": link.get_attr("IFLA_OPERSTATE"), "mac": link.get_attr("IFLA_ADDRESS"),
                "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                "master": link.get_attr("IFLA_MASTER"), "peerIndex": link.get_attr("IFLA_LINK"),
                "peerNetnsId": link.get_attr("IFLA_LINK_NETNSID"),
            }
        names = {i: link["name"] for i, link in links.items()}
        for link in links.values():
            link["master"] = names.get(link["master"]) if link["master"] else None
        addresses = [{"address": a.get_attr("IFA_ADDRESS"), "prefixlen": a["prefixlen"],
                      "dev": names.get(a["index"], str(a["index"]))} for a in ipr.get_addr(family=socket.AF_INET)]
        routes = []
        for r in ipr.get_routes(family=socket.AF_INET, table=254):
            dst = r.get_attr("RTA_DST")
            routes.append({"dst": f"{dst}/{r['dst_len']}" if dst else "default",
                           "gateway": r.get_attr("RTA_GATEWAY"), "dev": names.get(r.get_attr("RTA_OIF") or -1),
                           "src": r.get_attr("RTA_PREFSRC"), "proto": r["proto"], "scope": r["scope"],
                           "type": r["type"]})
    return {"links": list(links.values()), "addresses": addresses, "routes": routes}


async def _run(argv: list[str], host_netns: str | None, timeout: float = 10.0) -> tuple[int, str, str]:
    full = netns.nsenter_argv(host_netns, argv)
    proc = await asyncio.create_subprocess_exec(*full, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -9, "", f"{argv[0]} gave no answer in {timeout:g}s"
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def iptables_save(host_netns: str | None) -> str:
    code, out, err = await _run(["iptables-save", "-c"], host_netns)
    if code != 0:
        raise RuntimeError(f"iptables-save: {err.strip() or code}")
    return out


async def nft_table(host_netns: str | None, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """One of our nftables tables (`ip <name>`): as `nft -j` JSON (to evaluate) and as `nft -a`
    text (to show: its `# handle N` comments tie the lines to the JSON rules). (None, None) when
    there is no such table (the proxy's in iptables mode), or no nft on this node."""
    try:
        code, out, _ = await _run(["nft", "-j", "list", "table", "ip", name], host_netns)
        if code != 0:
            return None, None
        parsed = json.loads(out)
        code, text, _ = await _run(["nft", "-a", "list", "table", "ip", name], host_netns)
    except (FileNotFoundError, ValueError):
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    return parsed, text if code == 0 else None


async def snapshot(agent: Agent) -> dict[str, Any]:
    cfg = agent.cfg
    node = await netns.call_in(cfg.host_netns, _links_routes_addresses)
    pods = []
    for sandbox in agent.runtime.list_pod_sandboxes():
        if sandbox.state != SANDBOX_READY:
            continue
        try:
            inside = await netns.call_in(sandbox.netns_path, _links_routes_addresses)
        except OSError as exc:  # the sandbox went meanwhile
            log.debug("pod %s: %s", sandbox.key, exc)
            continue
        pods.append({"namespace": sandbox.namespace, "name": sandbox.name, "uid": sandbox.pod_uid,
                     "ip": sandbox.ip, "netns": sandbox.netns_path, "hostVeth": host_veth(sandbox),
                     "routes": inside["routes"], "addresses": inside["addresses"], "links": inside["links"]})
    nft_json, nft_text = await nft_table(cfg.host_netns, "kube-proxy")
    policy_json, policy_text = await nft_table(cfg.host_netns, "minicluster-netpol")
    return {"node": cfg.node_name, "nodeIP": cfg.node_ip, "clusterCIDR": cfg.cluster_cidr,
            "iptables": await iptables_save(cfg.host_netns), "nftables": nft_json, "nftablesText": nft_text,
            "netpol": policy_json, "netpolText": policy_text,
            "time": time.time(), **node, "pods": pods}


# --------------------------------------------------------------------------- probes from a pod


def _ready_sandbox(agent: Agent, namespace: str, name: str) -> SandboxInfo | None:
    found = [s for s in agent.runtime.list_pod_sandboxes()
             if s.namespace == namespace and s.name == name and s.state == SANDBOX_READY]
    return max(found, key=lambda s: s.created_at) if found else None


async def _dns_query(netns_path: str, server: str, qname: str) -> dict[str, Any]:
    query = DNSRecord.question(qname, "A")
    sock = netns.socket_in(netns_path, socket.AF_INET, socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        await loop.sock_connect(sock, (server, 53))
        local_port = sock.getsockname()[1]
        await loop.sock_sendall(sock, query.pack())
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), PROBE_TIMEOUT)
    except (TimeoutError, OSError) as exc:
        return {"name": qname, "error": str(exc) or "no answer in time", "server": server}
    finally:
        sock.close()
    reply = DNSRecord.parse(data)
    answers = [{"name": str(rr.rname), "type": QTYPE.get(rr.rtype), "ttl": rr.ttl, "data": str(rr.rdata)}
               for rr in reply.rr]
    return {"name": qname, "server": server, "localPort": local_port, "rcode": RCODE.get(reply.header.rcode),
            "answers": answers, "ms": round((time.monotonic() - started) * 1000, 1)}


async def resolve(sandbox: SandboxInfo, name: str) -> dict[str, Any]:
    conf = parse_resolv_conf((Path(sandbox.pod_dir) / "resolv.conf").read_text())
    if not conf["nameservers"]:
        return {"resolvConf": conf, "queries": [], "error": "the pod's resolv.conf has no nameserver"}
    server = conf["nameservers"][0]
    queries = []
    for qname in search_names(name, conf["search"], conf["ndots"]):
        result = await _dns_query(sandbox.netns_path, server, qname)
        queries.append(result)
        if result.get("error") or result.get("answers"):
            break
    return {"resolvConf": conf, "queries": queries}


async def _conntrack(host_netns: str | None, protocol: str, src: str, sport: int) -> dict[str, Any] | None:
    code, out, _ = await _run(["conntrack", "-L", "-p", protocol.lower(), "--orig-src", src,
                               "--sport", str(sport)], host_netns)
    if code != 0:
        return None
    for line in out.splitlines():
        entry = parse_conntrack(line)
        if entry is not None:
            return entry
    return None


async def connect(agent: Agent, sandbox: SandboxInfo, host: str, port: int, protocol: str) -> dict[str, Any]:
    started = time.monotonic()
    out: dict[str, Any] = {"host": host, "port": port, "protocol": protocol}
    if protocol == "UDP":
        sock = netns.socket_in(sandbox.netns_path, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            loop = asyncio.get_running_loop()
            await loop.sock_connect(sock, (host, port))
            out["localPort"] = sock.getsockname()[1]
            await loop.sock_sendall(sock, b"minikubectl trace probe\n")
            try:
                out["answer"] = _printable(await asyncio.wait_for(loop.sock_recv(sock, 512), PROBE_TIMEOUT))
            except TimeoutError:
                out["answer"] = None
            out["connected"] = True
        except OSError as exc:
            out.update(connected=False, error=str(exc))
        finally:
            sock.close()
    else:
        try:
            reader, writer = await netns.open_connection(sandbox.netns_path, host, port, PROBE_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            out.update(connected=False, error=str(exc) or "no answer in time")
        else:
            out.update(connected=True, localPort=writer.get_extra_info("sockname")[1])
            writer.write(f"GET / HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: minikubectl-trace\r\n\r\n".encode())
            try:
                await writer.drain()
                head = await asyncio.wait_for(reader.read(2048), PROBE_TIMEOUT)
                lines = head.decode(errors="replace").split("\r\n")
                out["answer"] = lines[0][:200]
                out["server"] = next((ln.split(":", 1)[1].strip() for ln in lines
                                      if ln.lower().startswith("server:")), None)
            except (TimeoutError, OSError):
                out["answer"] = None
            finally:
                writer.close()
    out["ms"] = round((time.monotonic() - started) * 1000, 1)
    if out.get("localPort"):
        out["conntrack"] = await _conntrack(agent.cfg.host_netns, protocol, sandbox.ip, out["localPort"])
    return out


async def probe(agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
    """Raises LookupError (no such running pod here) or ValueError (a bad request)."""
    namespace, name = body.get("namespace"), body.get("pod")
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise ValueError("namespace and pod are required strings")
    sandbox = _ready_sandbox(agent, namespace, name)
    if sandbox is None:
        raise LookupError(f"pod {namespace}/{name} has no running sandbox on node {agent.cfg.node_name}")
    out: dict[str, Any] = {"pod": f"{namespace}/{name}", "podIP": sandbox.ip}
    dns = body.get("dns")
    if dns is not None:
        if not isinstance(dns, str) or not dns or len(dns) > 253:
            raise ValueError("dns must be a name")
        out["dns"] = await resolve(sandbox, dns)
    target = body.get("connect")
    if target is not None:
        host, port = (target or {}).get("host"), (target or {}).get("port")
        protocol = str((target or {}).get("protocol") or "TCP").upper()
        if not isinstance(host, str) or not isinstance(port, int) or not 0 < port < 65536 or \
                protocol not in ("TCP", "UDP"):
            raise ValueError("connect needs host (an IP), port (1-65535) and protocol TCP or UDP")
        try:
            socket.inet_aton(host)
        except OSError:
            raise ValueError(f"connect.host must be an IPv4 address, not {host!r}") from None
        out["before"] = await iptables_save(agent.cfg.host_netns)
        out["connect"] = await connect(agent, sandbox, host, port, protocol)
        out["after"] = await iptables_save(agent.cfg.host_netns)
    return out


# --------------------------------------------------------------------------- HTTP


def add_routes(app: web.Application, agent: Agent) -> None:
    async def get_network(request: web.Request) -> web.Response:
        try:
            return web.json_response(await snapshot(agent))
        except (OSError, RuntimeError) as exc:
            return status_response(500, "InternalError", f"reading the node's network: {exc}")

    async def post_probe(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            return web.json_response(await probe(agent, body))
        except ValueError as exc:
            return status_response(400, "BadRequest", f"probe: {exc}")
        except LookupError as exc:
            return status_response(404, "NotFound", str(exc))
        except (OSError, RuntimeError) as exc:
            return status_response(500, "InternalError", f"probe: {exc}")

    app.router.add_get("/debug/network", get_network)
    app.router.add_post("/debug/network/probe", post_probe)
