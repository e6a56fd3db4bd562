"""What each sub-command does, in terms of the API client and the pure printers.

Every command returns its exit code. Failures of one object (a name not found, one
manifest rejected) are printed as they happen and the command goes on with the rest,
then exits 1, as kubectl does; failures of the whole command raise.
"""
from __future__ import annotations

import json
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

import yaml

from kubecore.api import propagation as P
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.api.validation import go_bool
from minikubectl import __version__, gotext, jsonpath, kinds, manifests, output, printers, sorting
from minikubectl import describe as D
from minikubectl.errors import CliError, format_api_error
from minikubectl.kubeconfig import Target
from minikubectl.lastapplied import last_applied, modified_configuration, three_way_patch
from minikubectl.transport import Api

STRATEGIC = "application/strategic-merge-patch+json"
T = TypeVar("T")


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
    no_headers: bool = False
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()
    sort_by: str = ""
    allow_missing_template_keys: bool = True


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


Spec = printers.TableSpec | printers.ColumnsSpec


def _row_spec(rt: ResourceType, opts: GetOptions, out: output.Output, kind_prefix: bool) -> Spec:
    if out.kind == "custom-columns":
        return printers.ColumnsSpec(out.columns)
    return printers.TableSpec(rt, wide=out.kind == "wide",
                              with_namespace=opts.all_namespaces and rt.namespaced,
                              kind_prefix=kind_prefix, label_columns=opts.label_columns,
                              show_labels=opts.show_labels)


def _parse_output(opts: GetOptions) -> output.Output:
    out = output.parse(opts.output, allow_missing_keys=opts.allow_missing_template_keys)
    if opts.show_labels and not out.table:
        raise CliError(f"--show-labels option cannot be used with {opts.output} printer")
    return out


async def get(ctx: Context, args: list[str], opts: GetOptions) -> int:
    out = _parse_output(opts)
    requests = kinds.parse_targets(args)
    if opts.watch:
        if len(requests) != 1:
            raise CliError("watch is only supported on individual resources and resource "
                           f"collections, but {len(requests)} resources were found")
        if opts.sort_by:
            print("warning: --watch requested, --sort-by will be ignored for watch events received",
                  file=ctx.err, flush=True)
        return await watch(ctx, requests[0], opts, out)
    results: list[tuple[ResourceType, list[Obj]]] = []
    for req in requests:
        objs, _ = await _fetch(ctx, req, opts)
        results.append((req.rt, objs))
    if out.table:
        _print_tables(ctx, results, opts, out, several=len(requests) > 1)
    else:
        single_name = len(requests) == 1 and len(requests[0].names) == 1
        _print_generic(ctx, [(rt, o) for rt, objs in results for o in objs], opts, out,
                       single_name=single_name)
    return ctx.code


def _sorted(items: list[T], sort_by: str, key: Callable[[T], Obj], *, table: bool) -> list[T]:
    if not sort_by:
        return items
    try:
        return sorting.sort_objects(items, sort_by, key, table=table)
    except sorting.SortError as exc:
        raise CliError(str(exc)) from None


def _print_generic(ctx: Context, everything: list[tuple[ResourceType, Obj]], opts: GetOptions,
                   out: output.Output, *, single_name: bool) -> None:
    """Every output but the tables: the object asked for by name, else a List of all found
    (sorted by --sort-by), as kubectl's printGeneric."""
    if single_name and not everything:
        return
    if not single_name and everything:
        everything = _sorted(everything, opts.sort_by, lambda item: item[1], table=False)
    objs = [o for _, o in everything]
    doc = objs[0] if single_name else {"apiVersion": "v1", "kind": "List", "items": objs,
                                       "metadata": {"resourceVersion": ""}}
    if out.kind in ("json", "yaml"):
        ctx.out.write(dump(doc, out.kind))
    elif out.kind == "name":
        ctx.out.write("".join(printers.object_name(rt, o) + "\n" for rt, o in everything))
    elif out.kind == "jsonpath":
        assert out.template is not None
        ctx.out.write(_render_jsonpath(out.template, doc))
    else:
        _print_columns(ctx, printers.ColumnsSpec(out.columns), objs,
                       no_headers=output.no_headers_for(out, opts.no_headers))
    ctx.out.flush()


def _render_jsonpath(template: jsonpath.Template, doc: Obj) -> str:
    try:
        return template.render(doc)
    except jsonpath.JsonPathError as exc:
        raise CliError(f"error executing jsonpath {gotext.quote(template.text)}: "
                       f"Error executing template: {exc}.") from None


