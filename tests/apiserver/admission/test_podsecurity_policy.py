"""The Pod Security Standards' checks as tables: a pod (spec and metadata) in, the message
kube-apiserver's PodSecurity plugin gives for it out, per level and policy version."""
from __future__ import annotations

import pytest

from services.apiserver.admission.podsecurity_policy import (
    LATEST,
    LevelVersion,
    Version,
    evaluate,
    forbidden_detail,
    parse_version,
)

BASELINE, RESTRICTED = LevelVersion("baseline"), LevelVersion("restricted")

# a pod that passes restricted: the starting point the restricted cases break one thing of
SAFE_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
           "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def c(name: str = "app", **sc: object) -> dict:
    return {"name": name, "image": "busybox", **({"securityContext": sc} if sc else {})}


def safe(name: str = "app", **override: object) -> dict:
    return {"name": name, "image": "busybox", "securityContext": {**SAFE_SC, **override}}


def detail(lv: LevelVersion, spec: dict, annotations: dict | None = None) -> str:
    return forbidden_detail(evaluate(lv, {"annotations": annotations or {}}, spec))


@pytest.mark.parametrize("spec, expected", [
    ({"containers": [c()]}, ""),
    ({"hostNetwork": True, "hostPID": True, "hostIPC": False, "containers": [c()]},
     "host namespaces (hostNetwork=true, hostPID=true)"),
    ({"hostNetwork": True, "containers": [c()], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
     'host namespaces (hostNetwork=true), hostPath volumes (volume "root")'),
    ({"containers": [c("a", privileged=True), c("b", privileged=False), c("c", privileged=True)]},
     'privileged (containers "a", "c" must not set securityContext.privileged=true)'),
    ({"initContainers": [c("init", privileged=True)], "containers": [c()]},
     'privileged (container "init" must not set securityContext.privileged=true)'),
    ({"containers": [c(capabilities={"add": ["NET_ADMIN", "CHOWN", "SYS_ADMIN"]})]},
     'non-default capabilities (container "app" must not include "NET_ADMIN", "SYS_ADMIN" in '
     "securityContext.capabilities.add)"),
    ({"containers": [c(capabilities={"add": ["NET_BIND_SERVICE", "KILL"]})]}, ""),
    ({"containers": [{**c("a"), "ports": [{"containerPort": 80, "hostPort": 8080}]},
                     {**c("b"), "ports": [{"containerPort": 81, "hostPort": 9}, {"containerPort": 82}]}]},
     'hostPort (containers "a", "b" use hostPorts 8080, 9)'),
    ({"containers": [{**c(), "ports": [{"containerPort": 80, "hostPort": 0}]}]}, ""),
    ({"containers": [c(procMount="Unmasked")]},
     'procMount (container "app" must not set securityContext.procMount to "Unmasked")'),
    ({"containers": [c(procMount="Default")]}, ""),
    ({"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "root"}},
      "containers": [c(seLinuxOptions={"role": "sysadm_r"})]},
     'seLinuxOptions (pod and container "app" set forbidden securityContext.seLinuxOptions: '
     'type "spc_t"; user may not be set; role may not be set)'),
    ({"containers": [c(seLinuxOptions={"type": "container_engine_t", "level": "s0"})]}, ""),
    ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [c()]},
     'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'),
    ({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"},
                                      {"name": "kernel.msgmax", "value": "1"},
                                      {"name": "net.core.somaxconn", "value": "1"}]},
      "containers": [c()]},
     "forbidden sysctls (kernel.msgmax, net.core.somaxconn)"),
    ({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}, "containers": [c()]},
     'forbidden AppArmor profile (pod must not set AppArmor profile type to "Unconfined")'),
    ({"containers": [c(windowsOptions={"hostProcess": True})]},
     'hostProcess (container "app" must not set securityContext.windowsOptions.hostProcess=true)'),
    ({"containers": [c()], "volumes": [{"name": "nfs", "nfs": {"server": "x", "path": "/"}}]}, ""),
], ids=["nothing", "host-namespaces", "the-documented-example", "privileged", "init-container",
        "capabilities", "default-capabilities", "host-ports", "host-port-zero", "proc-mount",
        "proc-mount-default", "selinux", "selinux-1.31-type", "seccomp-unconfined", "sysctls",
        "apparmor", "host-process", "nfs-is-baseline"])
def test_baseline(spec, expected):
    assert detail(BASELINE, spec) == expected


