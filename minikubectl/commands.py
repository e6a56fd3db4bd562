"""What each sub-command does, in terms of the API client and the pure printers.

Every command returns its exit code. Failures of one object (a name not found, one
manifest rejected) are printed as they happen and the command goes on with the rest,
then exits 1, as kubectl does; failures of the whole command raise.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from kubecore.api import propagation as P
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.api.validation import go_bool
from minikubectl import __version__, kinds, manifests, printers
from minikubectl import describe as D
from minikubectl.errors import CliError, format_api_error
from minikubectl.kubeconfig import Target
from minikubectl.lastapplied import last_applied, modified_configuration, three_way_patch
from minikubectl.transport import Api

STRATEGIC = "application/strategic-merge-patch+json"
OUTPUTS = ("wide", "yaml", "json", "name")


@dataclass
class Context:
    api: Api
    target: Target
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    failed: bool = False

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def fail(self, text: str) -> None:
        """One object's failure: reported now, the exit code says so at the end."""
        print(text, file=self.err, flush=True)
        self.failed = True

    @property
    def code(self) -> int:
        return 1 if self.failed else 0

    def namespace_of(self, rt: ResourceType, obj: Obj | None = None) -> str | None:
        if not rt.namespaced:
            return None
        ns = ((obj or {}).get("metadata") or {}).get("namespace")
        return ns or self.target.namespace


