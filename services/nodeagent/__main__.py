"""`python -m services.nodeagent`: one node agent per node, run as root.

In the local cluster it runs inside the node's network namespace:
    nsenter --net=/run/netns/<node> python -m services.nodeagent --node-name <node> ...
With `--host-netns PATH` it stays in its own namespace (where the API server is reachable) and
does the node's network work -- CNI, routes, probes, its HTTP port -- in PATH.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from kubecore.api.cron import CronError, parse_duration
from kubecore.api.nodenet import NodeRanges
from kubecore.client.config import ConfigError, from_flags
from kubecore.controller.logs import setup_logging
from services.nodeagent.agent import Agent, AgentConfig
from services.nodeagent.imagegc import GcPolicy
from services.nodeagent.oci.registry import parse_mirror
from services.nodeagent.oci.runc import become_subreaper
from services.nodeagent.podsync import Backoff
from services.nodeagent.server import serve

log = logging.getLogger("nodeagent")


def _duration(text: str) -> float:
    """A Go duration flag (`2m0s`, `90s`), in seconds."""
    try:
        return parse_duration(text)
    except CronError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parse_args(argv: list[str] | None = None) -> AgentConfig:
    p = argparse.ArgumentParser(prog="nodeagent", description="minicluster node agent (kubelet)")
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig: the API server, its CA and this node's credentials")
    p.add_argument("--apiserver", default=None,
                   help="API server URL, e.g. https://10.0.0.1:6443 (overrides the kubeconfig's)")
    p.add_argument("--node-name", required=True)
    p.add_argument("--node-ip", required=True, help="the node's InternalIP")
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--cni-bin-dir", default="/usr/lib/cni", help="colon-separated plugin directories")
    p.add_argument("--cni-conf-dir", required=True, type=Path)
    p.add_argument("--cluster-dns", default="10.96.0.10")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="the pod range: routes to other nodes' pods must be node subnets of it")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--node-network", default="",
                   help="the nodes' network (CIDR): route gateways must be in it (empty: no check)")
    p.add_argument("--port", type=int, default=10250, help="the secure (HTTPS) port")
    p.add_argument("--bind-address", default="",
                   help="address of the secure port (default: the node's own address)")
    p.add_argument("--tls-cert-file", required=True, help="the node's serving certificate (PEM)")
    p.add_argument("--tls-private-key-file", required=True)
    p.add_argument("--client-ca-file", required=True,
                   help="CA whose client certificates may call the secure port")
    p.add_argument("--authorization-mode", choices=["Webhook", "AlwaysAllow"], default="Webhook",
                   help="Webhook: ask the API server (SubjectAccessReview) for each caller")
    p.add_argument("--healthz-port", type=int, default=10248,
                   help="plain-HTTP /healthz /readyz /metrics port on --healthz-bind-address; 0: none")
    p.add_argument("--healthz-bind-address", default="127.0.0.1")
    p.add_argument("--host-netns", default=None,
                   help="the node's network namespace (path or name) when the agent runs outside it")
    p.add_argument("--ip-masq", action="store_true",
                   help="masquerade pod traffic to addresses outside --cluster-cidr, as kind's ip-masq-agent "
                        "does (for nodes whose neighbours cannot route back to pods, as in compose)")
    p.add_argument("--network-policy-agent", default="", metavar="URL",
                   help="the node's NetworkPolicy agent (http://127.0.0.1:10258): no container of a new pod "
                        "starts before it has the pod's policy in place")
    p.add_argument("--container-runtime", choices=["runc", "crun", "process"], default="process",
                   help="runc or crun (an OCI runtime; containers from the images in --image-store-dir), or "
                        "process (host processes: each container's command on the node, its image not run)")
    p.add_argument("--image-store-dir", type=Path, default=None,
                   help="the node's image store (default: <state-dir>/images)")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="REGISTRY=URL",
                   help="an endpoint to pull REGISTRY's images from first, e.g. docker.io=http://127.0.0.1:5000 "
                        "(repeatable; containerd's hosts.toml mirrors)")
    p.add_argument("--image-gc-high-threshold", type=int, default=85,
                   help="percent of the image file system in use that starts an image garbage collection")
    p.add_argument("--image-gc-low-threshold", type=int, default=80,
                   help="percent the image garbage collection frees down to")
    p.add_argument("--minimum-image-ttl-duration", type=_duration, default=120.0,
                   help="how long an unused image is kept at least (a Go duration: 2m0s)")
    p.add_argument("--image-gc-period", type=_duration, default=300.0, help=argparse.SUPPRESS)
    p.add_argument("--heartbeat-interval", type=float, default=10.0)
    p.add_argument("--backoff-base", type=float, default=10.0, help="first container restart back-off (s)")
    p.add_argument("--backoff-max", type=float, default=300.0)
    p.add_argument("--relist-interval", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    try:
        NodeRanges.parse(a.cluster_cidr, a.node_cidr_mask_size, a.node_network)
    except ValueError as exc:
        p.error(f"--cluster-cidr, --node-cidr-mask-size, --node-network: {exc}")
    setup_logging(a.log_level)
    try:
        client_config = from_flags(a.kubeconfig, a.apiserver)
    except ConfigError as exc:
        p.error(str(exc))
    try:
        mirrors = tuple(parse_mirror(m) for m in a.registry_mirror)
    except ValueError as exc:
        p.error(f"--registry-mirror: {exc}")
    gc = GcPolicy(a.image_gc_high_threshold, a.image_gc_low_threshold, a.minimum_image_ttl_duration,
                  a.image_gc_period)
    try:
        gc.check()
    except ValueError as exc:
        p.error(f"--image-gc-high-threshold, --image-gc-low-threshold: {exc}")
    host_netns = a.host_netns
    if host_netns and "/" not in host_netns:
        host_netns = f"/run/netns/{host_netns}"
    return AgentConfig(
        apiserver=client_config, node_name=a.node_name, node_ip=a.node_ip, state_dir=a.state_dir,
        cni_conf_dir=a.cni_conf_dir, cni_bin_dirs=tuple(d for d in a.cni_bin_dir.split(":") if d),
        cluster_dns=a.cluster_dns, cluster_cidr=a.cluster_cidr, node_cidr_mask=a.node_cidr_mask_size,
        node_network=a.node_network, port=a.port, bind_address=a.bind_address or a.node_ip,
        host_netns=host_netns, ip_masq=a.ip_masq, tls_cert_file=a.tls_cert_file,
        tls_private_key_file=a.tls_private_key_file, client_ca_file=a.client_ca_file,
        authorization_mode=a.authorization_mode, healthz_port=a.healthz_port,
        healthz_bind_address=a.healthz_bind_address,
        heartbeat_interval=a.heartbeat_interval, backoff=Backoff(a.backoff_base, a.backoff_max),
        relist_interval=a.relist_interval, workers=a.workers, container_runtime=a.container_runtime,
        image_store_dir=a.image_store_dir or a.state_dir / "images", registry_mirrors=mirrors, image_gc=gc,
        network_policy_agent=a.network_policy_agent,
    )


async def main(cfg: AgentConfig) -> None:
    if cfg.container_runtime != "process":
        # a container's first process is left behind by `runc run --detach`: it becomes ours,
        # and so does its exit status (services/nodeagent/oci/runc.py)
        become_subreaper()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(cfg)
    runners = await serve(agent)
    work = None
    try:
        starting = asyncio.create_task(agent.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            work = asyncio.create_task(agent.run_workers())
            await asyncio.wait([work, stopping], return_when=asyncio.FIRST_COMPLETED)
        else:
            starting.cancel()
    finally:
        log.info("stopping; pods keep running")
        await agent.stop()
        if work is not None:
            work.cancel()
        for runner in runners:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