def _print_columns(ctx: Context, spec: printers.ColumnsSpec, objs: list[Obj], *, no_headers: bool) -> None:
    """Custom columns: the header even over no rows, as kubectl's printer writes it; rows up to
    one kubectl's JSONPath fails on, then its error."""
    rows = [] if no_headers else [spec.header()]
    failure = None
    for obj in objs:
        try:
            rows.append(spec.row(obj, ctx.clock()))
        except jsonpath.JsonPathError as exc:
            failure = str(exc)
            break
    ctx.out.write(printers.render_table(rows))
    if failure is not None:
        raise CliError(failure)


def _sorted_rows(objs: list[Obj], sort_by: str) -> list[Obj]:
    """A kind's rows for --sort-by. kubectl's table printer drops its error (the field found in
    no row, a bad path): the table is not printed at all, and no error is reported."""
    if len(objs) < 2 or not sort_by:
        return objs
    try:
        return _sorted(objs, sort_by, lambda o: o, table=True)
    except CliError:
        return []


def _print_tables(ctx: Context, results: list[tuple[ResourceType, list[Obj]]], opts: GetOptions,
                  out: output.Output, *, several: bool) -> None:
    """One table per kind that has objects, blank lines between them (none with
    --no-headers). --sort-by sorts the rows of a kind's table of two rows or more; over several
    kinds kubectl sorts the tables themselves as objects (a Table has little more than
    `metadata.resourceVersion`), so it fails on almost every path, and so does this."""
    now = ctx.clock()
    if opts.sort_by and several:
        tables_as_objects: list[Obj] = [{"apiVersion": "meta.k8s.io/v1", "kind": "Table",
                                         "metadata": {"resourceVersion": ""}} for _ in results]
        _sorted(tables_as_objects, opts.sort_by, lambda o: o, table=False)
        sorted_results = results
    else:
        sorted_results = [(rt, _sorted_rows(objs, opts.sort_by)) for rt, objs in results]
    tables = []
    for rt, objs in sorted_results:
        if not objs:
            continue
        spec = _row_spec(rt, opts, out, several)
        rows = [spec.row(o, now) for o in objs]
        tables.append(printers.render_table(rows if opts.no_headers else [spec.header()] + rows))
    if not tables:
        if not ctx.failed:
            where = "" if opts.all_namespaces else f" in {ctx.target.namespace} namespace"
            print(f"No resources found{where}.", file=ctx.err, flush=True)
        return
    ctx.out.write(("" if opts.no_headers else "\n").join(tables))
    ctx.out.flush()


def _watch_params(req: kinds.Request, opts: GetOptions) -> dict[str, str]:
    params: dict[str, str] = {}
    if opts.selector:
        params["labelSelector"] = opts.selector
    if len(req.names) == 1:
        params["fieldSelector"] = f"metadata.name={req.names[0]}"
    elif req.names:
        raise CliError("watch is only supported on individual resources and resource "
                       f"collections, but {len(req.names)} resources were found")
    return params


async def watch(ctx: Context, req: kinds.Request, opts: GetOptions, out: output.Output) -> int:
    """The current objects, then one line (or document) per change, until interrupted."""
    ns = None if opts.all_namespaces else ctx.namespace_of(req.rt)
    params = _watch_params(req, opts)
    lst = await ctx.api.get(kinds.path(req.rt, ns), params or None)
    objs = [_typed(req.rt, o) for o in lst.get("items") or []]
    rv = str((lst.get("metadata") or {}).get("resourceVersion") or "")
    shower = _WatchPrinter(ctx, req.rt, opts, out)
    if objs and (out.table or out.kind == "custom-columns"):
        shower.first_table(_sorted_rows(objs, opts.sort_by) if out.table else objs)
    else:
        for o in objs:
            shower.show(o)
    while True:
        async for event in ctx.api.watch(req.rt, ns, resource_version=rv,
                                         label_selector=params.get("labelSelector"),
                                         field_selector=params.get("fieldSelector")):
            obj = event.get("object") or {}
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                shower.show(_typed(req.rt, obj))


