"""Command-line parsing and the top-level error handler.

Every failure ends as one line on stderr and exit code 1, in kubectl's words where
kubectl has them; an unexpected exception too (no traceback; `MINIKUBECTL_DEBUG=1`
shows it).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from kubecore.api.errors import ApiError
from minikubectl import cluster_cmd, commands, trace_cmd
from minikubectl.errors import CliError, format_api_error
from minikubectl.kubeconfig import Credentials, resolve_target
from minikubectl.transport import Api

Runner = Callable[[commands.Context, argparse.Namespace], Awaitable[int]]


class _Parser(argparse.ArgumentParser):
    """No abbreviated long options (pflag has none; with them `version --client` would be an
    ambiguous `--client-certificate`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def _global_flags() -> argparse.ArgumentParser:
    """Flags that may come before or after the sub-command, as with kubectl."""
    p = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS
    p.add_argument("-s", "--server", default=s, help="the API server's address")
    p.add_argument("--kubeconfig", default=s, help="the kubeconfig file to use")
    p.add_argument("--context", default=s, help="the kubeconfig context to use")
    p.add_argument("-n", "--namespace", default=s, help="the namespace of this request")
    p.add_argument("--certificate-authority", default=s, help="a CA file that verifies the server")
    p.add_argument("--client-certificate", default=s, help="a client certificate file for TLS")
    p.add_argument("--client-key", default=s, help="a client key file for TLS")
    p.add_argument("--token", default=s, help="a bearer token for the API server")
    p.add_argument("--insecure-skip-tls-verify", default=s, type=_bool_flag, nargs="?", const=True,
                   help="do not verify the server's certificate (insecure)")
    return p


def _bool_flag(text: str) -> bool:
    """A boolean flag's value as pflag reads it (`--show-events=false`)."""
    value = text.lower()
    if value in ("1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f'invalid argument "{text}": strconv.ParseBool: parsing '
                                     f'"{text}": invalid syntax')


def _file_flags(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("-f", "--filename", action="append", default=[], required=required,
                   help="a file, a directory of .yaml/.yml/.json files, or - for stdin")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="process the directory of -f recursively")


def build_parser() -> argparse.ArgumentParser:
    flags = _global_flags()
    parser: argparse.ArgumentParser = _Parser(prog="minikubectl", parents=[flags],
                     description="minikubectl controls the minicluster API server.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, run: Runner, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, parents=[flags])
        p.set_defaults(run=run)
        return p

    p = command("apply", lambda ctx, a: commands.apply(ctx, a.filename, a.recursive),
                "create or update objects from files (client-side apply)")
    _file_flags(p, required=True)

    p = command("create", lambda ctx, a: commands.create(ctx, a.filename, a.recursive),
                "create objects from files")
    _file_flags(p, required=True)

    p = command("get", lambda ctx, a: commands.get(ctx, a.args, commands.GetOptions(
        all_namespaces=a.all_namespaces, selector=a.selector, output=a.output, watch=a.watch,
        no_headers=a.no_headers, show_labels=a.show_labels,
        label_columns=tuple(k for value in a.label_columns for k in value.split(",") if k),
        sort_by=a.sort_by, allow_missing_template_keys=a.allow_missing_template_keys)),
        "list objects: tables, json, yaml, name, jsonpath or custom columns, sorted, watched")
    p.add_argument("args", nargs="*", metavar="KIND[,KIND] [NAME...] | KIND/NAME")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector")
    p.add_argument("-o", "--output", metavar="FORMAT",
                   help="wide, yaml, json, name, jsonpath=TEMPLATE, jsonpath-file=FILE, "
                        "jsonpath-as-json=TEMPLATE, custom-columns=HEADER:PATH[,...] or "
                        "custom-columns-file=FILE (kubectl's JSONPath: {.metadata.name}, "
                        '{range .items[*]}...{end}, [?(@.x=="y")], ...)')
    p.add_argument("-w", "--watch", action="store_true")
    p.add_argument("--no-headers", action="store_true",
                   help="no header line in tables and custom columns")
    p.add_argument("--show-labels", action="store_true",
                   help="a last LABELS column with each object's labels")
    p.add_argument("-L", "--label-columns", action="append", default=[], metavar="KEY[,KEY]",
                   help="a column per label key, headed by its last /-segment in upper case")
    p.add_argument("--sort-by", default="", metavar="JSONPATH",
                   help="sort by a field (.metadata.name or {.metadata.name}): numbers by value, "
                        "strings in natural order, objects without the field first")
    p.add_argument("--allow-missing-template-keys", type=_bool_flag, nargs="?", const=True,
                   default=True, metavar="BOOL",
                   help="a missing key prints nothing in jsonpath output, else it is an error "
                        "(default true)")

    p = command("describe", lambda ctx, a: commands.describe(ctx, a.kind, a.names, a.selector,
                                                             a.show_events),
                "show the details of objects and the events about them")
    p.add_argument("kind")
    p.add_argument("names", nargs="*")
    p.add_argument("-l", "--selector")
    p.add_argument("--show-events", type=_bool_flag, nargs="?", const=True, default=True,
                   metavar="BOOL",
                   help="show the Events about each object (default true)")

    p = command("delete", lambda ctx, a: commands.delete(
        ctx, a.args, a.filename, selector=a.selector, all_objects=a.all,
        ignore_not_found=a.ignore_not_found, recursive=a.recursive, cascade=a.cascade),
        "delete objects")
    p.add_argument("args", nargs="*", metavar="KIND NAME... | KIND/NAME")
    _file_flags(p, required=False)
    p.add_argument("-l", "--selector")
    p.add_argument("--all", action="store_true")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--cascade", nargs="?", const="background", default="background",
                   help='background (the default), orphan or foreground: what becomes of the '
                        "objects' dependents (Foreground: they go first; minikubectl does not "
                        "wait)")

    p = command("logs", lambda ctx, a: commands.logs(ctx, a.pod, a.container, a.follow),
                "print a container's logs")
    p.add_argument("pod")
    p.add_argument("-c", "--container")
    p.add_argument("-f", "--follow", action="store_true")

    p = command("exec", lambda ctx, a: commands.exec_(ctx, a.pod, a.container, a.exec_command,
                                                      a.stdin, a.tty),
                "run a command in a container: exec POD [-c C] -- CMD...")
    p.add_argument("pod")
    p.add_argument("-c", "--container")
    p.add_argument("-i", "--stdin", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")

    p = command("version", lambda ctx, a: commands.version(ctx, a.client, a.output),
                "print the client and server versions (-o json|yaml: kubectl's document)")
    p.add_argument("--client", action="store_true", help="the client version only")
    p.add_argument("-o", "--output", metavar="FORMAT",
                   help="json or yaml: kubectl's clientVersion and serverVersion document")

    p = command("api-resources", lambda ctx, a: commands.api_resources(
        ctx, namespaced={"true": True, "false": False}.get(str(a.namespaced).lower()),
        output=a.output), "list the server's resource types")
    p.add_argument("--namespaced", default=None)
    p.add_argument("-o", "--output")

    p = command("trace", lambda ctx, a: trace_cmd.run(ctx, a.source, a.destination, protocol=a.protocol,
                                                      do_probe=a.probe, output=a.output),
                "a packet's path from a pod to a Service, name, pod or address, step by step, from live state")
    p.add_argument("source", metavar="POD", help="the pod the packet leaves from: NAME or pod/NAME")
    p.add_argument("destination", metavar="DESTINATION",
                   help="svc/NAME:PORT, NAME[.NAMESPACE[.svc.cluster.local]]:PORT, pod/NAME[:PORT] or IP:PORT")
    p.add_argument("--protocol", default="TCP", help="TCP (the default), UDP or SCTP")
    p.add_argument("--probe", action="store_true",
                   help="also send one real request from the pod and show the endpoint conntrack recorded "
                        "and the rule counters that moved")
    p.add_argument("-o", "--output", metavar="FORMAT", help="json: the same steps for tools")

    cluster_cmd.register(sub, [flags])
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Arguments after `--` are the command of `exec`, never flags of minikubectl."""
    argv = list(argv)
    rest: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, rest = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if rest and args.command != "exec":
        raise CliError(f"unexpected arguments after --: {' '.join(rest)}")
    args.exec_command = rest
    if args.command == "version" and args.client:
        args.local_run = lambda a: commands.client_version(sys.stdout, a.output)
    return args


async def _run(args: argparse.Namespace) -> int:
    target = resolve_target(server=getattr(args, "server", None),
                            namespace=getattr(args, "namespace", None),
                            kubeconfig=getattr(args, "kubeconfig", None),
                            context=getattr(args, "context", None),
                            env=os.environ, home=Path.home(),
                            credentials=Credentials(
                                ca_file=getattr(args, "certificate_authority", None),
                                cert_file=getattr(args, "client_certificate", None),
                                key_file=getattr(args, "client_key", None),
                                token=getattr(args, "token", None),
                                insecure=getattr(args, "insecure_skip_tls_verify", None)))
    async with Api(target.config) as api:
        ctx = commands.Context(api=api, target=target)
        return await args.run(ctx, args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        local_run: Callable[[argparse.Namespace], int] | None = getattr(args, "local_run", None)
        if local_run is not None:
            return local_run(args)
        return asyncio.run(_run(args))
    except CliError as exc:
        return _fail(f"error: {exc}")
    except ApiError as exc:
        return _fail(format_api_error(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the one place that turns surprises into one line
        if os.environ.get("MINIKUBECTL_DEBUG"):
            traceback.print_exc()
        return _fail(f"error: unexpected {type(exc).__name__}: {exc}")


def _fail(line: str) -> int:
    print(line, file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
