"""`describe` text, pure: objects in, kubectl-shaped text out.

A Service shows its endpoints from the EndpointSlices the caller found for it (labelled
`kubernetes.io/service-name`); a Pod its node, IP, status, conditions and containers.
Other kinds get their metadata and their spec and status as indented YAML. Each ends with
the Events the caller found about the object, as kubectl's DescribeEvents shows them
(`events=None`: no section, as with `--show-events=false`).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml

from kubecore.api.types import Obj
from kubecore.printers import tables
from minikubectl.lastapplied import LAST_APPLIED

# indent level, label (without colon; "" for a bare line, CONTINUED for another value of
# the line above), value
Line = tuple[int, str, str]
CONTINUED = " "
NONE = "<none>"
UNSET = "<unset>"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def render(lines: list[Line]) -> str:
    """Labels padded so that the values of one section's lines at one level line up
    (deeper lines in between do not break the section, as with kubectl's tabwriter)."""
    out: list[str] = []
    for i, (level, label, value) in enumerate(lines):
        width = _section_width(lines, i)
        pad = "  " * level
        if label == CONTINUED:
            out.append(f"{pad}{' ' * width}{value}".rstrip())
        elif not label:
            out.append(f"{pad}{value}".rstrip())
        elif value == "":
            out.append(f"{pad}{label}:")
        else:
            out.append(f"{pad}{(label + ':').ljust(width)}{value}".rstrip())
    return "\n".join(out) + "\n"


def _section_width(lines: list[Line], i: int) -> int:
    level = lines[i][0]
    first = i
    while first > 0 and lines[first - 1][0] >= level:
        first -= 1
    last = i
    while last + 1 < len(lines) and lines[last + 1][0] >= level:
        last += 1
    labels = [lbl for lvl, lbl, val in lines[first:last + 1]
              if lvl == level and lbl and lbl != CONTINUED and val]
    return max((len(lbl) + 1 for lbl in labels), default=0) + 2


def _map_lines(level: int, label: str, values: dict[str, str] | None,
               skip: tuple[str, ...] = ()) -> list[Line]:
    items = sorted((k, v) for k, v in (values or {}).items() if k not in skip)
    if not items:
        return [(level, label, NONE)]
    first, *rest = [f"{k}={v}" for k, v in items]
    return [(level, label, first)] + [(level, CONTINUED, r) for r in rest]


def _metadata_lines(obj: Obj, namespaced: bool) -> list[Line]:
    meta = obj.get("metadata") or {}
    lines: list[Line] = [(0, "Name", str(meta.get("name", "")))]
    if namespaced:
        lines.append((0, "Namespace", str(meta.get("namespace", ""))))
    lines += _map_lines(0, "Labels", meta.get("labels"))
    lines += _map_lines(0, "Annotations", meta.get("annotations"), skip=(LAST_APPLIED,))
    return lines


# --- Service -------------------------------------------------------------------------------

def service_endpoints(port: Obj, slices: list[Obj], limit: int = 3) -> str:
    """`10.244.0.5:8080,10.244.1.3:8080` for one service port, from the slices' ports of
    the same name and their ready endpoints; `<none>` when there are none."""
    name = port.get("name") or ""
    addresses: list[str] = []
    for eps in slices:
        for p in eps.get("ports") or []:
            if (p.get("name") or "") != name or p.get("port") is None:
                continue
            for ep in eps.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                addresses += [f"{a}:{p['port']}" for a in ep.get("addresses") or []]
    if not addresses:
        return NONE
    text = ",".join(addresses[:limit])
    return text + (f" + {len(addresses) - limit} more..." if len(addresses) > limit else "")


def describe_service(svc: Obj, slices: list[Obj], events: list[Obj] | None = None,
                     now: datetime | None = None) -> str:
    spec = svc.get("spec") or {}
    lines = _metadata_lines(svc, True)
    selector = spec.get("selector") or {}
    lines.append((0, "Selector", ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or NONE))
    lines.append((0, "Type", str(spec.get("type") or "ClusterIP")))
    if spec.get("ipFamilyPolicy"):
        lines.append((0, "IP Family Policy", str(spec["ipFamilyPolicy"])))
    if spec.get("ipFamilies"):
        lines.append((0, "IP Families", ",".join(spec["ipFamilies"])))
    lines.append((0, "IP", str(spec.get("clusterIP") or NONE)))
    if spec.get("clusterIPs"):
        lines.append((0, "IPs", ",".join(spec["clusterIPs"])))
    lines += _service_external_lines(svc)
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        lines.append((0, "Port", f"{p.get('name') or UNSET}  {p.get('port')}/{proto}"))
        target = p.get("targetPort", p.get("port"))
        lines.append((0, "TargetPort", f"{target}/{proto}"))
        if p.get("nodePort"):
            lines.append((0, "NodePort", f"{p.get('name') or UNSET}  {p['nodePort']}/{proto}"))
        lines.append((0, "Endpoints", service_endpoints(p, slices)))
    lines.append((0, "Session Affinity", str(spec.get("sessionAffinity") or "None")))
    if spec.get("externalTrafficPolicy"):
        lines.append((0, "External Traffic Policy", str(spec["externalTrafficPolicy"])))
    if spec.get("internalTrafficPolicy"):
        lines.append((0, "Internal Traffic Policy", str(spec["internalTrafficPolicy"])))
    if spec.get("healthCheckNodePort"):
        lines.append((0, "HealthCheck NodePort", str(spec["healthCheckNodePort"])))
    return _with_events(lines, events, now)


def _service_external_lines(svc: Obj) -> list[Line]:
    """kubectl's External IPs, LoadBalancer IP, External Name and LoadBalancer Ingress."""
    spec = svc.get("spec") or {}
    lines: list[Line] = []
    if spec.get("externalIPs"):
        lines.append((0, "External IPs", ",".join(spec["externalIPs"])))
    if spec.get("loadBalancerIP"):
        lines.append((0, "IP", str(spec["loadBalancerIP"])))
    if spec.get("externalName"):
        lines.append((0, "External Name", str(spec["externalName"])))
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    shown = [i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict)]
    if any(shown):
        lines.append((0, "LoadBalancer Ingress", ", ".join(x for x in shown if x)))
    return lines


