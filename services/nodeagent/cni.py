"""A CNI executor: runs a network configuration list the way the CNI spec asks a runtime to.

The spec (github.com/containernetworking/cni, SPEC.md, versions 0.4.0 and 1.0.0) in short:

- A plugin is an executable found on CNI_PATH, named by the `type` of its configuration.
- It gets its parameters in the environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
  CNI_IFNAME, CNI_ARGS, CNI_PATH) and its configuration as JSON on stdin; every plugin of a list
  is run with the same environment.
- The runtime replaces `name` and `cniVersion` of each plugin's configuration with the list's,
  passes capability arguments (such as `portMappings`) in `runtimeConfig` only to plugins that
  declare the capability, and for ADD chains each plugin's result into the next one's
  `prevResult`. CHECK and DEL get the final ADD result as `prevResult`; DEL runs in reverse.
- Success prints a result on stdout (ADD) or nothing (DEL, CHECK); failure exits non-zero with
  an error object `{cniVersion, code, msg, details}` on stdout. Codes below 100 are well known.

This module keeps the pure parts (configuration, stdin, environment, result and error parsing)
apart from the one function that executes a plugin, so they are tested without processes.

One deliberate departure: on DEL the spec says a runtime stops at the first failing plugin. This
executor runs every plugin's DEL and then reports all failures together, because DEL exists to
release resources (IP leases, iptables chains, veths), and one plugin failing must not leak what
the others hold. Plugins are required to treat missing resources as success, so running them all
is always safe.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import Histogram

from services.nodeagent import netns

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")
DEFAULT_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
DEFAULT_NETWORK_NAME = "minicluster"
_NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")

# Error codes the spec reserves (0-99). 999 is what the reference plugins' skel uses for
# anything else, e.g. "ARGS: unknown args".
WELL_KNOWN_ERRORS: dict[int, str] = {
    1: "incompatible CNI version",
    2: "unsupported field in network configuration",
    3: "container unknown or does not exist",
    4: "invalid necessary environment variables",
    5: "I/O failure",
    6: "failed to decode content",
    7: "invalid network config",
    11: "try again later",
}
CODE_CONTAINER_UNKNOWN = 3

CNI_PLUGIN_SECONDS = Histogram(
    "nodeagent_cni_plugin_seconds",
    "Time one CNI plugin execution took, by command and plugin type.",
    ["command", "plugin"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# --------------------------------------------------------------------------- errors


@dataclass
class CniError(Exception):
    """A plugin failed; `code`/`msg`/`details` come from its error object when it printed one."""

    msg: str
    code: int | None = None
    details: str = ""
    plugin: str = ""
    command: str = ""
    stderr: str = ""

    def __str__(self) -> str:
        where = f"{self.command} {self.plugin}: " if self.plugin else ""
        code = f" (code {self.code})" if self.code is not None else ""
        details = f": {self.details}" if self.details else ""
        return f"{where}{self.msg}{code}{details}"

    @property
    def well_known(self) -> str | None:
        return WELL_KNOWN_ERRORS.get(self.code) if self.code is not None else None


class CniTimeoutError(CniError):
    """The plugin did not finish within the executor's timeout and was killed."""


class CniPluginNotFound(CniError):
    """No executable named after the plugin `type` on the plugin search path."""


@dataclass
class CniDeleteError(CniError):
    """DEL ran every plugin; these are the ones that failed."""

    errors: list[CniError] = field(default_factory=list)

    def __str__(self) -> str:
        return "DEL failed: " + "; ".join(str(e) for e in self.errors)


