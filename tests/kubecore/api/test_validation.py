"""Per-kind validation and defaulting as tables: object in, causes (field, message, reason) out,
in kube-apiserver's words and order, which kubectl shows and the API server tests compare."""
from __future__ import annotations

import copy

import pytest

from kubecore.api import resources as R
from kubecore.api.types import Obj

INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
DUPLICATE = "FieldValueDuplicate"
UNSUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
             "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
PORT_MSG = "must be between 1 and 65535, inclusive"


def causes(rt: R.ResourceType, obj: Obj, old: Obj | None = None) -> list[tuple[str, str, str]]:
    return [(c.field, c.message, c.reason) for c in rt.validate(obj, old)]


def svc(**spec: object) -> Obj:
    return {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], **spec}}


def pod_spec(*containers: Obj, **spec: object) -> Obj:
    return {"containers": list(containers) or [{"name": "app", "image": "busybox"}], **spec}


@pytest.mark.parametrize("spec,expected", [
    (pod_spec(), []),
    ({"containers": []}, [("spec.containers", "Required value", REQUIRED)]),
    (pod_spec({"name": "a", "image": "x",
               "ports": [{"containerPort": 0, "name": "http"}, {"containerPort": 80, "name": "http",
                                                               "protocol": "ICMP"}]},
              {"name": "a"}),
     [("spec.containers[0].ports[0].containerPort", f"Invalid value: 0: {PORT_MSG}", INVALID),
      ("spec.containers[0].ports[1].protocol",
       'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"', UNSUPPORTED),
      ("spec.containers[0].ports[1].name", 'Duplicate value: "http"', DUPLICATE),
      ("spec.containers[1].name", 'Duplicate value: "a"', DUPLICATE),
      ("spec.containers[1].image", "Required value", REQUIRED)]),
    (pod_spec({"name": "a", "image": "x", "readinessProbe": {"periodSeconds": 1},
               "livenessProbe": {"httpGet": {"port": "Bad"}, "exec": {"command": ["x"]}}}),
     [("spec.containers[0].readinessProbe", "Required value: must specify exactly one handler type",
       REQUIRED),
      ("spec.containers[0].livenessProbe", "Required value: must specify exactly one handler type",
       REQUIRED),
      ("spec.containers[0].livenessProbe.httpGet.port",
       'Invalid value: "Bad": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
       INVALID)]),
    (pod_spec(restartPolicy="Sometimes", terminationGracePeriodSeconds=-1),
     [("spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", '
       '"OnFailure", "Never"', UNSUPPORTED),
      ("spec.terminationGracePeriodSeconds", "Invalid value: -1: must be greater than or equal to 0",
       INVALID)]),
    ({**pod_spec(), "initContainers": [{"name": "app", "image": "x"}]},
     [("spec.containers[1].name", 'Duplicate value: "app"', DUPLICATE)]),
], ids=["valid", "no-containers", "containers-and-ports", "probes", "policy-and-grace",
        "init-containers-numbered-after"])
def test_pod_spec(spec: Obj, expected: list[tuple[str, str, str]]) -> None:
    assert causes(R.PODS, {"metadata": {"name": "p"}, "spec": spec}) == expected


def test_pod_updates_may_change_only_images() -> None:
    old = {"metadata": {"name": "p"}, "spec": pod_spec()}
    new_image = copy.deepcopy(old)
    new_image["spec"]["containers"][0]["image"] = "nginx"
    assert causes(R.PODS, new_image, old) == []
    moved = copy.deepcopy(old)
    moved["spec"]["nodeName"] = "node-1"
    assert [c[0] for c in causes(R.PODS, moved, old)] == ["spec"]


