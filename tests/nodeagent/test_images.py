"""The image catalog: name normalisation and Kubernetes' command/args rules."""
from __future__ import annotations

import sys

import pytest

from services.nodeagent.images import ImagePullError, repository, resolve

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.47"


@pytest.mark.parametrize("image, repo", [
    ("nginx", "nginx"),
    ("nginx:1.25-alpine", "nginx"),
    ("docker.io/library/nginx:latest", "nginx"),
    ("library/busybox", "busybox"),
    ("busybox@sha256:abcdef", "busybox"),
    ("localhost:5000/team/app:v1", "localhost:5000/team/app"),
    (AGNHOST, "registry.k8s.io/e2e-test-images/agnhost"),
    ("Python:3.11-slim", "python"),
], ids=["bare", "tag", "docker-hub-full", "library", "digest", "registry-port", "agnhost", "case"])
def test_repository(image, repo):
    assert repository(image) == repo


def test_nginx_defaults_to_the_hostname_server():
    p = resolve("nginx:1.25")
    assert p.argv == (sys.executable, "-m", "services.nodeagent.workloads.nginx")
    assert "PYTHONPATH" in p.env


def test_agnhost_args_follow_its_entrypoint():
    p = resolve(AGNHOST, args=["netexec", "--http-port=8080"])
    assert p.argv == (sys.executable, "-m", "services.nodeagent.workloads.agnhost", "netexec", "--http-port=8080")


def test_command_replaces_entrypoint_and_cmd():
    p = resolve("nginx", command=["sh", "-c"], args=["echo hi"])
    assert p.argv == ("sh", "-c", "echo hi")


@pytest.mark.parametrize("image, argv", [
    ("busybox", ("sh",)),
    ("alpine:3.19", ("/bin/sh",)),
    ("python:3.11", (sys.executable,)),
], ids=["busybox", "alpine", "python"])
def test_default_commands(image, argv):
    assert resolve(image).argv == argv


def test_unknown_image_runs_an_explicit_command():
    p = resolve("ghcr.io/someone/tool:v2", command=["sleep", "5"], env={"A": "1"}, working_dir="/tmp")
    assert (p.argv, dict(p.env), p.working_dir) == (("sleep", "5"), {"A": "1"}, "/tmp")


@pytest.mark.parametrize("kwargs", [{}, {"args": ["--flag"]}], ids=["nothing", "args-only"])
def test_unknown_image_without_command_is_an_image_pull_error(kwargs):
    with pytest.raises(ImagePullError) as info:
        resolve("quay.io/nope/missing:1", **kwargs)
    assert info.value.reason == "ErrImagePull"
    assert "quay.io/nope/missing:1" in str(info.value)