class CniConfigError(ValueError):
    """The network configuration list is malformed."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class NetworkConfigList:
    """A parsed conflist. `plugins` are kept as the raw dictionaries the plugins read."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkConfigList:
        name = data.get("name")
        if not isinstance(name, str) or not _NETWORK_NAME.match(name):
            raise CniConfigError(f"conflist name {name!r} is not a valid network name")
        version = data.get("cniVersion")
        if version not in SUPPORTED_VERSIONS:
            raise CniConfigError(
                f"conflist cniVersion {version!r} not supported (supported: {', '.join(SUPPORTED_VERSIONS)})"
            )
        plugins = data.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise CniConfigError("conflist has no plugins")
        for i, plugin in enumerate(plugins):
            if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin["type"]:
                raise CniConfigError(f"plugin {i} has no type")
            if "/" in plugin["type"]:
                raise CniConfigError(f"plugin {i} type {plugin['type']!r} must be a file name, not a path")
        disable = data.get("disableCheck", False)
        if isinstance(disable, str):  # the spec writes it as a string; accept both
            disable = disable.lower() == "true"
        return cls(name=name, cni_version=version, plugins=tuple(dict(p) for p in plugins),
                   disable_check=bool(disable))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> NetworkConfigList:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise CniConfigError(f"{path}: not JSON: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": self.cni_version, "name": self.name,
                               "plugins": [dict(p) for p in self.plugins]}
        if self.disable_check:
            out["disableCheck"] = True
        return out


def default_conflist(
    *,
    pod_cidr: str,
    ipam_data_dir: str | os.PathLike[str],
    name: str = DEFAULT_NETWORK_NAME,
    mtu: int = 1500,
    cni_version: str = "1.0.0",
) -> dict[str, Any]:
    """The conflist kind's kindnet writes: ptp + host-local over the node's podCIDR + portmap.

    `ipam_data_dir` is per node: host-local keeps one file per leased IP there, and two nodes
    on one machine sharing it would hand out each other's addresses.
    """
    network = ipaddress.ip_network(pod_cidr, strict=True)
    default_route = "0.0.0.0/0" if network.version == 4 else "::/0"
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "mtu": mtu,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_data_dir),
                    "routes": [{"dst": default_route}],
                    "ranges": [[{"subnet": str(network)}]],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


