"""Pod Security Admission (kube-apiserver's PodSecurity plugin, k8s.io/pod-security-admission
admission/): every pod written is checked against the Pod Security Standards its namespace
asks for in its labels,

    pod-security.kubernetes.io/enforce: baseline     # refuse pods that violate it (403)
    pod-security.kubernetes.io/warn: restricted      # answer a Warning header
    pod-security.kubernetes.io/audit: restricted     # (recorded by kube's audit log; kept here
                                                     #  only as a valid label)
    pod-security.kubernetes.io/<mode>-version: v1.30 # the standard as of that release (latest)

and where a namespace has no label, against the server's defaults: `--pod-security-default-enforce`
(baseline unless told otherwise) both enforced and warned about (the warning is what a
Deployment gets), audit privileged, as a hardened AdmissionConfiguration (k3s's) sets them. So
a namespace quiet for privileged pods says so for both: `enforce: privileged`, `warn:
privileged`. Namespaces named in `--pod-security-exempt-namespaces` (kube-system by default,
as k3s and kind configure it) are not checked.

As upstream: Deployments and ReplicaSets are never refused, only warned about (their pods are
checked when their controller makes them); a pod update is checked only when it changes an
image; labels with invalid values refuse a namespace create or a label change (422), and a
pod in a namespace whose labels are invalid is checked at `restricted:latest`; tightening a
namespace's enforce level warns about the pods already there.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kubecore.api import resources as R
from kubecore.api.errors import ApiError, Cause, invalid
from kubecore.api.types import Obj
from services.apiserver.admission import podsecurity_policy as P
from services.apiserver.registry.interfaces import AdmissionRequest

LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
# pod subresources whose writes cannot change what the standards look at
IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log",
                                      "portforward", "proxy", "status"})
WORKLOADS = (R.DEPLOYMENTS, R.REPLICASETS, R.STATEFULSETS)
MAX_PODS_TO_CHECK = 3000


class NamespaceReader(Protocol):
    """Where the plugin reads namespaces and the pods in them: the server's storage, not the
    watch cache, so a pod written right after its namespace's labels changed meets the new
    labels (one etcd read per pod write)."""

    async def get(self, rt: R.ResourceType, namespace: str | None, name: str) -> Obj: ...

    async def list(self, rt: R.ResourceType, namespace: str | None) -> tuple[list[Obj], int]: ...


@dataclass(frozen=True)
class Policy:
    enforce: P.LevelVersion
    audit: P.LevelVersion
    warn: P.LevelVersion

    def fully_privileged(self) -> bool:
        return all(lv.level == "privileged" for lv in (self.enforce, self.audit, self.warn))


def _compare(a: P.Level, b: P.Level) -> int:
    return P.LEVELS.index(a) - P.LEVELS.index(b)


def _label_error(mode: str, value: str, what: str) -> Cause:
    return Cause(f"metadata.labels[{LABEL_PREFIX}{mode}]", f'Invalid value: "{value}": {what}')


def policy_for(labels: Mapping[str, str], defaults: Policy) -> tuple[Policy, list[Cause]]:
    """The namespace's policy from its labels over the defaults (upstream's PolicyToEvaluate):
    an invalid enforce level is `restricted`, an invalid audit or warn level `privileged`, an
    invalid version `latest`; a warn level left unset follows a stricter explicit enforce."""
    modes = {"enforce": defaults.enforce, "audit": defaults.audit, "warn": defaults.warn}
    errors: list[Cause] = []
    explicit_enforce = False
    for mode in MODES:
        lv = modes[mode]
        if (text := labels.get(LABEL_PREFIX + mode)) is not None:
            level = P.parse_level(text)
            if level is None:
                errors.append(_label_error(mode, text, "must be one of privileged, baseline, restricted"))
                level = "restricted" if mode == "enforce" else "privileged"
            explicit_enforce |= mode == "enforce" and P.parse_level(text) is not None
            lv = replace(lv, level=level)
        if (text := labels.get(f"{LABEL_PREFIX}{mode}-version")) is not None:
            version = P.parse_version(text)
            if version is None:
                errors.append(Cause(f"metadata.labels[{LABEL_PREFIX}{mode}-version]",
                                    f'Invalid value: "{text}": must be "latest" or "v1.x"'))
            lv = replace(lv, version=version or P.LATEST)
        modes[mode] = lv
    warn = modes["warn"]
    if LABEL_PREFIX + "warn" not in labels and explicit_enforce and \
            _compare(modes["enforce"].level, warn.level) > 0:
        warn = P.LevelVersion(modes["enforce"].level,
                              warn.version if LABEL_PREFIX + "warn-version" in labels
                              else modes["enforce"].version)
    return Policy(modes["enforce"], modes["audit"], warn), errors


def forbidden(rt: R.ResourceType, name: str, message: str) -> ApiError:
    """kube's NewForbidden: `pods "x" is forbidden: <message>`."""
    qualified = rt.group_resource
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return ApiError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {message}', details)


