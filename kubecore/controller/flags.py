"""The command line every controller process shares, and its `main`.

Each controller adds its own flags to `controller_parser`'s parser, then hands the parsed
arguments and a builder to `run_controller_main`.
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from kubecore.client.config import ConfigError, from_flags
from kubecore.client.rest import ApiClient
from kubecore.controller.leaderelection import ElectionConfig, LeaderElector, LeaseLock
from kubecore.controller.logs import setup_logging
from kubecore.controller.run import LeadershipLost


class Controller(Protocol):
    """What `run_controller_main` runs: a controller that serves health while it runs (and
    works only while holding its Lease when given an elector)."""

    async def run(self, *, health_host: str, health_port: int | None,
                  elector: LeaderElector | None = None) -> None: ...


def client_parser(module: str, description: str) -> argparse.ArgumentParser:
    """The flags of every process that talks to the API server: where it is, as whom, and logging."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig: the API server, its CA and this process's credentials")
    parser.add_argument("--apiserver", default=None,
                        help="API server URL, e.g. https://127.0.0.1:6443 (overrides the kubeconfig's)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    return parser


def controller_parser(module: str, description: str, *, health_port: int) -> argparse.ArgumentParser:
    """The flags of every controller process; each adds its own to the parser it gets. The
    --leader-elect* flags are kube-controller-manager's, with its defaults."""
    parser = client_parser(module, description)
    parser.add_argument("--health-port", type=int, default=health_port,
                        help="/healthz /readyz /metrics port (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    lease = module.rsplit(".", 1)[-1]
    parser.add_argument("--leader-elect", action="store_true",
                        help="work only while holding a Lease, so that several copies can run")
    parser.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-resource-name", default=lease)
    parser.add_argument("--leader-elect-resource-namespace", default="kube-system")
    return parser


def election_config(args: argparse.Namespace) -> ElectionConfig | None:
    """The election the flags ask for (None without --leader-elect); the identity is
    kube-controller-manager's: the host's name, an underscore, a fresh UUID."""
    if not getattr(args, "leader_elect", False):
        return None
    return ElectionConfig(args.leader_elect_resource_namespace, args.leader_elect_resource_name,
                          f"{socket.gethostname()}_{uuid.uuid4()}",
                          lease_duration=args.leader_elect_lease_duration,
                          renew_deadline=args.leader_elect_renew_deadline,
                          retry_period=args.leader_elect_retry_period)


def run_client_main(args: argparse.Namespace, serve: Callable[[ApiClient], Awaitable[None]]) -> int:
    """Set up logging, open the API client (`client_parser`'s flags) and run `serve(client)`."""
    setup_logging(args.log_level, json_lines=args.log_json)
    try:
        config = from_flags(args.kubeconfig, args.apiserver)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2

    async def run() -> None:
        async with ApiClient(config) as client:
            await serve(client)

    asyncio.run(run())
    return 0


def run_controller_main(args: argparse.Namespace,
                        build: Callable[[ApiClient, argparse.Namespace], Controller]) -> int:
    """Set up logging, open the API client, build the controller with `build(client, args)`
    and run it (its `run(health_host=, health_port=, elector=)`) until SIGTERM/SIGINT; exit 1
    when it loses its Lease (a supervisor starts it again, as a standby)."""
    try:
        config = election_config(args)
    except ValueError as exc:
        sys.stderr.write(f"error: --leader-elect-*: {exc}\n")
        return 2

    async def serve(client: ApiClient) -> None:
        elector = None
        if config is not None:
            elector = LeaderElector(config, LeaseLock(client, config.namespace, config.name))
        await build(client, args).run(health_host=args.health_host, health_port=args.health_port,
                                      elector=elector)

    try:
        return run_client_main(args, serve)
    except LeadershipLost as exc:
        sys.stderr.write(f"error: leader election lost: {exc}\n")
        return 1