def workload(**spec: object) -> Obj:
    return {"metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}}, "spec": pod_spec()}, **spec}}


@pytest.mark.parametrize("obj,old,expected", [
    (workload(), None, []),
    (workload(replicas=-1, minReadySeconds=5, progressDeadlineSeconds=5), None,
     [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0", INVALID),
      ("spec.progressDeadlineSeconds", "Invalid value: 5: must be greater than minReadySeconds",
       INVALID)]),
    (workload(selector={}), None, [("spec.selector", "Required value", REQUIRED)]),
    (workload(selector={"matchLabels": {"app": "other"}}), None,
     [("spec.template.metadata.labels", "Invalid value: {'app': 'd'}: `selector` does not match "
       "template `labels`", INVALID)]),
    (workload(selector={"matchExpressions": [{"key": "app", "operator": "Near"}]}), None,
     [("spec.selector.matchExpressions", "Invalid value: unknown operator", INVALID),
      ("spec.template.metadata.labels", "Invalid value: {'app': 'd'}: `selector` does not match "
       "template `labels`", INVALID)]),
    (workload(), workload(selector={"matchLabels": {"app": "d", "v": "1"}}),
     [("spec.selector", "Invalid value: field is immutable", INVALID)]),
], ids=["valid", "counts", "no-selector", "selector-mismatch", "unknown-operator", "immutable"])
@pytest.mark.parametrize("rt", [R.DEPLOYMENTS, R.REPLICASETS], ids=["deployment", "replicaset"])
def test_workload(rt: R.ResourceType, obj: Obj, old: Obj | None,
                  expected: list[tuple[str, str, str]]) -> None:
    assert causes(rt, obj, old) == expected


@pytest.mark.parametrize("obj,old,expected", [
    ({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]},
     None, []),
    ({"addressType": "IPv4", "endpoints": [{"addresses": []}, {"addresses": ["abc"]}],
      "ports": [{"port": 0, "protocol": "X"}]}, None,
     [("endpoints[0].addresses", "Required value: must contain exactly one address", REQUIRED),
      ("endpoints[1].addresses[0]", 'Invalid value: "abc": must be a valid IPv4 address', INVALID),
      ("ports[0].port", f"Invalid value: 0: {PORT_MSG}", INVALID),
      ("ports[0].protocol", 'Unsupported value: "X": supported values: "SCTP", "TCP", "UDP"',
       UNSUPPORTED)]),
    ({"addressType": "IPv6"}, {"addressType": "IPv4"},
     [("addressType", 'Invalid value: "IPv6": field is immutable', INVALID)]),
], ids=["valid", "endpoints-and-ports", "address-type-immutable"])
def test_endpointslice(obj: Obj, old: Obj | None, expected: list[tuple[str, str, str]]) -> None:
    assert causes(R.ENDPOINTSLICES, obj, old) == expected


CIDR_FORBIDDEN = ("spec.podCIDRs", 'Forbidden: node updates may not change podCIDR except from "" to valid',
                  FORBIDDEN)


def node(*cidrs: str, one: str | None = None, addresses: list[Obj] | None = None) -> Obj:
    spec: Obj = {}
    if cidrs:
        spec["podCIDRs"] = list(cidrs)
    if one is not None:
        spec["podCIDR"] = one
    return {"metadata": {"name": "n1"}, "spec": spec, "status": {"addresses": addresses or []}}


# kube's ValidateNode / ValidateNodeUpdate (v1.31): the list of pod ranges is what is checked,
# and shown whole in the cause; podCIDR alone counts as a list of one (kube's v1 conversion)
@pytest.mark.parametrize("obj,old,expected", [
    (node(one="10.244.1.0/24"), None, []),
    (node(one="bad"), None,
     [("spec.podCIDRs[0]", 'Invalid value: []string{"bad"}: must be valid CIDR', INVALID)]),
    (node("10.244.1.0/24", "127.0.0.1:2379/x"), None,
     [("spec.podCIDRs[1]", 'Invalid value: []string{"10.244.1.0/24", "127.0.0.1:2379/x"}: must be '
       "valid CIDR", INVALID),
      ("spec.podCIDRs", 'Invalid value: []string{"10.244.1.0/24", "127.0.0.1:2379/x"}: may specify '
       "no more than one CIDR for each IP family", INVALID)]),
    (node("10.244.1.0/24", "10.244.2.0/24"), None,
     [("spec.podCIDRs", 'Invalid value: []string{"10.244.1.0/24", "10.244.2.0/24"}: may specify no '
       "more than one CIDR for each IP family", INVALID)]),
    (node("10.244.1.0/24", "10.244.1.0/24"), None,
     [("spec.podCIDRs", 'Invalid value: []string{"10.244.1.0/24", "10.244.1.0/24"}: may specify no '
       "more than one CIDR for each IP family", INVALID),
      ("spec.podCIDRs[1]", 'Duplicate value: "10.244.1.0/24"', DUPLICATE)]),
    (node("10.244.1.0/24", "fd00:10:244:1::/64"), None, []),
    (node(one="10.244.1.0/24"), node(one="10.244.0.0/24"), [CIDR_FORBIDDEN]),
    (node("10.244.1.0/24"), node(one="10.244.0.0/24"), [CIDR_FORBIDDEN]),
    (node(), node("10.244.0.0/24"), [CIDR_FORBIDDEN]),
    (node(one="10.244.1.0/24"), node(), []),
    (node("10.244.0.0/24"), node(one="10.244.0.0/24"), []),
], ids=["valid", "not-a-cidr", "url-as-cidr", "two-of-one-family", "duplicate", "dual-stack",
        "changed", "changed-by-the-list", "cleared", "set-from-empty", "same-range-either-field"])