# --- Pod ---------------------------------------------------------------------------------

def _state_lines(level: int, label: str, state: Obj | None) -> list[Line]:
    if not state:
        return [(level, label, "Waiting")]
    if "running" in state:
        return [(level, label, "Running"),
                (level + 1, "Started", str(_get(state, "running", "startedAt") or ""))]
    if "waiting" in state:
        lines: list[Line] = [(level, label, "Waiting")]
        if _get(state, "waiting", "reason"):
            lines.append((level + 1, "Reason", str(state["waiting"]["reason"])))
        return lines
    term = state.get("terminated") or {}
    lines = [(level, label, "Terminated")]
    if term.get("reason"):
        lines.append((level + 1, "Reason", str(term["reason"])))
    lines.append((level + 1, "Exit Code", str(term.get("exitCode", 0))))
    for key, name in (("startedAt", "Started"), ("finishedAt", "Finished")):
        if term.get(key):
            lines.append((level + 1, name, str(term[key])))
    return lines


def _container_lines(c: Obj, status: Obj | None) -> list[Line]:
    status = status or {}
    lines: list[Line] = [(1, c.get("name", ""), "")]
    if status.get("containerID"):
        lines.append((2, "Container ID", str(status["containerID"])))
    lines.append((2, "Image", str(c.get("image", ""))))
    ports = [f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}" for p in c.get("ports") or []]
    lines.append((2, "Port" + ("s" if len(ports) > 1 else ""), ", ".join(ports) or NONE))
    if c.get("command"):
        lines.append((2, "Command", " ".join(str(x) for x in c["command"])))
    if c.get("args"):
        lines.append((2, "Args", " ".join(str(x) for x in c["args"])))
    lines += _state_lines(2, "State", status.get("state"))
    if status.get("lastState"):
        lines += _state_lines(2, "Last State", status["lastState"])
    lines.append((2, "Ready", "True" if status.get("ready") else "False"))
    lines.append((2, "Restart Count", str(status.get("restartCount", 0))))
    env = [f"{e.get('name')}={e.get('value', '')}" for e in c.get("env") or []]
    lines.append((2, "Environment", NONE if not env else env[0]))
    lines += [(2, CONTINUED, e) for e in env[1:]]
    return lines


def describe_pod(pod: Obj, now: datetime | None = None, events: list[Obj] | None = None) -> str:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    lines = _pod_summary_lines(pod, spec, status, now)
    lines += _pod_containers_lines(spec, status)
    lines += _conditions_lines(status.get("conditions") or [])
    lines += _map_lines(0, "Node-Selectors", spec.get("nodeSelector"))
    return _with_events(lines, events, now)