class _YamlDumper(yaml.SafeDumper):
    """Multi-line strings (the last-applied annotation) as `|` blocks, as kubectl shows them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_YamlDumper.add_representer(str, _represent_str)


def dump(obj: Any, output: str) -> str:
    if output == "json":
        return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False) + "\n"
    return yaml.dump(obj, Dumper=_YamlDumper, default_flow_style=False, sort_keys=True,
                     allow_unicode=True)


def _typed(rt: ResourceType, obj: Obj) -> Obj:
    """List items may come without kind and apiVersion; printed objects carry them."""
    return {"apiVersion": rt.api_version, "kind": rt.kind, **obj}


# --- apply, create ------------------------------------------------------------------------

def _manifest_target(ctx: Context, m: manifests.Manifest) -> tuple[ResourceType, Obj, str | None]:
    """The resource type, the object with its namespace filled in, and the namespace."""
    obj = m.obj
    rt = R.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
    name = (obj.get("metadata") or {}).get("name", "")
    if rt is None:
        raise CliError(f'resource mapping not found for name: "{name}" namespace: '
                       f'"{ctx.target.namespace}" from "{m.source}": no matches for kind '
                       f'"{obj.get("kind")}" in version "{obj.get("apiVersion")}"')
    if not name:
        raise CliError(f'error when retrieving current configuration of "{m.source}": '
                       "resource name may not be empty")
    obj = dict(obj)
    meta = dict(obj.get("metadata") or {})
    ns: str | None = None
    if rt.namespaced:
        ns = meta.get("namespace") or ctx.target.namespace
        if ctx.target.namespace_explicit and ns != ctx.target.namespace:
            raise CliError(f'the namespace from the provided object "{ns}" does not match the '
                           f'namespace "{ctx.target.namespace}". You must pass '
                           f"'--namespace={ns}' to perform this operation.")
        meta["namespace"] = ns
    obj["metadata"] = meta
    return rt, obj, ns


async def apply_one(ctx: Context, m: manifests.Manifest) -> None:
    rt, obj, ns = _manifest_target(ctx, m)
    name = obj["metadata"]["name"]
    modified = modified_configuration(obj)
    label = printers.object_name(rt, obj)
    try:
        current = await ctx.api.get(kinds.path(rt, ns, name))
    except ApiError as exc:
        if exc.code != 404:
            raise
        try:
            await ctx.api.create(kinds.path(rt, ns), modified)
        except ApiError as err:
            ctx.fail(format_api_error(err, context=f'error when creating "{m.source}": '))
            return
        ctx.say(f"{label} created")
        return
    patch = three_way_patch(last_applied(current), modified, current, rt.kind)
    if not patch:
        ctx.say(f"{label} unchanged")
        return
    try:
        await ctx.api.patch(kinds.path(rt, ns, name), patch, STRATEGIC)
    except ApiError as err:
        ctx.fail(format_api_error(err, context=f'error when applying patch to "{m.source}": '))
        return
    ctx.say(f"{label} configured")


async def apply(ctx: Context, files: list[str], recursive: bool = False) -> int:
    for m in manifests.load(files, verb="apply", recursive=recursive):
        try:
            await apply_one(ctx, m)
        except CliError as exc:
            ctx.fail(f"error: {exc}")
    return ctx.code


async def create(ctx: Context, files: list[str], recursive: bool = False) -> int:
    for m in manifests.load(files, verb="create", recursive=recursive):
        try:
            rt, obj, ns = _manifest_target(ctx, m)
        except CliError as exc:
            ctx.fail(f"error: {exc}")
            continue
        try:
            await ctx.api.create(kinds.path(rt, ns), obj)
        except ApiError as err:
            ctx.fail(format_api_error(err, context=f'error when creating "{m.source}": '))
            continue
        ctx.say(f"{printers.object_name(rt, obj)} created")
    return ctx.code


# --- get ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GetOptions:
    all_namespaces: bool = False
    selector: str | None = None
    output: str | None = None
    watch: bool = False


async def _fetch(ctx: Context, req: kinds.Request, opts: GetOptions) -> tuple[list[Obj], str]:
    """The objects asked for (names not found are reported and skipped), and the list's
    resourceVersion to watch from."""
    ns = None if opts.all_namespaces else ctx.namespace_of(req.rt)
    if not req.names:
        params = {"labelSelector": opts.selector} if opts.selector else None
        lst = await ctx.api.get(kinds.path(req.rt, ns), params)
        return ([_typed(req.rt, o) for o in lst.get("items") or []],
                str((lst.get("metadata") or {}).get("resourceVersion") or ""))
    found = []
    for name in req.names:
        try:
            found.append(_typed(req.rt, await ctx.api.get(kinds.path(req.rt, ns, name))))
        except ApiError as err:
            ctx.fail(format_api_error(err))
    return found, ""


def _table_spec(rt: ResourceType, opts: GetOptions, kind_prefix: bool) -> printers.TableSpec:
    return printers.TableSpec(rt, wide=opts.output == "wide",
                              with_namespace=opts.all_namespaces and rt.namespaced,
                              kind_prefix=kind_prefix)


async def get(ctx: Context, args: list[str], opts: GetOptions) -> int:
    if opts.output not in (None, *OUTPUTS):
        raise CliError(f'unable to match a printer suitable for the output format "{opts.output}", '
                       f"allowed formats are: {','.join(OUTPUTS)}")
    requests = kinds.parse_targets(args)
    if opts.watch:
        if len(requests) != 1:
            raise CliError("watch is only supported on individual resources and resource "
                           f"collections, but {len(requests)} resources were found")
        return await watch(ctx, requests[0], opts)
    results: list[tuple[ResourceType, list[Obj]]] = []
    for req in requests:
        objs, _ = await _fetch(ctx, req, opts)
        results.append((req.rt, objs))
    everything = [(rt, o) for rt, objs in results for o in objs]
    if opts.output in ("json", "yaml"):
        single_name = len(requests) == 1 and len(requests[0].names) == 1
        _print_documents(ctx, [o for _, o in everything], opts.output, single_name=single_name)
    elif opts.output == "name":
        for rt, o in everything:
            ctx.say(printers.object_name(rt, o))
    elif not everything:
        if not ctx.failed:
            where = "" if opts.all_namespaces else f" in {ctx.target.namespace} namespace"
            print(f"No resources found{where}.", file=ctx.err, flush=True)
    else:
        _print_tables(ctx, results, opts, several=len(requests) > 1)
    return ctx.code


def _print_documents(ctx: Context, objs: list[Obj], output: str, *, single_name: bool) -> None:
    """`-o json|yaml`: the object asked for by name, else a List of all found."""
    if single_name and objs:
        ctx.out.write(dump(objs[0], output))
    elif not single_name:
        ctx.out.write(dump({"apiVersion": "v1", "kind": "List", "items": objs,
                            "metadata": {"resourceVersion": ""}}, output))
    ctx.out.flush()


def _print_tables(ctx: Context, results: list[tuple[ResourceType, list[Obj]]], opts: GetOptions,
                  *, several: bool) -> None:
    """One table per kind that has objects, blank lines between them."""
    now = ctx.clock()
    tables = []
    for rt, objs in results:
        if not objs:
            continue
        spec = _table_spec(rt, opts, several)
        tables.append(printers.render_table([spec.header()] + [spec.row(o, now) for o in objs]))
    ctx.out.write("\n".join(tables))
    ctx.out.flush()


async def watch(ctx: Context, req: kinds.Request, opts: GetOptions) -> int:
    """The current objects, then one line (or document) per change, until interrupted."""
    ns = None if opts.all_namespaces else ctx.namespace_of(req.rt)
    params: dict[str, str] = {}
    if opts.selector:
        params["labelSelector"] = opts.selector
    if len(req.names) == 1:
        params["fieldSelector"] = f"metadata.name={req.names[0]}"
    elif req.names:
        raise CliError("watch is only supported on individual resources and resource "
                       f"collections, but {len(req.names)} resources were found")
    lst = await ctx.api.get(kinds.path(req.rt, ns), params or None)
    objs = [_typed(req.rt, o) for o in lst.get("items") or []]
    rv = str((lst.get("metadata") or {}).get("resourceVersion") or "")
    spec = _table_spec(req.rt, opts, False)
    widths: list[int] | None = None

    def show(o: Obj) -> None:
        nonlocal widths
        if opts.output == "name":
            ctx.say(printers.object_name(req.rt, o))
        elif opts.output in ("json", "yaml"):
            sep = "---\n" if opts.output == "yaml" else ""
            ctx.out.write(sep + dump(o, opts.output))
            ctx.out.flush()
        else:
            row = spec.row(o, ctx.clock())
            if widths is None:
                widths = printers.column_widths([spec.header(), row])
                ctx.out.write(printers.render_table([spec.header()], widths))
            ctx.out.write(printers.render_table([row], widths))
            ctx.out.flush()

    if objs and opts.output in (None, "wide"):
        rows = [spec.header()] + [spec.row(o, ctx.clock()) for o in objs]
        widths = printers.column_widths(rows)
        ctx.out.write(printers.render_table(rows, widths))
        ctx.out.flush()
    else:
        for o in objs:
            show(o)
    while True:
        async for event in ctx.api.watch(req.rt, ns, resource_version=rv,
                                         label_selector=params.get("labelSelector"),
                                         field_selector=params.get("fieldSelector")):
            obj = event.get("object") or {}
            etype = event.get("type")
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
            if etype in ("ADDED", "MODIFIED", "DELETED"):
                show(_typed(req.rt, obj))


# --- describe -----------------------------------------------------------------------------

async def describe(ctx: Context, kind: str, names: list[str], selector: str | None = None,
                   show_events: bool = True) -> int:
    rt = kinds.resolve(kind)
    ns = ctx.namespace_of(rt)
    if names:
        objs = []
        for name in names:
            try:
                objs.append(await ctx.api.get(kinds.path(rt, ns, name)))
            except ApiError as err:
                ctx.fail(format_api_error(err))
    else:
        params = {"labelSelector": selector} if selector else None
        objs = (await ctx.api.get(kinds.path(rt, ns), params)).get("items") or []
        if not objs:
            print(f"No resources found in {ctx.target.namespace} namespace.", file=ctx.err)
    texts = []
    for obj in objs:
        events = await _events_about(ctx, rt, obj) if show_events and rt is not R.EVENTS else None
        texts.append(await _describe_one(ctx, rt, obj, events))
    if texts:
        ctx.out.write("\n\n".join(texts))
        ctx.out.flush()
    return ctx.code


def events_field_selector(rt: ResourceType, obj: Obj, uid: str | None = None) -> str:
    """kubectl's selector for the Events about an object: name, namespace, kind (not for
    pods: kubectl blanks it there) and uid, keys sorted as fields.Set renders them."""
    meta = obj.get("metadata") or {}
    fields = {"involvedObject.name": meta.get("name", ""),
              "involvedObject.namespace": meta.get("namespace") or "",
              "involvedObject.uid": uid if uid is not None else meta.get("uid", "")}
    if rt is not R.PODS:
        fields["involvedObject.kind"] = rt.kind
    return ",".join(f"{k}={v}" for k, v in sorted(fields.items()))


async def _events_about(ctx: Context, rt: ResourceType, obj: Obj) -> list[Obj]:
    """Events about `obj` (in its namespace; every namespace for a cluster-scoped object).
    A node's come twice, as kubectl asks: controllers refer to it by uid, kubelets by name."""
    meta = obj.get("metadata") or {}
    path = kinds.path(R.EVENTS, meta.get("namespace") or None)
    uids = [meta.get("uid", "")] + ([meta.get("name", "")] if rt is R.NODES else [])
    found: list[Obj] = []
    for uid in uids:
        lst = await ctx.api.get(path, {"fieldSelector": events_field_selector(rt, obj, uid)})
        found += lst.get("items") or []
    return found