def test_node_spec(obj: Obj, old: Obj | None, expected: list[tuple[str, str, str]]) -> None:
    assert causes(R.NODES, obj, old) == expected


def status_causes(obj: Obj) -> list[tuple[str, str, str]]:
    return [(c.field, c.message, c.reason) for c in R.NODES.validate_status(obj, None)]


IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


# stricter than kube, which takes any string: the API server dials the InternalIP and nodes
# route through it, so an InternalIP/ExternalIP is a plain address and nothing more
@pytest.mark.parametrize("address,expected", [
    ({"type": "InternalIP", "address": "10.250.0.11"}, []),
    ({"type": "InternalIP", "address": "fd00::11"}, []),
    ({"type": "ExternalIP", "address": "192.0.2.7"}, []),
    ({"type": "Hostname", "address": "node-1:2379/anything"}, []),
    ({"type": "InternalIP", "address": "127.0.0.1:2379/v3/kv/range?x#"},
     [("status.addresses[0].address", f'Invalid value: "127.0.0.1:2379/v3/kv/range?x#": {IP_MSG}',
       INVALID)]),
    ({"type": "InternalIP", "address": "[fd00::11]"},
     [("status.addresses[0].address", f'Invalid value: "[fd00::11]": {IP_MSG}', INVALID)]),
    ({"type": "InternalIP", "address": "fe80::1%eth0"},
     [("status.addresses[0].address", f'Invalid value: "fe80::1%eth0": {IP_MSG}', INVALID)]),
    ({"type": "ExternalIP", "address": "node-1.example"},
     [("status.addresses[0].address", f'Invalid value: "node-1.example": {IP_MSG}', INVALID)]),
    ({"type": "InternalIP", "address": " 10.250.0.11"},
     [("status.addresses[0].address", f'Invalid value: " 10.250.0.11": {IP_MSG}', INVALID)]),
], ids=["ipv4", "ipv6", "external", "hostname-is-free-text", "url", "brackets", "zone",
        "name-as-external-ip", "space"])
def test_node_addresses(address: Obj, expected: list[tuple[str, str, str]]) -> None:
    assert status_causes(node(addresses=[address])) == expected


def test_metadata() -> None:
    assert [(c.field, c.reason) for c in R.metadata_causes({"metadata": {}}, R.PODS)] == [
        ("metadata.name", REQUIRED)]
    found = R.metadata_causes({"metadata": {"name": "Web", "labels": {"a/b/c": "ok"},
                                            "annotations": {"k": "v" * 262144}}}, R.SERVICES)
    assert [(c.field, c.reason) for c in found] == [
        ("metadata.name", INVALID), ("metadata.labels", INVALID),
        ("metadata.annotations", "FieldValueTooLong")]
    assert found[0].message.startswith('Invalid value: "Web": a DNS-1035 label must consist')


