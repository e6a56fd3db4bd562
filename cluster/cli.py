"""Argument handling for `cluster up|down|status|kubeconfig`, shared by minikubectl and `python -m cluster`."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from cluster import registry
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
        p.add_argument("--container-runtime", choices=["runc", "crun", "process"], default="runc",
                       help="runc or crun: containers from OCI images; process: host processes (the old way)")
        p.add_argument("--proxy-mode", choices=["iptables", "nftables"], default="iptables",
                       help="how each node's proxy programs Services (kube-proxy's --proxy-mode)")
        p.add_argument("--ha", action="store_true",
                       help="a control plane that outlives any one process: 3 etcd members, 2 API "
                       "servers and 2 DNS servers, and 2 copies of every controller and of the "
                       "scheduler electing a leader through Leases")
        p.add_argument("-v", "--verbose", action="store_true",
                       help="show the launcher's log on stderr too (it is always in <state>/logs/launcher.log)")
        p.add_argument("--progress-fd", type=int, help=argparse.SUPPRESS)  # `--detach`'s background launcher
    if action == "status":
        p.add_argument("-o", "--output", choices=["json", "text"], default="text")
    if action == "load":
        p.add_argument("archives", nargs="+", type=Path, metavar="ARCHIVE",
                       help="an oci-archive, OCI layout directory or docker-archive (`docker save`) file")
    if action == "etcd":
        p.add_argument("etcd_command", choices=["status", "snapshot", "member", "defrag"], metavar="COMMAND",
                       help="status | snapshot save FILE | snapshot restore FILE | member replace NAME | defrag")
        p.add_argument("etcd_args", nargs="*", metavar="ARG")
    if action == "kubeconfig":
        p.add_argument("--print", action="store_true",
                       help="print the cluster's kubeconfig instead of merging it (kind get kubeconfig)")


KUBECONFIG_HELP = ("the kubeconfig to set the context in (default: $KUBECONFIG's files, else "
                   "~/.kube/config)")


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
        cfg.container_runtime = args.container_runtime
        cfg.proxy_mode = args.proxy_mode
        cfg.ha = args.ha
    return cfg


def setup_logging(cfg: ClusterConfig, *, verbose: bool, background: bool) -> None:
    """The launcher logs to <state>/logs/launcher.log; the terminal shows progress lines, and
    of the log only the warnings no progress line reports (all of it with -v). The background
    launcher's stderr is that file already."""
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.FileHandler(cfg.launcher_log)]
    if not background:
        terminal = logging.StreamHandler(sys.stderr)
        terminal.setLevel(logging.INFO if verbose else logging.WARNING)
        if not verbose:  # a failure the progress lines report as one `error:` line
            terminal.addFilter(lambda record: not getattr(record, "reported", False))
        handlers.append(terminal)
    for h in handlers:
        h.setFormatter(fmt)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)


def detached_argv(cfg: ClusterConfig, kubeconfig: str | None) -> list[str]:
    """The background launcher's command line: the same cluster as `cfg`."""
    argv = ["up", "--name", cfg.name, "--state-dir", str(cfg.state_dir),
            "--nodes", str(cfg.nodes), "--node-cidr", cfg.node_cidr,
            "--cluster-cidr", cfg.cluster_cidr, "--service-cidr", cfg.service_cidr,
            "--apiserver-port", str(cfg.apiserver_port), "--node-grace", str(cfg.node_grace_seconds),
            "--etcd-port", str(cfg.etcd_client_port), "--etcd-peer-port", str(cfg.etcd_peer_port),
            "--health-base-port", str(cfg.health_base_port),
            "--dns-port", str(cfg.dns_port),
            "--apiserver-cert-extra-sans", ",".join(cfg.apiserver_sans),
            "--container-runtime", cfg.container_runtime, "--proxy-mode", cfg.proxy_mode,
            *(["--ha"] if cfg.ha else [])]
    return argv + (["--kubeconfig", kubeconfig] if kubeconfig else [])


def up(args: argparse.Namespace, cfg: ClusterConfig, kubeconfig: str | None) -> int:
    from cluster import launcher
    from cluster.progress import Events, Lines, Progress

    background = args.progress_fd is not None
    setup_logging(cfg, verbose=args.verbose, background=background)
    progress: Progress = Events(args.progress_fd) if background else Lines()
    try:
        if args.detach:
            return launcher.up_detached(cfg, detached_argv(cfg, kubeconfig), progress=progress)
        return asyncio.run(launcher.run_up(cfg, progress=progress, kubeconfig=kubeconfig))
    except launcher.LaunchError as exc:
        logging.getLogger("cluster").error("cluster up failed: %s", exc, extra={"reported": True})
        progress.fail(str(exc))
        return 1


def print_status(cfg: ClusterConfig, output: str) -> int:
    from cluster import launcher

    st = launcher.status(cfg)
    if output == "json":
        print(json.dumps(st, indent=2))
    else:
        print(f"cluster {cfg.name}: {st['status']}")
        if st["apiserver"]:
            print(f"  apiserver {st['apiserver']}  dns {st['dns']}  kubeconfig {st['kubeconfig']}")
        if st["user_kubeconfig"]:
            print(f"  kubectl context {st['context']} in {st['user_kubeconfig']}")
        for n in st["nodes"]:
            print(f"  node {n['name']} {n['address']} (netns {n['netns']}, proxy mode {st['proxyMode']})")
        for name, c in st["components"].items():
            state = "healthy" if c["healthy"] else "running" if c["running"] else "stopped"
            print(f"  {name:<28} pid {c['pid']}  {state}  restarts {c['restarts']}")
    return 0 if st["status"] in ("ready", "running") else 3


