"""A container's environment as kubelet makes it: expansion, valueFrom, envFrom, as tables."""
from __future__ import annotations

import base64

import pytest

from kubecore.api import quantity
from services.nodeagent.podenv import (
    ContainerConfigError,
    EnvSources,
    PodAddresses,
    container_env,
    expand,
    pod_field_value,
    references,
    resource_field_value,
)

VARS = {"VAR_A": "A", "VAR_B": "B", "VAR_EMPTY": ""}


# The cases of kube's third_party/forked/golang/expansion tests.
@pytest.mark.parametrize(("text", "expected"), [
    ("$(VAR_A)", "A"),
    ("___$(VAR_B)___", "___B___"),
    ("$(VAR_A)-$(VAR_B)", "A-B"),
    ("$$(VAR_A)", "$(VAR_A)"),
    ("$$$(VAR_A)", "$A"),
    ("$$$$(VAR_A)", "$$(VAR_A)"),
    ("$(VAR_DNE)", "$(VAR_DNE)"),
    ("$(VAR_EMPTY)x", "x"),
    ("$(", "$("),
    ("$()", "$()"),
    ("$", "$"),
    ("x$", "x$"),
    ("$VAR_A", "$VAR_A"),
    ("$(VAR_A", "$(VAR_A"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("$(VAR_A)$(VAR_B)", "AB"),
    ("$($(VAR_A))", "$($(VAR_A))"),
    ("((($(VAR_A))))", "(((A)))"),
    ("", ""),
], ids=["whole", "middle", "two", "escaped", "escape-then-ref", "two-escapes", "unknown", "empty-value",
        "open", "empty-name", "lone", "trailing", "no-paren", "unclosed", "escaped-operator", "adjacent",
        "nested", "parens", "empty"])
def test_expand(text: str, expected: str) -> None:
    assert expand(text, VARS.get) == expected


POD = {
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web", "tier": "a b"},
                 "annotations": {"note": 'say "hi"\n'}},
    "spec": {"nodeName": "node-1", "serviceAccountName": "builder", "containers": [{"name": "c"}]},
}
ADDR = PodAddresses(pod_ips=("10.244.1.5", "fd00::5"), host_ips=("10.250.0.2",))


@pytest.mark.parametrize(("path", "expected"), [
    ("metadata.name", "web"),
    ("metadata.namespace", "shop"),
    ("metadata.uid", "u-1"),
    ("metadata.labels", 'app="web"\ntier="a b"'),
    ("metadata.annotations", 'note="say \\"hi\\"\\n"'),
    ("metadata.labels['app']", "web"),
    ("metadata.labels['missing']", ""),
    ("metadata.annotations['note']", 'say "hi"\n'),
    ("spec.nodeName", "node-1"),
    ("spec.serviceAccountName", "builder"),
    ("status.podIP", "10.244.1.5"),
    ("status.podIPs", "10.244.1.5,fd00::5"),
    ("status.hostIP", "10.250.0.2"),
    ("status.hostIPs", "10.250.0.2"),
], ids=lambda v: str(v)[:30])
def test_pod_field_value(path: str, expected: str) -> None:
    assert pod_field_value(POD, path, ADDR) == expected


def test_unsupported_field_path() -> None:
    with pytest.raises(ContainerConfigError, match="unsupported fieldPath: spec.hostname"):
        pod_field_value(POD, "spec.hostname", ADDR)


ALLOCATABLE = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}
LIMITED = {"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                      "requests": {"cpu": "250m", "memory": "64Mi"}}}


@pytest.mark.parametrize(("container", "ref", "expected"), [
    (LIMITED, {"resource": "limits.cpu"}, "1"),  # 500m rounded up to whole cores
    (LIMITED, {"resource": "limits.cpu", "divisor": "1m"}, "500"),
    (LIMITED, {"resource": "requests.cpu", "divisor": "100m"}, "3"),  # 2.5 rounded up
    (LIMITED, {"resource": "limits.memory"}, str(128 * 2**20)),
    (LIMITED, {"resource": "limits.memory", "divisor": "1Mi"}, "128"),
    (LIMITED, {"resource": "requests.memory", "divisor": "1M"}, "68"),  # 67.1 MB rounded up
    ({"name": "c"}, {"resource": "limits.cpu", "divisor": "1m"}, "2000"),  # node allocatable
    ({"name": "c"}, {"resource": "limits.memory", "divisor": "1Gi"}, "4"),
    ({"name": "c"}, {"resource": "limits.ephemeral-storage", "divisor": "1Gi"}, "10"),
    ({"name": "c"}, {"resource": "requests.cpu"}, "0"),  # requests are not defaulted
    (LIMITED, {"resource": "limits.cpu", "divisor": "0"}, "1"),
], ids=["cpu-cores", "cpu-milli", "cpu-ceil", "memory-bytes", "memory-mi", "memory-ceil", "default-cpu",
        "default-memory", "default-storage", "request-unset", "divisor-zero"])
def test_resource_field_value(container: dict, ref: dict, expected: str) -> None:
    assert resource_field_value(container, ref, ALLOCATABLE) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("500m", quantity.Fraction(1, 2)), ("1Gi", 2**30), ("1e3", 1000), ("0.1", quantity.Fraction(1, 10)),
    ("2k", 2000), ("1.5Mi", 3 * 2**19), (3, 3),
], ids=["milli", "binary", "exponent", "decimal", "kilo", "fraction-binary", "int"])
def test_quantity(text: str | int, expected: object) -> None:
    assert quantity.parse(text) == expected


