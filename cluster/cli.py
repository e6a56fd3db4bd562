"""Argument handling for `cluster up|down|status`, shared by minikubectl and `python -m cluster`."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from cluster.config import DEFAULT_STATE_DIR, ClusterConfig, load_state


def add_arguments(p: argparse.ArgumentParser, action: str) -> None:
    p.add_argument("--name", default="mc", help="cluster name; prefixes nodes, namespaces, bridge")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    if action == "up":
        p.add_argument("--nodes", type=int, default=2)
        p.add_argument("--detach", action="store_true", help="run in the background and return when ready")
        p.add_argument("--node-cidr", default="10.250.0.0/24")
        p.add_argument("--cluster-cidr", default="10.244.0.0/16")
        p.add_argument("--service-cidr", default="10.96.0.0/12")
        p.add_argument("--apiserver-port", type=int, default=6443)
        p.add_argument("--node-grace", type=int, default=40)
        p.add_argument("--etcd-port", type=int, default=2379, help="etcd client port")
        p.add_argument("--etcd-peer-port", type=int, default=2380)
        p.add_argument("--health-base-port", type=int, default=10300,
                       help="first of the controllers' health ports on loopback")
        p.add_argument("--dns-port", type=int, default=53)
        p.add_argument("--apiserver-cert-extra-sans", default="",
                       help="comma-separated extra names and addresses for the API server's certificate")
    if action == "status":
        p.add_argument("-o", "--output", choices=["json", "text"], default="text")


def config_from(args: argparse.Namespace) -> ClusterConfig:
    state = load_state(args.state_dir)
    if getattr(args, "cluster_action", None) != "up" and state and state.get("config"):
        return ClusterConfig.from_json(state["config"])
    cfg = ClusterConfig(name=args.name, state_dir=args.state_dir)
    if getattr(args, "cluster_action", None) == "up":
        cfg.nodes = args.nodes
        cfg.node_cidr, cfg.cluster_cidr, cfg.service_cidr = args.node_cidr, args.cluster_cidr, args.service_cidr
        cfg.apiserver_port = args.apiserver_port
        cfg.node_grace_seconds = args.node_grace
        cfg.etcd_client_port, cfg.etcd_peer_port = args.etcd_port, args.etcd_peer_port
        cfg.health_base_port, cfg.dns_port = args.health_base_port, args.dns_port
        cfg.apiserver_sans = [s.strip() for s in args.apiserver_cert_extra_sans.split(",") if s.strip()]
    return cfg


def run(args: argparse.Namespace) -> int:
    from cluster import launcher
    from cluster.supervisor import StartError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = config_from(args)
    action = args.cluster_action
    try:
        if action == "up":
            if args.detach:
                argv = ["up", "--name", cfg.name, "--state-dir", str(cfg.state_dir),
                        "--nodes", str(cfg.nodes), "--node-cidr", cfg.node_cidr,
                        "--cluster-cidr", cfg.cluster_cidr, "--service-cidr", cfg.service_cidr,
                        "--apiserver-port", str(cfg.apiserver_port), "--node-grace", str(cfg.node_grace_seconds),
                        "--etcd-port", str(cfg.etcd_client_port), "--etcd-peer-port", str(cfg.etcd_peer_port),
                        "--health-base-port", str(cfg.health_base_port),
                        "--dns-port", str(cfg.dns_port),
                        "--apiserver-cert-extra-sans", ",".join(cfg.apiserver_sans)]
                return launcher.up_detached(cfg, argv)
            return asyncio.run(launcher.run_up(cfg))
        if action == "down":
            launcher.down(cfg)
            return 0
        if action == "status":
            st = launcher.status(cfg)
            if args.output == "json":
                print(json.dumps(st, indent=2))
            else:
                print(f"cluster {cfg.name}: {st['status']}")
                if st["apiserver"]:
                    print(f"  apiserver {st['apiserver']}  dns {st['dns']}  kubeconfig {st['kubeconfig']}")
                for n in st["nodes"]:
                    print(f"  node {n['name']} {n['address']} (netns {n['netns']})")
                for name, c in st["components"].items():
                    state = "healthy" if c["healthy"] else "running" if c["running"] else "stopped"
                    print(f"  {name:<28} pid {c['pid']}  {state}  restarts {c['restarts']}")
            return 0 if st["status"] in ("ready", "running") else 3
    except (launcher.LaunchError, StartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(action)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cluster", description="the local cluster launcher")
    sub = p.add_subparsers(dest="cluster_action", required=True)
    for action in ("up", "down", "status"):
        add_arguments(sub.add_parser(action), action)
    return run(p.parse_args(argv))