def _meta_and_spec(rt: R.ResourceType, obj: Obj) -> tuple[Obj, Obj] | None:
    if rt is R.PODS:
        return obj.get("metadata") or {}, obj.get("spec") or {}
    template = (obj.get("spec") or {}).get("template")
    if not isinstance(template, dict):
        return None
    return template.get("metadata") or {}, template.get("spec") or {}


def _images(spec: Obj) -> tuple[list[Any], list[Any], dict[Any, Any]]:
    def names(key: str) -> list[Any]:
        return [c.get("image") for c in spec.get(key) or [] if isinstance(c, dict)]
    ephemeral = {c.get("name"): c.get("image") for c in spec.get("ephemeralContainers") or []
                 if isinstance(c, dict)}
    return names("containers"), names("initContainers"), ephemeral


def significant_pod_update(new: Obj, old: Obj) -> bool:
    """Only an image change (or containers added) can change a stored pod's verdict."""
    containers, inits, ephemeral = _images(new.get("spec") or {})
    old_containers, old_inits, old_ephemeral = _images(old.get("spec") or {})
    return (containers != old_containers or inits != old_inits
            or any(old_ephemeral.get(n, object()) != image for n, image in ephemeral.items()))


class PodSecurity:
    """The admission plugin (validate only: it never changes an object)."""

    def __init__(self, namespaces: NamespaceReader, defaults: Policy,
                 exempt_namespaces: Iterable[str] = (), exempt_users: Iterable[str] = ()) -> None:
        self.namespaces = namespaces
        self.defaults = defaults
        self.exempt_namespaces = frozenset(exempt_namespaces)
        self.exempt_users = frozenset(exempt_users)

    async def mutate(self, req: AdmissionRequest) -> None:
        return None

    async def validate(self, req: AdmissionRequest) -> None:
        if req.operation not in ("CREATE", "UPDATE") or req.obj is None:
            return
        if req.rt is R.NAMESPACES:
            await self._namespace(req, req.obj)
        elif req.rt is R.PODS:
            if req.subresource not in IGNORED_POD_SUBRESOURCES:
                await self._pod(req, req.obj)
        elif req.rt in WORKLOADS and not req.subresource:
            await self._workload(req, req.obj)

    # -- namespaces ------------------------------------------------------------------------
    async def _namespace(self, req: AdmissionRequest, ns: Obj) -> None:
        if req.subresource:
            return
        name = (ns.get("metadata") or {}).get("name") or req.name
        labels = (ns.get("metadata") or {}).get("labels") or {}
        policy, errors = policy_for(labels, self.defaults)
        if req.operation == "CREATE":
            if errors:
                raise invalid("Namespace", name, errors)
            if name in self.exempt_namespaces:
                self._warn_exempt(req, name, policy, labels)
            return
        old_policy, old_errors = policy_for(((req.old or {}).get("metadata") or {}).get("labels") or {},
                                            self.defaults)
        if errors and (not old_errors or errors != old_errors):
            raise invalid("Namespace", name, errors)
        new, old = policy.enforce, old_policy.enforce
        if new == old or new.level == "privileged" or \
                (new.version == old.version and _compare(new.level, old.level) <= 0):
            return
        if name in self.exempt_namespaces:
            self._warn_exempt(req, name, policy, labels)
            return
        req.warnings.extend(await self._existing_pods(name, new))

    def _warn_exempt(self, req: AdmissionRequest, name: str, policy: Policy,
                     labels: Mapping[str, str]) -> None:
        if policy.fully_privileged() or policy == self.defaults:
            return
        shown = [f"{mode}={lv}" for mode, lv in zip(MODES, (policy.enforce, policy.audit, policy.warn),
                                                     strict=True)
                 if lv.level != "privileged" and (LABEL_PREFIX + mode in labels
                                                  or f"{LABEL_PREFIX}{mode}-version" in labels)]
        req.warnings.append(f'namespace "{name}" is exempt from Pod Security, and the policy '
                            f"({', '.join(shown)}) will be ignored")

    async def _existing_pods(self, namespace: str, enforce: P.LevelVersion) -> list[str]:
        """Upstream's EvaluatePodsInNamespace: one warning per distinct set of reasons, named
        after the first pod (by name) that has it."""
        pods, _ = await self.namespaces.list(R.PODS, namespace)
        pods = _prioritized(pods)
        warnings = []
        if len(pods) > MAX_PODS_TO_CHECK:
            warnings.append(f"new PodSecurity enforce level only checked against the first "
                            f"{MAX_PODS_TO_CHECK} of {len(pods)} existing pods")
            pods = pods[:MAX_PODS_TO_CHECK]
        by_reason: dict[str, list[str]] = {}
        for pod in pods:
            found = P.evaluate(enforce, pod.get("metadata") or {}, pod.get("spec") or {})
            if found:
                by_reason.setdefault(P.forbidden_reason(found), []).append(pod["metadata"]["name"])
        if by_reason:
            warnings.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity '
                            f'enforce level "{enforce}"')
        return warnings + sorted(_pod_warning(names, reason) for reason, names in by_reason.items())

    # -- pods and workloads ----------------------------------------------------------------
    async def _policy(self, namespace: str | None) -> tuple[Policy, list[Cause]] | None:
        """The policy of `namespace`; None when it is exempt or missing (the store answers
        404 for a missing one, as NamespaceLifecycle does before this plugin upstream)."""
        if not namespace or namespace in self.exempt_namespaces:
            return None
        try:
            ns = await self.namespaces.get(R.NAMESPACES, None, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
        return policy_for((ns.get("metadata") or {}).get("labels") or {}, self.defaults)

    async def _pod(self, req: AdmissionRequest, pod: Obj) -> None:
        if req.user.name in self.exempt_users:
            return
        if req.operation == "UPDATE" and req.old is not None and not significant_pod_update(pod, req.old):
            return
        found = await self._policy(req.namespace)
        if found is None or (not found[1] and found[0].fully_privileged()):
            return
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        enforce = found[0].enforce
        violations = P.evaluate(enforce, meta, spec)
        if violations:
            raise forbidden(req.rt, req.name, f'violates PodSecurity "{enforce}": '
                                              f"{P.forbidden_detail(violations)}")
        self._warn(req, found[0].warn, meta, spec)

    async def _workload(self, req: AdmissionRequest, obj: Obj) -> None:
        if req.user.name in self.exempt_users:
            return
        found = await self._policy(req.namespace)
        if found is None or (not found[1] and found[0].warn.level == "privileged"
                             and found[0].audit.level == "privileged"):
            return
        template = _meta_and_spec(req.rt, obj)
        if template is not None:
            self._warn(req, found[0].warn, *template)

    def _warn(self, req: AdmissionRequest, warn: P.LevelVersion, meta: Obj, spec: Obj) -> None:
        violations = P.evaluate(warn, meta, spec)
        if violations:
            req.warnings.append(f'would violate PodSecurity "{warn}": {P.forbidden_detail(violations)}')


def _controller_uid(pod: Obj) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return str(ref.get("uid"))
    return None


def _prioritized(pods: Sequence[Obj]) -> list[Obj]:
    """One pod per controller first, then the others of the same controllers (upstream's
    prioritizePods), so a cut at the limit still sees every distinct workload."""
    first: list[Obj] = []
    rest: list[Obj] = []
    seen: set[str] = set()
    for pod in pods:
        uid = _controller_uid(pod)
        if uid is not None and uid in seen:
            rest.append(pod)
        else:
            if uid is not None:
                seen.add(uid)
            first.append(pod)
    return first + rest


def _pod_warning(names: list[str], reason: str) -> str:
    first, others = min(names), len(names) - 1
    if others == 0:
        return f"{first}: {reason}"
    if others == 1:
        return f"{first} (and 1 other pod): {reason}"
    return f"{first} (and {others} other pods): {reason}"


def default_policy(enforce: str, warn: str | None = None) -> Policy:
    """The server's defaults: `enforce` (and `warn`, by default the same level) at latest,
    audit privileged."""
    level = P.parse_level(enforce)
    warn_level = P.parse_level(warn if warn is not None else enforce)
    if level is None or warn_level is None:
        raise ValueError(f"pod security level must be one of privileged, baseline, restricted: "
                         f"{enforce!r}")
    return Policy(P.LevelVersion(level), P.LevelVersion("privileged"), P.LevelVersion(warn_level))