async def _describe_one(ctx: Context, rt: ResourceType, obj: Obj,
                        events: list[Obj] | None) -> str:
    now = ctx.clock()
    if rt is R.SERVICES:
        meta = obj["metadata"]
        slices = await ctx.api.get(
            kinds.path(R.ENDPOINTSLICES, meta.get("namespace")),
            {"labelSelector": f"kubernetes.io/service-name={meta['name']}"})
        return D.describe_service(obj, slices.get("items") or [], events, now)
    if rt is R.PODS:
        return D.describe_pod(obj, now, events)
    return D.describe_generic(obj, rt.namespaced, events, now)


# --- delete ---------------------------------------------------------------------------------

def cascade_policy(value: str) -> tuple[str, str | None]:
    """kubectl's --cascade: background, orphan or foreground; the deprecated booleans map
    to background and orphan, with a warning. -> (propagationPolicy, warning)."""
    flag = go_bool(value)
    if flag is not None:
        policy = P.BACKGROUND if flag else P.ORPHAN
        return policy, (f"--cascade={str(flag).lower()} is deprecated (boolean value) and can "
                        f"be replaced with --cascade={policy.lower()}.")
    policies = {p.lower(): p for p in P.POLICIES}
    if value not in policies:
        raise CliError(f'invalid cascade value ({value}). Must be "background", "foreground", '
                       'or "orphan"')
    return policies[value], None