def _pod_summary_lines(pod: Obj, spec: Obj, status: Obj, now: datetime | None) -> list[Line]:
    """Name and namespace, where it runs, its metadata, then status and IP."""
    metadata = _metadata_lines(pod, True)
    lines = metadata[:2]
    node = spec.get("nodeName")
    if node and status.get("hostIP"):
        node = f"{node}/{status['hostIP']}"
    lines.append((0, "Node", str(node or NONE)))
    if status.get("startTime"):
        lines.append((0, "Start Time", str(status["startTime"])))
    lines += metadata[2:]
    lines.append((0, "Status", tables.pod_summary(pod, now or datetime.now(UTC))[1]
                  if (pod.get("metadata") or {}).get("deletionTimestamp")
                  else str(status.get("phase") or "Unknown")))
    if status.get("reason"):
        lines.append((0, "Reason", str(status["reason"])))
    if status.get("message"):
        lines.append((0, "Message", str(status["message"])))
    lines.append((0, "IP", str(status.get("podIP") or "")))
    return lines


def _pod_containers_lines(spec: Obj, status: Obj) -> list[Line]:
    lines: list[Line] = []
    if spec.get("initContainers"):
        init_by_name = {cs.get("name"): cs for cs in status.get("initContainerStatuses") or []}
        lines.append((0, "Init Containers", ""))
        for c in spec["initContainers"]:
            lines += _container_lines(c, init_by_name.get(c.get("name")))
    by_name = {cs.get("name"): cs for cs in status.get("containerStatuses") or []}
    lines.append((0, "Containers", ""))
    for c in spec.get("containers") or []:
        lines += _container_lines(c, by_name.get(c.get("name")))
    return lines


def _conditions_lines(conditions: list[Obj]) -> list[Line]:
    """A two-column table (Type, Status) under `Conditions:`, or `<none>`."""
    if not conditions:
        return [(0, "Conditions", NONE)]
    width = max(len("Type"), *(len(str(c.get("type", ""))) for c in conditions)) + 2
    return [(0, "Conditions", ""), (1, "", f"{'Type'.ljust(width)}Status")] + [
        (1, "", f"{str(c.get('type', '')).ljust(width)}{c.get('status', '')}") for c in conditions]


# --- anything else ------------------------------------------------------------------------

def describe_generic(obj: Obj, namespaced: bool, events: list[Obj] | None = None,
                     now: datetime | None = None) -> str:
    text = render(_metadata_lines(obj, namespaced))
    for section in ("spec", "status"):
        value = obj.get(section)
        if value:
            body = yaml.safe_dump(value, default_flow_style=False, sort_keys=True)
            text += f"{section.capitalize()}:\n" + "".join(f"  {ln}\n" for ln in body.splitlines())
    for key, value in sorted(obj.items()):
        if key in ("apiVersion", "kind", "metadata", "spec", "status") or value in (None, [], {}):
            continue
        body = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=True)
        text += body
    if events is not None:
        text += events_text(events, now or datetime.now(UTC))
    return text


# --- Events ----------------------------------------------------------------------------------

def _with_events(lines: list[Line], events: list[Obj] | None, now: datetime | None) -> str:
    """An empty Events section is one more label of the top block (`Events:  <none>`);
    a table follows the block."""
    if events is not None and not events:
        return render(lines + [(0, "Events", NONE)])
    text = render(lines)
    if events:
        text += events_text(events, now or datetime.now(UTC))
    return text


def _event_time(ev: Obj) -> datetime:
    """What kubectl sorts by: the series' last observation, lastTimestamp, eventTime."""
    for ts in ((ev.get("series") or {}).get("lastObservedTime"), ev.get("lastTimestamp"),
               ev.get("eventTime")):
        when = tables.parse_time(ts)
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def event_age(ev: Obj, now: datetime) -> str:
    """`5s`, or `2m (x3 over 10m)` for an event that happened more than once."""
    first = tables.age_since(ev.get("eventTime") or ev.get("firstTimestamp"), now)
    series = ev.get("series") or {}
    if series:
        return (f"{tables.age_since(series.get('lastObservedTime'), now)} "
                f"(x{series.get('count', 0)} over {first})")
    count = ev.get("count") or 0
    if isinstance(count, int) and count > 1:
        return f"{tables.age_since(ev.get('lastTimestamp'), now)} (x{count} over {first})"
    return first


def events_text(events: list[Obj], now: datetime) -> str:
    """`Events:` and kubectl's table (Type, Reason, Age, From, Message), oldest first,
    columns two spaces apart; `Events:  <none>` when there are none."""
    if not events:
        return f"Events:  {NONE}\n"
    rows = [["Type", "Reason", "Age", "From", "Message"], ["----", "------", "----", "----", "-------"]]
    for ev in sorted(events, key=_event_time):
        source = (ev.get("source") or {}).get("component") or ev.get("reportingComponent") or ""
        rows.append([str(ev.get("type") or ""), str(ev.get("reason") or ""), event_age(ev, now),
                     str(source), str(ev.get("message") or "").strip()])
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(4)]
    lines = ["  " + "".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])) + r[4]
             for r in rows]
    return "Events:\n" + "".join(line.rstrip() + "\n" for line in lines)
