"""The command line every controller process shares, and its `main`.

Each controller adds its own flags to `controller_parser`'s parser, then hands the parsed
arguments and a builder to `run_controller_main`.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

from kubecore.client.config import ConfigError, from_flags
from kubecore.client.rest import ApiClient
from kubecore.controller.logs import setup_logging


class Controller(Protocol):
    """What `run_controller_main` runs: a controller that serves health while it runs."""

    async def run(self, *, health_host: str, health_port: int | None) -> None: ...


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
    """The flags of every controller process; each adds its own to the parser it gets."""
    parser = client_parser(module, description)
    parser.add_argument("--health-port", type=int, default=health_port,
                        help="/healthz /readyz /metrics port (0: any free port)")
    parser.add_argument("--health-host", default="127.0.0.1")
    return parser


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
    and run it (its `run(health_host=, health_port=)`) until SIGTERM/SIGINT."""
    async def serve(client: ApiClient) -> None:
        await build(client, args).run(health_host=args.health_host, health_port=args.health_port)

    return run_client_main(args, serve)