async def _delete(ctx: Context, rt: ResourceType, ns: str | None, name: str, *,
                  source: str | None, ignore_not_found: bool, policy: str = P.BACKGROUND) -> None:
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy}
    try:
        await ctx.api.delete(kinds.path(rt, ns, name), options)
    except ApiError as err:
        if err.code == 404 and ignore_not_found:
            return
        context = f'error when deleting "{source}": ' if source else ""
        ctx.fail(format_api_error(err, context=context))
        return
    ctx.say(f'{printers.qualified_kind(rt)} "{name}" deleted')


async def delete(ctx: Context, args: list[str], files: list[str], *, selector: str | None = None,
                 all_objects: bool = False, ignore_not_found: bool = False,
                 recursive: bool = False, cascade: str = "background") -> int:
    policy, warning = cascade_policy(cascade)
    if warning:
        print(f"warning: {warning}", file=ctx.err, flush=True)
    if files:
        if args:
            raise CliError("there is no need to specify a resource type as a separate argument "
                           "when passing arguments in resource/name form")
        for m in manifests.load(files, verb="delete", recursive=recursive):
            try:
                rt, obj, ns = _manifest_target(ctx, m)
            except CliError as exc:
                ctx.fail(f"error: {exc}")
                continue
            await _delete(ctx, rt, ns, obj["metadata"]["name"], source=m.source,
                          ignore_not_found=ignore_not_found, policy=policy)
        return ctx.code
    if not args:
        raise CliError("You must provide one or more resources by argument or filename.")
    for req in kinds.parse_targets(args):
        ns = ctx.namespace_of(req.rt)
        names = list(req.names)
        if not names:
            if not (selector or all_objects):
                raise CliError("resource(s) were provided, but no name was specified")
            params = {"labelSelector": selector} if selector else None
            lst = await ctx.api.get(kinds.path(req.rt, ns), params)
            names = [o["metadata"]["name"] for o in lst.get("items") or []]
            if not names and not ctx.failed:
                print("No resources found", file=ctx.err, flush=True)
        for name in names:
            await _delete(ctx, req.rt, ns, name, source=None, ignore_not_found=ignore_not_found,
                          policy=policy)
    return ctx.code


