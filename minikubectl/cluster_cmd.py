"""`minikubectl cluster up|down|status|kubeconfig|etcd` and `minikubectl image load`: the local
cluster launcher's entry.

Only the argument wiring lives here for now. The launcher plugs in by replacing
`run_cluster` (it receives the parsed arguments and returns the exit code); the
sub-commands need no API server, so `main` does not resolve one for them.
"""
from __future__ import annotations

import argparse

ACTIONS = {
    "up": "start a local cluster (etcd, API server, controllers, node agents)",
    "down": "stop the local cluster",
    "status": "show the local cluster's processes and health",
    "kubeconfig": "set the kubectl context of the running cluster again (--print: print its kubeconfig)",
    "etcd": "the cluster's etcd: status, snapshot save|restore FILE, member replace NAME, defrag",
}


def run_cluster(args: argparse.Namespace) -> int:
    from cluster.cli import run

    return run(args)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             parents: list[argparse.ArgumentParser]) -> None:
    cluster = subparsers.add_parser("cluster", help="run a local cluster", parents=parents)
    actions = cluster.add_subparsers(dest="cluster_action", metavar="ACTION", required=True)
    from cluster.cli import add_arguments

    for name, text in ACTIONS.items():
        add_arguments(actions.add_parser(name, help=text, parents=parents), name)
    cluster.set_defaults(local_run=run_cluster)
    image = subparsers.add_parser("image", help="images on the local cluster's nodes", parents=parents)
    image_actions = image.add_subparsers(dest="image_action", metavar="ACTION", required=True)
    load = image_actions.add_parser("load", parents=parents,
                                    help="load image archives onto every node (kind load image-archive)")
    add_arguments(load, "load")
    load.set_defaults(local_run=run_cluster, cluster_action="load")