def kubeconfig_of(cfg: ClusterConfig, *, show: bool, kubeconfig: str | None) -> int:
    """`cluster kubeconfig`: merge the running cluster's kubeconfig into the user's again (kind
    export kubeconfig), or print it (kind get kubeconfig)."""
    from cluster import launcher, userconfig

    if load_state(cfg.state_dir) is None:
        raise launcher.LaunchError(f"no cluster in {cfg.state_dir}: run `cluster up` first")
    key = userconfig.context_name(cfg.name)
    doc = userconfig.load_cluster_config(cfg.kubeconfig, key, cfg.user_servers)
    if show:
        sys.stdout.write(userconfig.dump(doc))
        return 0
    path = userconfig.merge_into(doc, explicit=kubeconfig)
    print(f'Set kubectl context to "{key}" in {path}')
    return 0


def load_images(cfg: ClusterConfig, archives: list[Path]) -> int:
    """`image load`: image archives (oci-archive, OCI layout, docker-archive) into every node's
    store, as `kind load image-archive` does; what a node has already is not loaded again."""
    from services.nodeagent.oci.image import ImageError
    from services.nodeagent.oci.store import ContentStore

    state = load_state(cfg.state_dir)
    if state is None:
        print(f"error: no cluster in {cfg.state_dir}: run `cluster up` first", file=sys.stderr)
        return 1
    for archive in archives:
        if not archive.exists():
            print(f"error: {archive}: no such file or directory", file=sys.stderr)
            return 1
    serving = cfg.container_runtime != "process" and (cfg.registry_dir / "config.yml").exists()
    try:
        for archive in archives:
            for i in range(1, cfg.nodes + 1):
                store, node = ContentStore(cfg.node_dir(i) / "images"), cfg.node_name(i)
                before = {image.id for image in store.images()}
                loaded = {image.id: image for image in store.import_archive(archive)}
                for image in loaded.values():
                    name = image.repo_tags[0] if image.repo_tags else image.id
                    what = "already present on" if image.id in before else "loaded onto"
                    print(f'Image: "{name}" with ID "{image.id}" {what} node "{node}"')
                    if serving and i == 1:  # so a pull (imagePullPolicy Always) finds it too
                        for pushed in registry.push_from_store(store, image, cfg.registry_url):
                            print(f'Image: "{pushed}" pushed to the cluster registry {cfg.registry_url}')
    except (ImageError, registry.RegistryError, OSError) as exc:
        print(f"error: {archive}: {exc}", file=sys.stderr)
        return 1
    return 0


ETCD_USAGE = {"status": ("etcd status", 0), "defrag": ("etcd defrag", 0),
              "snapshot": ("etcd snapshot save|restore FILE", 2), "member": ("etcd member replace NAME", 2)}


def etcd(cfg: ClusterConfig, command: str, rest: list[str]) -> int:
    """`cluster etcd status | snapshot save|restore FILE | member replace NAME | defrag`
    (cluster/etcdops.py)."""
    from cluster import etcdops

    if load_state(cfg.state_dir) is None:
        print(f"error: no cluster in {cfg.state_dir}: run `cluster up` first", file=sys.stderr)
        return 1
    usage, count = ETCD_USAGE[command]
    if len(rest) != count or (command == "snapshot" and rest[0] not in ("save", "restore")) or \
            (command == "member" and rest[0] != "replace"):
        print(f"error: usage: cluster {usage}", file=sys.stderr)
        return 1
    try:
        if command == "status":
            members = asyncio.run(etcdops.statuses(cfg.etcd_endpoints))
            print(etcdops.format_statuses(members))
            return 0 if all(not m.error for m in members) else 1
        if command == "defrag":
            print("\n".join(asyncio.run(etcdops.defrag(cfg.etcd_endpoints))))
        elif command == "member":
            print(etcdops.member_replace(cfg, rest[1]))
        elif rest[0] == "restore":
            print(etcdops.snapshot_restore(cfg, Path(rest[1])))
        else:
            path = Path(rest[1])
            checked = etcdops.snapshot_save(cfg.etcd_endpoints, path)
            print(f"Snapshot saved at {path}: revision {checked.get('revision')}, {checked.get('totalKey')} keys, "
                  f"{checked.get('totalSize')} bytes, hash {checked.get('hash')}")
        return 0
    except (etcdops.EtcdOpError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    from cluster import launcher
    from cluster.supervisor import StartError
    from cluster.userconfig import UserConfigError

    cfg = config_from(args)
    action = args.cluster_action
    kubeconfig: str | None = getattr(args, "kubeconfig", None)
    if action == "up":
        return up(args, cfg, kubeconfig)
    if action == "load":
        return load_images(cfg, args.archives)
    if action == "etcd":
        return etcd(cfg, args.etcd_command, args.etcd_args)
    try:
        if action == "down":
            launcher.down(cfg, kubeconfig=kubeconfig)
            return 0
        if action == "status":
            return print_status(cfg, args.output)
        if action == "kubeconfig":
            return kubeconfig_of(cfg, show=args.print, kubeconfig=kubeconfig)
    except (launcher.LaunchError, StartError, UserConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(action)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cluster", description="the local cluster launcher")
    sub = p.add_subparsers(dest="cluster_action", required=True)
    for action in ("up", "down", "status", "kubeconfig", "etcd"):
        q = sub.add_parser(action)
        add_arguments(q, action)
        if action not in ("status", "etcd"):  # minikubectl has it as a global flag
            q.add_argument("--kubeconfig", help=KUBECONFIG_HELP)
    return run(p.parse_args(argv))
