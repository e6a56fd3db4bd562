"""minikubectl delete --cascade: the flag as kubectl reads it, and the DeleteOptions it
sends (no garbage collector runs here, so the finalizers the API server sets stay)."""
from __future__ import annotations

import pytest

from minikubectl.commands import cascade_policy
from minikubectl.errors import CliError
from tests.minikubectl.test_cli import cli, write  # noqa: F401  (the fixture)

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
"""
DEPRECATED = "--cascade={} is deprecated (boolean value) and can be replaced with --cascade={}."


@pytest.mark.parametrize("value, policy, warning", [
    ("background", "Background", None),
    ("orphan", "Orphan", None),
    ("foreground", "Foreground", None),
    ("true", "Background", DEPRECATED.format("true", "background")),
    ("F", "Orphan", DEPRECATED.format("false", "orphan")),
], ids=["background", "orphan", "foreground", "true", "F"])
def test_cascade_values(value, policy, warning):
    assert cascade_policy(value) == (policy, warning)


@pytest.mark.parametrize("value", ["Orphan", "sideways", ""])
def test_cascade_values_refused(value):
    with pytest.raises(CliError) as exc:
        cascade_policy(value)
    assert str(exc.value) == (f'invalid cascade value ({value}). Must be "background", '
                              '"foreground", or "orphan"')


def test_delete_cascade_sends_the_policy(cli, tmp_path):  # noqa: F811
    f = write(tmp_path / "d.yaml", DEPLOY)
    cli("apply", "-f", f)
    assert cli("delete", "deploy", "web", "--cascade=orphan").stdout == \
        'deployment.apps "web" deleted\n'
    marked = cli.json("get", "deploy", "web")
    assert marked["metadata"]["finalizers"] == ["orphan"]
    assert marked["metadata"]["deletionTimestamp"]
    cli("delete", "-f", f, "--cascade=foreground")
    assert cli.json("get", "deploy", "web")["metadata"]["finalizers"] == ["foregroundDeletion"]
    done = cli("delete", "deploy", "web", "--cascade=true")
    assert done.stderr == f"warning: {DEPRECATED.format('true', 'background')}\n"
    assert cli("get", "deploy", "web", ok=False).stderr == \
        'Error from server (NotFound): deployments.apps "web" not found\n'
    err = cli("delete", "deploy", "web", "--cascade=sideways", ok=False).stderr
    assert err == 'error: invalid cascade value (sideways). Must be "background", "foreground", ' \
                  'or "orphan"\n'
    cli("apply", "-f", f)
    cli("delete", "deploy", "web", "--cascade")  # bare: background
    cli("get", "deploy", "web", ok=False)