def test_defaults() -> None:
    deployment: Obj = {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}
    R.DEPLOYMENTS.default(deployment)
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("image, policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.27", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("", "IfNotPresent"),
])
def test_image_pull_policy_defaults_as_kube(image: str, policy: str) -> None:
    pod: Obj = {"spec": {"containers": [{"name": "a", "image": image}],
                         "initContainers": [{"name": "i", "image": image, "imagePullPolicy": "Never"}]}}
    R.PODS.default(pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy
    assert pod["spec"]["initContainers"][0]["imagePullPolicy"] == "Never"  # given: kept
    replicaset: Obj = {"spec": None}
    R.REPLICASETS.default(replicaset)
    assert replicaset["spec"]["replicas"] == 1 and "strategy" not in replicaset["spec"]
    namespace: Obj = {"status": {}}
    R.NAMESPACES.default(namespace)
    assert namespace == {"status": {"phase": "Active"}, "spec": {"finalizers": ["kubernetes"]}}


def test_formats_keep_their_first_import_path() -> None:
    from kubecore.api.validation import go_bool, label_key_errors

    assert go_bool("T") is True and go_bool("yes") is None
    assert label_key_errors("example.com/app") == []


# --- fields that reach the node: names in /etc/hosts, env, host ports, DNS settings ----------

ENV_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
           "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
           "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
RELAXED_ENV_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
LONG = "a" * 70
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                 "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                 "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def env_pod(*names: str) -> Obj:
    return pod_spec({"name": "app", "image": "busybox", "env": [{"name": n, "value": "v"} for n in names]})


def ports_pod(*ports: Obj, **spec: object) -> Obj:
    return pod_spec({"name": "a", "image": "x", "ports": list(ports)}, **spec)


@pytest.mark.parametrize("spec,expected", [
    (pod_spec(hostname="web-0", subdomain="web"), []),
    (pod_spec(hostname=LONG), [("spec.hostname", f'Invalid value: "{LONG}": must be no more than 63 '
                                "characters", INVALID)]),
    (pod_spec(hostname="web\n127.0.0.1 evil", subdomain="Web"),
     [("spec.hostname", f'Invalid value: "web\\n127.0.0.1 evil": {LABEL_MSG}', INVALID),
      ("spec.subdomain", f'Invalid value: "Web": {LABEL_MSG}', INVALID)]),
    (env_pod("MY_VAR", "my.env-name", "-x"), []),
    (env_pod("A=B", "1ABC", "..x", "", "NUL\x00"),
     [("spec.containers[0].env[0].name", f'Invalid value: "A=B": {ENV_MSG}', INVALID),
      ("spec.containers[0].env[1].name", f'Invalid value: "1ABC": {ENV_MSG}', INVALID),
      ("spec.containers[0].env[2].name", "Invalid value: \"..x\": must not start with '..'", INVALID),
      ("spec.containers[0].env[3].name", "Required value", REQUIRED),
      ("spec.containers[0].env[4].name", f'Invalid value: "NUL\\x00": {ENV_MSG}', INVALID)]),
    (env_pod("..", "."), [("spec.containers[0].env[0].name", "Invalid value: \"..\": must not be '..'", INVALID),
                          ("spec.containers[0].env[1].name", "Invalid value: \".\": must not be '.'", INVALID)]),
    (ports_pod({"containerPort": 80, "hostPort": 70000}, {"containerPort": 81, "hostPort": 8080},
               {"containerPort": 82, "hostPort": 8080, "protocol": "UDP"},
               {"containerPort": 83, "hostPort": 8080, "hostIP": "10.0.0.1"}),
     [("spec.containers[0].ports[0].hostPort", f"Invalid value: 70000: {PORT_MSG}", INVALID)]),
    ({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                     {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080,
                                                            "protocol": "TCP"}]}]},
     [("spec.containers[1].ports[0].hostPort", 'Duplicate value: "TCP//8080"', DUPLICATE)]),
    (ports_pod({"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}, hostNetwork=True),
     [("spec.containers[0].ports[0].hostPort", "Invalid value: 8080: must match `containerPort` when "
       "`hostNetwork` is true", INVALID),
      ("spec.containers[0].ports[1].hostPort", "Invalid value: 0: must match `containerPort` when "
       "`hostNetwork` is true", INVALID)]),
    (pod_spec(dnsPolicy="Sometimes"),
     [("spec.dnsPolicy", 'Unsupported value: "Sometimes": supported values: "ClusterFirstWithHostNet", '
       '"ClusterFirst", "Default", "None"', UNSUPPORTED)]),
    (pod_spec(dnsPolicy="None"),
     [("spec.dnsConfig", "Required value: must provide `dnsConfig` when `dnsPolicy` is None", REQUIRED)]),
    (pod_spec(dnsPolicy="None", dnsConfig={"searches": ["a.b"]}),
     [("spec.dnsConfig.nameservers", "Required value: must provide at least one DNS nameserver when "
       "`dnsPolicy` is None", REQUIRED)]),
    (pod_spec(dnsPolicy="None", dnsConfig={"nameservers": ["10.0.0.10", "fd00::a"], "searches": ["a.b.", "c"],
                                           "options": [{"name": "ndots", "value": "2"}]}), []),
    (pod_spec(dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "10.0.0.1\nsearch evil"],
                         "searches": ["ok.example", "Bad_Domain", "x\noptions rotate"], "options": [{}]}),
     [("spec.dnsConfig.nameservers", 'Invalid value: []string{"1.1.1.1", "2.2.2.2", "3.3.3.3", '
       '"10.0.0.1\\nsearch evil"}: must not have more than 3 nameservers', INVALID),
      ("spec.dnsConfig.nameservers[3]", 'Invalid value: "10.0.0.1\\nsearch evil": must be a valid IP '
       "address, (e.g. 10.9.8.7 or 2001:db8::ffff)", INVALID),
      ("spec.dnsConfig.searches[1]", f'Invalid value: "Bad_Domain": {SUBDOMAIN_MSG}', INVALID),
      ("spec.dnsConfig.searches[2]", f'Invalid value: "x\\noptions rotate": {SUBDOMAIN_MSG}', INVALID),
      ("spec.dnsConfig.options[0]", "Required value: must not be empty", REQUIRED)]),
    (pod_spec(dnsConfig={"searches": [f"s{i}.example" for i in range(33)]}),
     [("spec.dnsConfig.searches", "Invalid value: []string{" + ", ".join(f'"s{i}.example"' for i in range(33))
       + "}: must not have more than 32 search paths", INVALID)]),
], ids=["hostname-and-subdomain", "hostname-too-long", "newline-hostname-and-bad-subdomain", "env-valid",
        "env-invalid", "env-dot-dot", "host-port-range-and-distinct-keys", "host-port-conflict",
        "host-network-ports", "dns-policy", "dns-none-without-config", "dns-none-without-nameserver",
        "dns-config-valid", "dns-config-invalid", "dns-too-many-searches"])