class _WatchPrinter:
    """Prints what a watch sees: rows keep the widths of the first table, wider where a later
    cell needs it (kubectl's tabwriter remembers them), the header only once and not with
    --no-headers."""

    def __init__(self, ctx: Context, rt: ResourceType, opts: GetOptions, out: output.Output) -> None:
        self.ctx, self.rt, self.out = ctx, rt, out
        self.spec = _row_spec(rt, opts, out, False)
        self.no_headers = output.no_headers_for(out, opts.no_headers)
        self.widths: list[int] | None = None

    def first_table(self, objs: list[Obj]) -> None:
        rows = [self.spec.row(o, self.ctx.clock()) for o in objs]
        header = [] if self.no_headers else [self.spec.header()]
        self.widths = printers.column_widths(header + rows)
        self.write(printers.render_table(header + rows, self.widths))

    def show(self, o: Obj) -> None:
        if self.out.kind == "name":
            self.write(printers.object_name(self.rt, o) + "\n")
        elif self.out.kind in ("json", "yaml"):
            self.write(("---\n" if self.out.kind == "yaml" else "") + dump(o, self.out.kind))
        elif self.out.kind == "jsonpath":
            assert self.out.template is not None
            self.write(_render_jsonpath(self.out.template, o))
        else:
            self.row(o)

    def row(self, o: Obj) -> None:
        try:
            row = self.spec.row(o, self.ctx.clock())
        except jsonpath.JsonPathError as exc:
            raise CliError(str(exc)) from None
        if self.widths is None:
            header = [] if self.no_headers else [self.spec.header()]
            self.widths = printers.column_widths(header + [row])
            self.write(printers.render_table(header, self.widths))
        # kubectl's tabwriter remembers widths and widens a column for a longer cell
        self.widths = [max(a, b) for a, b in zip(self.widths, printers.column_widths([row]), strict=False)]
        self.write(printers.render_table([row], self.widths))

    def write(self, text: str) -> None:
        self.ctx.out.write(text)
        self.ctx.out.flush()


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
# apimachinery's version.Info, in its field order; the empty ones are omitted (omitempty)
VERSION_FIELDS = ("major", "minor", "emulationMajor", "emulationMinor", "minCompatibilityMajor",
                  "minCompatibilityMinor", "gitVersion", "gitCommit", "gitTreeState", "buildDate",
                  "goVersion", "compiler", "platform")
_OMIT_EMPTY = frozenset(VERSION_FIELDS[2:6])
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def version_info(body: Any) -> dict[str, str]:
    """A /version body as kubectl re-encodes it: version.Info's fields in order, nothing else."""
    body = body if isinstance(body, dict) else {}
    info = {k: str(body.get(k) or "") for k in VERSION_FIELDS}
    return {k: v for k, v in info.items() if v or k not in _OMIT_EMPTY}


def client_version_info() -> dict[str, str]:
    major, minor, _ = __version__.split(".", 2)
    machine = platform.machine()
    return version_info({
        "major": major, "minor": minor, "gitVersion": CLIENT_VERSION,
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{sys.platform}/{_GOARCH.get(machine, machine)}"})


def _check_version_output(output_format: str | None) -> None:
    if output_format not in (None, "", "json", "yaml"):
        raise CliError("--output must be 'yaml' or 'json'")


def render_version(output_format: str | None, server: dict[str, str] | None) -> str:
    """kubectl version's text: the Client/Server Version lines, or with -o its
    clientVersion / serverVersion document."""
    if not output_format:
        lines = [f"Client Version: {CLIENT_VERSION}"]
        if server is not None:
            lines.append(f"Server Version: {server.get('gitVersion') or '<unknown>'}")
        return "".join(line + "\n" for line in lines)
    doc: dict[str, Any] = {"clientVersion": client_version_info()}
    if server is not None:
        doc["serverVersion"] = server
    if output_format == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    # Go's YAML quotes with double quotes, and kubectl adds a blank line
    return re.sub(r"^(\s*\w+: )'([^'\"\\]*)'$", r'\1"\2"', dump(doc, "yaml"), flags=re.M) + "\n"


def client_version(out: TextIO, output_format: str | None) -> int:
    """`version --client`: no server needed, none asked."""
    _check_version_output(output_format)
    out.write(render_version(output_format, None))
    out.flush()
    return 0


async def version(ctx: Context, client_only: bool = False, output_format: str | None = None) -> int:
    """The client's version, then the server's; a server out of reach is reported after the
    client's part, as kubectl does."""
    _check_version_output(output_format)
    if client_only:
        return client_version(ctx.out, output_format)
    server: dict[str, str] | None = None
    failure: Exception | None = None
    try:
        server = version_info(await ctx.api.get("/version"))
    except (CliError, ApiError) as exc:
        failure = exc
    ctx.out.write(render_version(output_format, server))
    ctx.out.flush()
    if failure is not None:
        raise failure
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
