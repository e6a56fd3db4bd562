"""The runtime's own checks on pod strings that reach files and exec, as tables (pure)."""
from __future__ import annotations

import pytest

from services.nodeagent import podinput

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


@pytest.mark.parametrize("name,hostname,subdomain,expected", [
    ("web-0", None, None, None),
    ("web-0", "db", "cluster", None),
    ("a.b", None, None, None),  # a pod name may hold dots; the hostname is then the name
    ("p", "web\n10.0.0.1 evil", None, f'pod Hostname "web\\n10.0.0.1 evil" is not a valid DNS label: {LABEL_MSG}'),
    ("p", "a" * 64, None, f'pod Hostname "{"a" * 64}" is not a valid DNS label: must be no more than 63 characters'),
    ("p", None, "Sub", f'pod Subdomain "Sub" is not a valid DNS label: {LABEL_MSG}'),
    ("web\n", None, None, 'pod name "web\\n" is not a valid hostname'),
], ids=["name", "hostname-and-subdomain", "dotted-name", "newline-hostname", "long-hostname", "bad-subdomain",
        "newline-name"])
def test_hostname_problem(name: str, hostname: str | None, subdomain: str | None, expected: str | None) -> None:
    assert podinput.hostname_problem(name, hostname, subdomain) == expected


@pytest.mark.parametrize("env,expected", [
    ({"PATH": "/bin", "MY VAR": "x y", "a.b-c": ""}, None),
    ({"A=B": "1"}, "invalid environment variable name \"A=B\": must not be empty or contain '=' or NUL"),
    ({"": "1"}, "invalid environment variable name \"\": must not be empty or contain '=' or NUL"),
    ({"A\0": "1"}, "invalid environment variable name \"A\\x00\": must not be empty or contain '=' or NUL"),
    ({"A": "x\0y"}, 'invalid value of environment variable "A": must not contain NUL'),
], ids=["valid", "equals", "empty", "nul-name", "nul-value"])
def test_env_problem(env: dict[str, str], expected: str | None) -> None:
    assert podinput.env_problem(env) == expected


@pytest.mark.parametrize("argv,working_dir,expected", [
    (["sh", "-c", "echo hi"], "/", None),
    (["sh", "-c", "echo\0hi"], "/", 'invalid command argument "echo\\x00hi": must not contain NUL'),
    (["sh"], "/tmp\0x", 'invalid workingDir "/tmp\\x00x": must not contain NUL'),
], ids=["valid", "nul-arg", "nul-working-dir"])
def test_exec_args_problem(argv: list[str], working_dir: str, expected: str | None) -> None:
    assert podinput.exec_args_problem(argv, working_dir) == expected
