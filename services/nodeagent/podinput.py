"""Checks on the pod strings the runtime writes into files or hands to exec (pure).

The API server validates these fields, but the agent acts on whatever it is given: an object
stored before a rule existed, or written straight to etcd. kubelet checks the names it puts in
a pod's files itself (GeneratePodHostNameAndDomain) and fails the sandbox with the reason; a
container whose environment or command cannot be passed to exec fails to be created. Each
function returns the problem in words (None when there is none), for the caller to raise as
the runtime error that becomes the pod's status and Event.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubecore.api import formats


def hostname_problem(name: str, hostname: str | None, subdomain: str | None) -> str | None:
    """spec.hostname and spec.subdomain must be DNS labels (kubelet's words); a hostname taken
    from the pod's name must be what a pod name is, a DNS subdomain."""
    for field, value in (("Hostname", hostname), ("Subdomain", subdomain)):
        if value:
            msgs = formats.dns1123_label_errors(value)
            if msgs:
                return f"pod {field} {formats.go_quote(value)} is not a valid DNS label: {';'.join(msgs)}"
    if not hostname and formats.dns1123_subdomain_errors(name):
        return f"pod name {formats.go_quote(name)} is not a valid hostname"
    return None


def env_problem(env: Mapping[str, str]) -> str | None:
    """A process environment holds NAME=VALUE strings: a name may not be empty or hold '=' or
    NUL, a value may not hold NUL."""
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            return (f"invalid environment variable name {formats.go_quote(name)}: "
                    "must not be empty or contain '=' or NUL")
        if "\0" in value:
            return f"invalid value of environment variable {formats.go_quote(name)}: must not contain NUL"
    return None


def exec_args_problem(argv: Sequence[str], working_dir: str) -> str | None:
    """exec takes NUL-terminated strings: no argument nor the working directory may hold NUL."""
    for arg in argv:
        if "\0" in arg:
            return f"invalid command argument {formats.go_quote(arg)}: must not contain NUL"
    if "\0" in working_dir:
        return f"invalid workingDir {formats.go_quote(working_dir)}: must not contain NUL"
    return None