@dataclass(frozen=True)
class PortMapping:
    """One `portMappings` capability entry (a container port published as a hostPort)."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def to_cni(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hostPort": self.host_port, "containerPort": self.container_port,
                               "protocol": self.protocol.lower()}
        if self.host_ip:
            out["hostIP"] = self.host_ip
        return out

    @classmethod
    def from_cni(cls, data: Mapping[str, Any]) -> PortMapping:
        return cls(host_port=int(data["hostPort"]), container_port=int(data["containerPort"]),
                   protocol=str(data.get("protocol", "tcp")), host_ip=str(data.get("hostIP", "")))


@dataclass(frozen=True)
class RuntimeConf:
    """What the runtime knows about one attachment (libcni's RuntimeConf)."""

    container_id: str
    netns: str  # a path; may be "" for DEL when the namespace is already gone
    ifname: str = "eth0"
    args: tuple[tuple[str, str], ...] = ()
    capability_args: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def for_pod(cls, *, container_id: str, netns: str, namespace: str, name: str, pod_uid: str = "",
                ifname: str = "eth0", port_mappings: Sequence[PortMapping] = ()) -> RuntimeConf:
        args = [("K8S_POD_NAMESPACE", namespace), ("K8S_POD_NAME", name),
                ("K8S_POD_INFRA_CONTAINER_ID", container_id)]
        if pod_uid:
            args.append(("K8S_POD_UID", pod_uid))
        caps: dict[str, Any] = {}
        if port_mappings:
            caps["portMappings"] = [p.to_cni() for p in port_mappings]
        return cls(container_id=container_id, netns=netns, ifname=ifname, args=tuple(args),
                   capability_args=caps)

    def cni_args(self) -> str:
        """CNI_ARGS. `IgnoreUnknown=1` first: the reference plugins reject keys they don't know."""
        for key, value in self.args:
            if any(c in key + value for c in ";="):
                raise ValueError(f"CNI_ARGS {key}={value!r} may not contain ';' or '='")
        return ";".join(["IgnoreUnknown=1", *(f"{k}={v}" for k, v in self.args)])


def plugin_stdin(
    conflist: NetworkConfigList,
    plugin: Mapping[str, Any],
    *,
    prev_result: Mapping[str, Any] | None,
    capability_args: Mapping[str, Any],
) -> dict[str, Any]:
    """The configuration one plugin of the list reads on stdin."""
    conf = dict(plugin)
    conf["name"] = conflist.name
    conf["cniVersion"] = conflist.cni_version
    capabilities = plugin.get("capabilities") or {}
    runtime_config = {k: v for k, v in capability_args.items() if capabilities.get(k)}
    if runtime_config:
        conf["runtimeConfig"] = runtime_config
    else:
        conf.pop("runtimeConfig", None)
    if prev_result is not None:
        conf["prevResult"] = dict(prev_result)
    else:
        conf.pop("prevResult", None)
    return conf


def plugin_env(command: str, rt: RuntimeConf, *, cni_path: Sequence[str],
               base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a plugin: the CNI_* parameters over a minimal base (PATH)."""
    env = dict(base_env if base_env is not None else {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")})
    env.update({
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": rt.container_id,
        "CNI_NETNS": rt.netns,
        "CNI_IFNAME": rt.ifname,
        "CNI_ARGS": rt.cni_args(),
        "CNI_PATH": ":".join(cni_path),
    })
    return env


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def prev_result_on_del(version: str) -> bool:
    """DEL got `prevResult` in spec 0.4.0; earlier plugins may reject the field."""
    return _version_tuple(version) >= (0, 4, 0)


def check_supported(version: str) -> bool:
    """CHECK exists since spec 0.4.0."""
    return _version_tuple(version) >= (0, 4, 0)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CniInterface:
    name: str
    mac: str = ""
    sandbox: str = ""


@dataclass(frozen=True)
class CniIPConfig:
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    interface: int | None = None


@dataclass(frozen=True)
class CniRoute:
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    gw: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None


@dataclass(frozen=True)
class CniDns:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class CniResult:
    """A typed view of a plugin result. `raw` is what goes on as the next `prevResult`."""

    cni_version: str
    interfaces: tuple[CniInterface, ...]
    ips: tuple[CniIPConfig, ...]
    routes: tuple[CniRoute, ...]
    dns: CniDns
    raw: Mapping[str, Any]

    def addresses_of(self, ifname: str, *, sandbox: str | None = None) -> list[CniIPConfig]:
        """The addresses assigned to the interface named `ifname` (inside `sandbox` if given)."""
        out = []
        for ip in self.ips:
            if ip.interface is None or not 0 <= ip.interface < len(self.interfaces):
                continue
            iface = self.interfaces[ip.interface]
            if iface.name == ifname and (sandbox is None or iface.sandbox == sandbox):
                out.append(ip)
        return out

    def pod_ip(self, ifname: str = "eth0") -> str:
        """The pod's primary address: the first address of `ifname`, else the first address."""
        candidates = self.addresses_of(ifname) or list(self.ips)
        if not candidates:
            raise CniError("result has no IP addresses", plugin="", command="ADD")
        return str(candidates[0].address.ip)


def _parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return ipaddress.ip_address(value) if value else None


def parse_result(data: Mapping[str, Any]) -> CniResult:
    """Parse a 0.3.x/0.4.0/1.0.0 result (same shape; older ones add a per-IP `version`)."""
    try:
        interfaces = tuple(
            CniInterface(name=str(i["name"]), mac=str(i.get("mac", "")), sandbox=str(i.get("sandbox", "")))
            for i in data.get("interfaces") or ()
        )
        ips = tuple(
            CniIPConfig(address=ipaddress.ip_interface(ip["address"]), gateway=_parse_ip(ip.get("gateway")),
                        interface=int(ip["interface"]) if ip.get("interface") is not None else None)
            for ip in data.get("ips") or ()
        )
        routes = tuple(
            CniRoute(dst=ipaddress.ip_network(r["dst"], strict=False), gw=_parse_ip(r.get("gw")))
            for r in data.get("routes") or ()
        )
        dns_data = data.get("dns") or {}
        dns = CniDns(nameservers=tuple(dns_data.get("nameservers") or ()), domain=str(dns_data.get("domain", "")),
                     search=tuple(dns_data.get("search") or ()), options=tuple(dns_data.get("options") or ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise CniError(f"malformed result: {exc}", code=6) from exc
    return CniResult(cni_version=str(data.get("cniVersion", "")), interfaces=interfaces, ips=ips,
                     routes=routes, dns=dns, raw=dict(data))


def parse_plugin_output(*, command: str, plugin: str, returncode: int, stdout: bytes,
                        stderr: bytes) -> dict[str, Any] | None:
    """Turn a finished plugin execution into its JSON output, or raise its error as CniError."""
    text = stdout.decode(errors="replace").strip()
    err_text = stderr.decode(errors="replace").strip()
    if returncode != 0:
        try:
            obj = json.loads(text) if text else None
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and ("code" in obj or "msg" in obj):
            code = obj.get("code")
            raise CniError(msg=str(obj.get("msg", "")), code=int(code) if isinstance(code, int) else None,
                           details=str(obj.get("details", "")), plugin=plugin, command=command, stderr=err_text)
        raise CniError(msg=f"exited with status {returncode}", details=text or err_text, plugin=plugin,
                       command=command, stderr=err_text)
    if not text:
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CniError(msg=f"output is not JSON: {exc}", code=6, details=text[:500], plugin=plugin,
                       command=command, stderr=err_text) from exc
    if not isinstance(obj, dict):
        raise CniError(msg="output is not a JSON object", code=6, details=text[:500], plugin=plugin, command=command)
    return obj


# --------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class VersionInfo:
    cni_version: str
    supported_versions: tuple[str, ...]


class NetworkPlugin(Protocol):
    """What the runtime asks of a pod network: attach, check and release one sandbox.

    `CniExecutor` runs real plugins; tests use an in-memory one (tests/fakes/cni.py).
    `host_netns_path` is the namespace the plugins treat as the host side (None: the agent's own),
    which the runtime must never delete as a stray."""

    @property
    def host_netns_path(self) -> str | None: ...

    async def add(self, rt: RuntimeConf) -> CniResult: ...

    async def delete(self, rt: RuntimeConf, *, prev_result: Mapping[str, Any] | None = None) -> None: ...

    async def check(self, rt: RuntimeConf, *, prev_result: Mapping[str, Any]) -> None: ...


class CniExecutor:
    """Runs the plugins of one conflist as subprocesses.

    `host_netns` (a name under /run/netns or a path) is the network namespace the plugins treat
    as the host side: ptp puts its host veth, routes and ip_forward there, portmap its iptables
    rules. The plugins are wrapped in `nsenter --net=<path>`, which only switches the network
    namespace and then execs the plugin (no extra fork, no mount namespace games). Leave it None
    when the agent itself already runs in the node's namespace.
    """

    def __init__(
        self,
        conflist: NetworkConfigList,
        *,
        bin_dirs: Sequence[str] = DEFAULT_BIN_DIRS,
        host_netns: str | None = None,
        timeout: float = 20.0,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.conflist = conflist
        self.bin_dirs = tuple(str(d) for d in bin_dirs)
        self.host_netns_path = netns_path(host_netns) if host_netns else None
        self.timeout = timeout
        self.base_env = dict(base_env) if base_env is not None else None

    def find_plugin(self, plugin_type: str, *, command: str = "") -> str:
        for directory in self.bin_dirs:
            candidate = os.path.join(directory, plugin_type)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        raise CniPluginNotFound(msg=f"failed to find plugin {plugin_type!r} in path {list(self.bin_dirs)}",
                                plugin=plugin_type, command=command)

    def _argv(self, executable: str) -> list[str]:
        return netns.nsenter_argv(self.host_netns_path, [executable])

    async def _exec(self, command: str, plugin_type: str, stdin: bytes,
                    env: Mapping[str, str]) -> dict[str, Any] | None:
        executable = self.find_plugin(plugin_type, command=command)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *self._argv(executable), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=dict(env),
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(stdin), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CniTimeoutError(msg=f"timed out after {self.timeout}s", plugin=plugin_type, command=command) from None
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        finally:
            CNI_PLUGIN_SECONDS.labels(command, plugin_type).observe(time.monotonic() - started)
        assert proc.returncode is not None
        return parse_plugin_output(command=command, plugin=plugin_type, returncode=proc.returncode,
                                   stdout=stdout, stderr=stderr)

    def _stdin(self, plugin: Mapping[str, Any], rt: RuntimeConf, prev_result: Mapping[str, Any] | None) -> bytes:
        conf = plugin_stdin(self.conflist, plugin, prev_result=prev_result, capability_args=rt.capability_args)
        return json.dumps(conf).encode()

    def _env(self, command: str, rt: RuntimeConf) -> dict[str, str]:
        return plugin_env(command, rt, cni_path=self.bin_dirs, base_env=self.base_env)

    async def add(self, rt: RuntimeConf) -> CniResult:
        """ADD through the list in order; the last plugin's output is the attachment's result.

        On failure nothing is undone here: the caller decides, and should DEL the whole list
        (the spec asks for DEL of every plugin, also those ADD never reached).
        """
        env = self._env("ADD", rt)
        prev: dict[str, Any] | None = None
        for plugin in self.conflist.plugins:
            out = await self._exec("ADD", plugin["type"], self._stdin(plugin, rt, prev), env)
            if out is None:
                raise CniError(msg="ADD printed no result", plugin=plugin["type"], command="ADD")
            prev = out
        assert prev is not None
        result = parse_result(prev)
        log.debug("cni ADD %s: %s", rt.container_id, [str(ip.address) for ip in result.ips])
        return result

    async def delete(self, rt: RuntimeConf, *, prev_result: Mapping[str, Any] | None = None) -> None:
        """DEL through the list in reverse; runs every plugin, then raises CniDeleteError if any failed.

        Missing things are not failures: plugins already ignore them, and a plugin that says the
        container is unknown (code 3) has nothing left to release.
        """
        env = self._env("DEL", rt)
        prev = prev_result if prev_result_on_del(self.conflist.cni_version) else None
        errors: list[CniError] = []
        for plugin in reversed(self.conflist.plugins):
            try:
                await self._exec("DEL", plugin["type"], self._stdin(plugin, rt, prev), env)
            except CniError as exc:
                if exc.code == CODE_CONTAINER_UNKNOWN:
                    continue
                log.warning("cni DEL %s: %s", rt.container_id, exc)
                errors.append(exc)
        if errors:
            raise CniDeleteError(msg="DEL failed", command="DEL", errors=errors)

    async def check(self, rt: RuntimeConf, *, prev_result: Mapping[str, Any]) -> None:
        """CHECK through the list in order with the ADD result; raises the first failure."""
        if self.conflist.disable_check or not check_supported(self.conflist.cni_version):
            return
        env = self._env("CHECK", rt)
        for plugin in self.conflist.plugins:
            await self._exec("CHECK", plugin["type"], self._stdin(plugin, rt, prev_result), env)

    async def version(self, plugin_type: str) -> VersionInfo:
        """VERSION of one plugin (stdin carries only the version the caller speaks)."""
        env = dict(self.base_env or {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        env["CNI_COMMAND"] = "VERSION"
        stdin = json.dumps({"cniVersion": self.conflist.cni_version}).encode()
        out = await self._exec("VERSION", plugin_type, stdin, env) or {}
        return VersionInfo(cni_version=str(out.get("cniVersion", "")),
                           supported_versions=tuple(out.get("supportedVersions") or ()))

    async def validate(self) -> None:
        """Every plugin of the list exists and speaks the list's cniVersion (libcni's ValidateNetworkList)."""
        for plugin in self.conflist.plugins:
            info = await self.version(plugin["type"])
            if self.conflist.cni_version not in info.supported_versions:
                raise CniError(msg=f"plugin does not support cniVersion {self.conflist.cni_version}", code=1,
                               details=f"supported: {list(info.supported_versions)}", plugin=plugin["type"],
                               command="VERSION")


def netns_path(name_or_path: str) -> str:
    """A namespace given by `ip netns` name resolves to its bind mount under /run/netns."""
    return name_or_path if "/" in name_or_path else f"/run/netns/{name_or_path}"