# --- logs, exec -------------------------------------------------------------------------------

async def _pod_container(ctx: Context, pod_name: str, container: str | None) -> tuple[str, str]:
    ns = ctx.namespace_of(R.PODS) or "default"
    pod = await ctx.api.get(kinds.path(R.PODS, ns, pod_name))
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if container is not None:
        if container not in names:
            raise CliError(f"container {container} is not valid for pod {pod_name}")
        return ns, container
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(
        "kubectl.kubernetes.io/default-container")
    chosen = str(default) if default in names else (str(names[0]) if names else "")
    if len(names) > 1:
        print(f'Defaulted container "{chosen}" out of: {", ".join(names)}', file=ctx.err)
    return ns, chosen


async def logs(ctx: Context, pod: str, container: str | None, follow: bool) -> int:
    ns, chosen = await _pod_container(ctx, pod, container)
    params = {"container": chosen}
    if follow:
        params["follow"] = "true"
    out = getattr(ctx.out, "buffer", None)
    async for chunk in ctx.api.stream(kinds.path(R.PODS, ns, pod, "log"), params):
        if out is not None:
            out.write(chunk)
            out.flush()
        else:
            ctx.out.write(chunk.decode(errors="replace"))
    return 0


async def exec_(ctx: Context, pod: str, container: str | None, command: list[str],
                stdin: bool = False, tty: bool = False) -> int:
    if not command:
        raise CliError("you must specify at least one command for the container")
    ns, chosen = await _pod_container(ctx, pod, container)
    params: list[tuple[str, str]] = [("container", chosen), ("stdout", "true"), ("stderr", "true")]
    params += [("command", c) for c in command]
    if stdin:
        params.append(("stdin", "true"))
    if tty:
        params.append(("tty", "true"))
    body = b""
    async for chunk in ctx.api.stream(kinds.path(R.PODS, ns, pod, "exec"), params,
                                      method="POST"):
        body += chunk
    # The API server answers one JSON object {"exitCode", "stdout", "stderr"} (no stream
    # protocol); anything else is shown as it came.
    try:
        result = json.loads(body)
    except ValueError:
        result = None
    if not (isinstance(result, dict) and "exitCode" in result):
        ctx.out.write(body.decode(errors="replace"))
        return 0
    ctx.out.write(str(result.get("stdout") or ""))
    ctx.out.flush()
    ctx.err.write(str(result.get("stderr") or ""))
    ctx.err.flush()
    return int(result["exitCode"])


# --- version, api-resources ------------------------------------------------------------------

CLIENT_VERSION = f"v{__version__}-minikubectl"


async def version(ctx: Context, client_only: bool = False) -> int:
    ctx.say(f"Client Version: {CLIENT_VERSION}")
    if client_only:
        return 0
    info = await ctx.api.get("/version")
    ctx.say(f"Server Version: {info.get('gitVersion', '<unknown>')}")
    return 0


async def api_resources(ctx: Context, *, namespaced: bool | None = None, output: str | None = None) -> int:
    group_versions = ["v1"]
    for g in (await ctx.api.get("/apis")).get("groups") or []:
        preferred = (g.get("preferredVersion") or {}).get("groupVersion")
        if preferred:
            group_versions.append(preferred)
    rows: list[tuple[str, Obj]] = []
    for gv in group_versions:
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        for r in (await ctx.api.get(path)).get("resources") or []:
            if "/" in r.get("name", ""):
                continue
            if namespaced is not None and bool(r.get("namespaced")) != namespaced:
                continue
            rows.append((gv, r))
    rows.sort(key=lambda row: (row[0].split("/")[0] if "/" in row[0] else "", row[1]["name"]))
    if output == "name":
        for gv, r in rows:
            group = gv.split("/")[0] if "/" in gv else ""
            ctx.say(f"{r['name']}.{group}" if group else r["name"])
        return 0
    table = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
    table += [[r["name"], ",".join(r.get("shortNames") or []), gv,
               str(bool(r.get("namespaced"))).lower(), r.get("kind", "")] for gv, r in rows]
    ctx.out.write(printers.render_table(table))
    ctx.out.flush()
    return 0