def test_apparmor_and_seccomp_annotations():
    annotations = {"container.apparmor.security.beta.kubernetes.io/app": "unconfined",
                   "container.apparmor.security.beta.kubernetes.io/side": "runtime/default"}
    assert detail(BASELINE, {"containers": [c()]}, annotations) == (
        'forbidden AppArmor profile (annotation must not set AppArmor profile type to '
        '"container.apparmor.security.beta.kubernetes.io/app="unconfined"")')  # joinQuote escapes nothing
    seccomp = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
    assert detail(BASELINE, {"containers": [c()]}, seccomp) == ""  # annotations only before 1.19
    assert detail(LevelVersion("baseline", Version(18)), {"containers": [c()]}, seccomp) == (
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")')


@pytest.mark.parametrize("spec, expected", [
    ({"containers": [safe()]}, ""),
    ({"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
      "containers": [c(allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"]})]}, ""),
    ({"containers": [c()]},
     'allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), '
     'unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), '
     'runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), '
     'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to '
     '"RuntimeDefault" or "Localhost")'),
    ({"containers": [safe(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "NET_RAW"]})]},
     'unrestricted capabilities (container "app" must not include "NET_RAW" in '
     "securityContext.capabilities.add)"),
    ({"securityContext": {"runAsNonRoot": False, "runAsUser": 0},
      "containers": [safe("a"), safe("b", runAsNonRoot=False)]},
     'runAsNonRoot != true (pod and container "b" must not set securityContext.runAsNonRoot=false), '
     "runAsUser=0 (pod must not set runAsUser=0)"),
    ({"containers": [safe(runAsUser=0)]}, 'runAsUser=0 (container "app" must not set runAsUser=0)'),
    ({"containers": [safe()], "volumes": [{"name": "a", "hostPath": {"path": "/"}},
                                          {"name": "b", "nfs": {"server": "x", "path": "/"}},
                                          {"name": "c", "emptyDir": {}}, {"name": "d", "secret": {}}]},
     'restricted volume types (volumes "a", "b" use restricted volume types "hostPath", "nfs")'),
    ({"containers": [safe(privileged=True, capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]})]},
     'privileged (container "app" must not set securityContext.privileged=true), '
     'unrestricted capabilities (container "app" must not include "SYS_ADMIN" in '
     "securityContext.capabilities.add)"),
    ({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}, "containers": [c()]}, ""),
], ids=["safe", "pod-level-settings", "plain-container", "added-capability", "non-root-false",
        "run-as-root", "volumes", "baseline-checks-too-and-capabilities-replaced", "windows"])
def test_restricted(spec, expected):
    assert detail(RESTRICTED, spec) == expected


@pytest.mark.parametrize("version, expected", [
    (Version(21), 'non-default capabilities (container "app" must not include "SYS_ADMIN" in '
                  "securityContext.capabilities.add)"),
    (Version(22), 'unrestricted capabilities (container "app" must not include "SYS_ADMIN" in '
                  "securityContext.capabilities.add)"),
    (LATEST, 'unrestricted capabilities (container "app" must not include "SYS_ADMIN" in '
             "securityContext.capabilities.add)"),
], ids=["before-1.22-baseline-check", "from-1.22-restricted-check", "latest"])
def test_a_policy_version_runs_the_checks_of_that_release(version, expected):
    spec = {"containers": [safe(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]})]}
    assert detail(LevelVersion("restricted", version), spec) == expected


def test_sysctls_allowed_grow_with_the_version():
    spec = {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_keepalive_time"}]}, "containers": [c()]}
    assert detail(LevelVersion("baseline", Version(28)), spec) == "forbidden sysctls (net.ipv4.tcp_keepalive_time)"
    assert detail(LevelVersion("baseline", Version(29)), spec) == ""


@pytest.mark.parametrize("text, version", [
    ("latest", LATEST), ("v1.0", Version(0)), ("v1.31", Version(31)), ("v1.99", Version(99)),
    ("v1.031", None), ("1.31", None), ("v2.0", None), ("", None),
], ids=["latest", "v1.0", "v1.31", "future", "leading-zero", "no-v", "v2", "empty"])
def test_versions_parse_as_upstream(text, version):
    assert parse_version(text) == version


def test_privileged_checks_nothing():
    assert evaluate(LevelVersion("privileged"), {}, {"hostNetwork": True, "containers": [c(privileged=True)]}) == []