def test_pod_node_facing_fields(spec: Obj, expected: list[tuple[str, str, str]]) -> None:
    assert causes(R.PODS, {"metadata": {"name": "p"}, "spec": spec}) == expected


def test_host_network_templates_may_leave_host_ports_unset() -> None:
    template = workload()
    template["spec"]["template"]["spec"] = ports_pod({"containerPort": 80}, {"containerPort": 81, "hostPort": 9},
                                                     hostNetwork=True)
    assert causes(R.DEPLOYMENTS, template) == [
        ("spec.template.spec.containers[0].ports[1].hostPort",
         "Invalid value: 9: must match `containerPort` when `hostNetwork` is true", INVALID)]
    pod: Obj = {"metadata": {"name": "p"}, "spec": ports_pod({"containerPort": 80}, hostNetwork=True)}
    R.PODS.default(pod)  # a Pod's defaults fill hostPort in, so it validates
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 80
    assert causes(R.PODS, pod) == []


def test_relaxed_env_names_are_kept_on_updates_of_objects_that_have_them() -> None:
    """1.31 checks new env names strictly; an object stored with a name only the relaxed rule
    allows (from a server that had it on) stays updatable, held to the relaxed rule."""
    stored = {"metadata": {"name": "p"}, "spec": env_pod("MY VAR")}
    assert causes(R.PODS, stored) == [
        ("spec.containers[0].env[0].name", f'Invalid value: "MY VAR": {ENV_MSG}', INVALID)]
    new_image = copy.deepcopy(stored)
    new_image["spec"]["containers"][0]["image"] = "nginx"
    assert causes(R.PODS, new_image, stored) == []
    old, new = workload(), workload()
    old["spec"]["template"]["spec"] = env_pod("MY VAR")
    new["spec"]["template"]["spec"] = env_pod("MY VAR", "A=B", "")
    assert causes(R.DEPLOYMENTS, new, old) == [
        ("spec.template.spec.containers[0].env[1].name", f'Invalid value: "A=B": {RELAXED_ENV_MSG}', INVALID),
        ("spec.template.spec.containers[0].env[2].name", "Required value", REQUIRED)]


@pytest.mark.parametrize("hostname,expected", [
    ("web-0", []),
    (LONG, [f'Invalid value: "{LONG}": must be no more than 63 characters']),
    ("Web.0", [f'Invalid value: "Web.0": {LABEL_MSG}']),
    ("", [f'Invalid value: "": {LABEL_MSG}']),
], ids=["label", "too-long", "not-a-label", "empty"])
def test_endpointslice_hostname_is_a_dns_label(hostname: str, expected: list[str]) -> None:
    slice_ = {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "hostname": hostname}]}
    assert causes(R.ENDPOINTSLICES, slice_) == [("endpoints[0].hostname", m, INVALID) for m in expected]


@pytest.mark.parametrize("check,value", [
    ("dns1123_label_errors", "web\n"), ("dns1123_subdomain_errors", "a.b\n"),
    ("dns1035_label_errors", "svc\n"), ("qualified_name_errors", "key\n"),
    ("label_value_errors", "value\n"), ("port_name_errors", "http\n"), ("env_var_name_errors", "A\n"),
], ids=repr)
def test_formats_refuse_a_trailing_newline(check: str, value: str) -> None:
    """Go's `^...$` spans the whole string; a pattern that let "web\\n" through would put a line
    of the client's choosing into a pod's /etc/hosts."""
    from kubecore.api import formats

    assert getattr(formats, check)(value) != []


def test_names_with_control_characters_are_quoted_as_go_does() -> None:
    found = R.metadata_causes({"metadata": {"name": "web\n"}}, R.PODS)
    assert found[0].message.startswith('Invalid value: "web\\n": a lowercase RFC 1123 subdomain')
