"""The API server with its trust layers taken out, for `bench.apiserver` to measure what they
cost: plain HTTP, every request the same admin user, every request allowed. Everything else
(handlers, registry, storage, etcd) is the server's own code. Never a way to run a cluster.

    .venv/bin/python -m bench.plain_apiserver --etcd-servers 127.0.0.1:2379 --port 6444
"""
from __future__ import annotations

import argparse
import sys

from aiohttp import web

from services.apiserver.app import STATE, create_app
from services.apiserver.authn import Credentials
from services.apiserver.authz import AlwaysAllow
from services.apiserver.registry.interfaces import SERVER_USER, UserInfo
from services.apiserver.settings import Settings


class EveryoneIsAdmin:
    async def authenticate(self, creds: Credentials) -> UserInfo | None:
        return SERVER_USER


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plain_apiserver")
    p.add_argument("--etcd-servers", required=True)
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    app = create_app(Settings(etcd_endpoints=a.etcd_servers.split(","), port=a.port,
                              authorization_mode="AlwaysAllow"))
    state = app[STATE]
    state.authenticator = EveryoneIsAdmin()
    state.authorizer = AlwaysAllow()
    web.run_app(app, host="127.0.0.1", port=a.port, print=lambda *x: None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
