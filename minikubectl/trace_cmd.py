"""`minikubectl trace <pod> <destination>`: a packet's path from a pod, step by step, from
live state (`kubecore.nettrace`).

It reads the API's pods, Services, EndpointSlices and Nodes, and each node's network through
the API server's node proxy (`/api/v1/nodes/<node>/proxy/debug/network`: the agent's view of
its kernel). A DNS name is resolved by the source pod itself (the agent sends the pod's
resolver's queries from inside the pod). `--probe` also makes one real connection from the pod
and shows which endpoint conntrack recorded and which rule counters moved.

Exit status: 0 when the packet gets through, 1 when the account finds where it breaks (the
account is printed either way), 1 with one line on stderr when the trace cannot start.
"""
from __future__ import annotations

import json
from typing import Any

from kubecore.nettrace import live
from kubecore.nettrace.trace import Destination, Trace, TraceError, parse_destination
from minikubectl.commands import Context
from minikubectl.errors import CliError

Obj = dict[str, Any]


def parse_source(text: str, namespace: str) -> tuple[str, str]:
    kind, _, name = text.rpartition("/")
    if kind not in ("", "pod", "pods", "po") or not name:
        raise CliError(f"{text!r}: the source is a pod: <name> or pod/<name>")
    return namespace, name


def render(t: Trace) -> str:
    out = [f"Trace: {t.source} -> {t.destination}", ""]
    for i, step in enumerate(t.steps, 1):
        out.append(f"{i:>2}. {step.title}    [{step.where}]")
        out += [f"      {line}" for line in step.lines]
        out += [f"      | {rule}" for rule in step.rules]
        if not step.ok:
            out.append(f"      BROKEN HERE: {step.problem}")
        out.append("")
    out.append(("Result: " if t.ok else "Result: the packet does not get through: ") + t.summary)
    return "\n".join(out)


async def run(ctx: Context, source_text: str, destination_text: str, *, protocol: str = "TCP",
              do_probe: bool = False, output: str | None = None) -> int:
    if output not in (None, "", "json"):
        raise CliError(f"unable to match a printer suitable for the output format {output!r}, allowed formats "
                       "are: json")
    namespace = ctx.target.namespace
    try:
        dest: Destination = parse_destination(destination_text, namespace, protocol)
    except TraceError as exc:
        raise CliError(str(exc)) from None
    src_ns, src_name = parse_source(source_text, namespace)
    world, warnings = await live.gather(ctx.api)
    source = world.pod(src_ns, src_name)
    if source is None:
        raise CliError(f'pods "{src_name}" not found in namespace {src_ns}')
    why_not = live.not_probeable(source, dest, do_probe)
    if why_not:
        raise CliError(why_not)
    account = await live.traced(ctx.api, world, source, dest, do_probe=do_probe, warnings=warnings)
    for warning in warnings:
        ctx.err.write(f"warning: {warning}\n")
    if output == "json":
        ctx.say(json.dumps(account.to_json(), indent=2))
    else:
        ctx.say(render(account))
    return 0 if account.ok else 1