def test_quantity_rejects_garbage() -> None:
    with pytest.raises(quantity.QuantityError):
        quantity.parse("12xyz")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CM = {"metadata": {"name": "cfg"}, "data": {"MODE": "fast", "1bad": "x", "url": "http://$(HOST)", "a.b": "dot"}}
SECRET = {"metadata": {"name": "creds"}, "data": {"PASSWORD": b64("s3cret"), "bad key": b64("y")}}
SOURCES = EnvSources(configmaps={"cfg": CM, "gone": None}, secrets={"creds": SECRET, "nope": None})
SERVICE_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "MODE": "from-service"}


def env_of(container: dict) -> dict[str, str]:
    return container_env(POD, {"name": "c", **container}, service_env=SERVICE_ENV, sources=SOURCES,
                         addresses=ADDR, allocatable=ALLOCATABLE).env


@pytest.mark.parametrize(("container", "expected"), [
    ({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)-$(KUBERNETES_SERVICE_HOST)"}]},
     {"A": "1", "B": "1-10.96.0.1", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "MODE": "from-service"}),
    ({"env": [{"name": "B", "value": "$(A)"}, {"name": "A", "value": "1"}]},
     {"B": "$(A)", "A": "1", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "MODE": "from-service"}),
    ({"env": [{"name": "E", "value": ""}]},
     {"E": "", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "MODE": "from-service"}),
    ({"env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
              {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
              {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}]},
     {"POD": "web", "IP": "10.244.1.5", "MEM": "4096", "KUBERNETES_SERVICE_HOST": "10.96.0.1",
      "MODE": "from-service"}),
    ({"env": [{"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
              {"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
              {"name": "O1", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": True}}},
              {"name": "O2", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "x", "optional": True}}}]},
     {"M": "fast", "P": "s3cret", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "MODE": "from-service"}),
    ({"envFrom": [{"configMapRef": {"name": "cfg"}}], "env": [{"name": "MODE", "value": "mine:$(MODE)"}]},
     {"MODE": "mine:fast", "a.b": "dot", "url": "http://$(HOST)", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}),
    ({"envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}},
                  {"configMapRef": {"name": "gone", "optional": True}}]},
     {"CFG_1bad": "x", "CFG_MODE": "fast", "CFG_a.b": "dot", "CFG_url": "http://$(HOST)", "PASSWORD": "s3cret",
      "KUBERNETES_SERVICE_HOST": "10.96.0.1", "MODE": "from-service"}),
], ids=["value-expansion", "expansion-in-order", "empty-value", "field-and-resource", "key-refs-optional",
        "env-over-envfrom", "envfrom-prefix-secret-optional"])
def test_container_env(container: dict, expected: dict) -> None:
    got = env_of(container)
    assert got == expected
    assert list(got) == list(expected)  # envFrom (keys sorted), env in order, then Service variables


@pytest.mark.parametrize(("container", "message"), [
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}]},
     "couldn't find key nope in ConfigMap shop/cfg"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}}]},
     "couldn't find key nope in Secret shop/creds"),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "a"}}}]},
     'configmap "gone" not found'),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "a", "optional": False}}}]},
     'secret "nope" not found'),
    ({"envFrom": [{"configMapRef": {"name": "gone"}}]}, 'configmap "gone" not found'),
    ({"envFrom": [{"secretRef": {"name": "nope"}}]}, 'secret "nope" not found'),
], ids=["cm-key", "secret-key", "cm-missing", "secret-missing", "envfrom-cm", "envfrom-secret"])
def test_missing_required_source(container: dict, message: str) -> None:
    with pytest.raises(ContainerConfigError) as info:
        env_of(container)
    assert str(info.value) == message
    assert info.value.reason == "CreateContainerConfigError"


def test_envfrom_invalid_keys_are_reported() -> None:
    result = container_env(POD, {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}},
                                                          {"secretRef": {"name": "creds"}}]},
                           service_env={}, sources=SOURCES)
    assert "1bad" not in result.env and "bad key" not in result.env
    assert [s.message for s in result.skipped] == [
        "Keys [1bad] from the EnvFrom configMap shop/cfg were skipped since they are considered invalid "
        "environment variable names.",
        "Keys [bad key] from the EnvFrom secret shop/creds were skipped since they are considered invalid "
        "environment variable names."]


@pytest.mark.parametrize(("container", "command", "args"), [
    ({"env": [{"name": "WHO", "value": "world"}], "command": ["echo", "hello $(WHO)"], "args": ["$$(WHO)", "$(NO)"]},
     ["echo", "hello world"], ["$(WHO)", "$(NO)"]),
    ({"command": ["sh", "-c", "echo $HOME $(KUBERNETES_SERVICE_HOST)"]},
     ["sh", "-c", "echo $HOME 10.96.0.1"], None),
    ({}, None, None),
], ids=["command-and-args", "service-variable", "none"])
def test_command_and_args_expansion(container: dict, command: list | None, args: list | None) -> None:
    result = container_env(POD, {"name": "c", **container}, service_env=SERVICE_ENV, sources=SOURCES)
    assert (result.command, result.args) == (command, args)


def test_references() -> None:
    container = {"envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "s1"}}],
                 "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "b", "key": "k"}}},
                         {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}},
                         {"name": "Z", "value": "plain"}]}
    assert references(container) == ({"a", "b"}, {"s1", "s2"})
