"""The image manager (kubelet's EnsureImageExists) over the in-memory runtime's image service."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest

from kubecore.api.resources import SECRETS
from services.nodeagent.imagemanager import ImageManager, ImageUnavailable, PullBackoff, pull_policy, should_pull
from services.nodeagent.oci.image import ImagePullError
from tests.fakes.runtime import FakeRuntime, fake_image

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {}}
NGINX = "docker.io/library/nginx:latest"


def container(image="nginx", policy=None):
    c = {"name": "web", "image": image}
    if policy is not None:
        c["imagePullPolicy"] = policy
    return c


class Setup:
    def __init__(self, *, present=(), pullable=()) -> None:
        self.runtime = FakeRuntime()
        self.runtime.images = {name: fake_image(name) for name in present}
        for ref in pullable:
            self.runtime.registry[ref] = fake_image(NGINX, size=777)
        self.clock = 0.0
        self.told: list[tuple[str, str, str]] = []
        self.manager = ImageManager(self.runtime, tell=lambda _, ev: self.told.append((ev.type, ev.reason, ev.message)),
                                    backoff=PullBackoff(clock=lambda: self.clock), clock=lambda: self.clock)

    @property
    def pulls(self) -> list[str]:
        return [c[1] for c in self.runtime.calls if c[0] == "pull_image"]


@pytest.mark.parametrize("policy, present, pulls", [
    ("Always", True, True), ("Always", False, True),
    ("IfNotPresent", True, False), ("IfNotPresent", False, True),
    ("Never", True, False), ("Never", False, False),
])
def test_should_pull(policy, present, pulls):
    assert should_pull(policy, present) is pulls


@pytest.mark.parametrize("spec, want", [
    ({}, "IfNotPresent"), ({"imagePullPolicy": "Always"}, "Always"), ({"imagePullPolicy": "Never"}, "Never"),
    ({"imagePullPolicy": "Sometimes"}, "IfNotPresent"),
])
def test_pull_policy(spec, want):
    assert pull_policy(spec) == want


@pytest.mark.parametrize("policy, present, want_pulls, want_events, want_reason", [
    pytest.param("IfNotPresent", True, [], [("Normal", "Pulled", 'Container image "nginx" already present on machine')],
                 None, id="IfNotPresent present: no pull"),
    pytest.param("IfNotPresent", False, ["nginx"], ["Pulling", "Pulled"], None, id="IfNotPresent absent: pulled"),
    pytest.param("Always", True, ["nginx"], ["Pulling", "Pulled"], None, id="Always present: pulled anyway"),
    pytest.param("Never", True, [], ["Pulled"], None, id="Never present: used"),
    pytest.param("Never", False, [], [("Warning", "ErrImageNeverPull",
                                       'Container image "nginx" is not present with pull policy of Never')],
                 "ErrImageNeverPull", id="Never absent: ErrImageNeverPull, no pull"),
])
async def test_policy(policy, present, want_pulls, want_events, want_reason):
    s = Setup(present=[NGINX] if present else [], pullable=["nginx"])
    try:
        image = await s.manager.ensure(POD, container(policy=policy))
        reason = None
        assert NGINX in image.repo_tags
    except ImageUnavailable as exc:
        reason = exc.reason
        assert str(exc) == 'Container image "nginx" is not present with pull policy of Never'
    assert reason == want_reason
    assert s.pulls == want_pulls
    if want_events and isinstance(want_events[0], tuple):
        assert s.told == want_events
    else:
        assert [r for _, r, _ in s.told] == want_events


async def test_an_invalid_name_is_invalid_image_name():
    s = Setup()
    with pytest.raises(ImageUnavailable) as caught:
        await s.manager.ensure(POD, container(image="Not Valid!"))
    assert caught.value.reason == "InvalidImageName"
    assert s.told[0][:2] == ("Warning", "InspectFailed") and "Not Valid!" in s.told[0][2]
    assert s.pulls == []


async def test_the_back_off_doubles_per_pod_and_image_and_ends_with_a_pull():
    s = Setup()
    s.runtime.registry["nginx"] = ImagePullError("connection refused")
    for expected_delay in (10, 20, 40):
        with pytest.raises(ImageUnavailable) as caught:
            await s.manager.ensure(POD, container())
        assert (caught.value.reason, str(caught.value), caught.value.retry_after) == \
            ("ErrImagePull", "connection refused", expected_delay)
        s.clock += expected_delay - 1  # still inside: no pull
        with pytest.raises(ImageUnavailable) as caught:
            await s.manager.ensure(POD, container())
        assert caught.value.reason == "ImagePullBackOff"
        assert str(caught.value) == 'Back-off pulling image "nginx": ErrImagePull: connection refused'
        assert caught.value.retry_after == pytest.approx(1)
        s.clock += 1
    assert len(s.pulls) == 3
    other = {"metadata": {"name": "q", "namespace": "ns", "uid": "u2"}}
    with pytest.raises(ImageUnavailable) as caught:  # another pod's back-off is its own
        await s.manager.ensure(other, container())
    assert caught.value.reason == "ErrImagePull" and len(s.pulls) == 4


def test_pull_backoff_caps_and_starts_over_after_twice_the_cap_idle():
    clock = [0.0]
    b = PullBackoff(initial=10, cap=300, clock=lambda: clock[0])
    assert [b.next("k") for _ in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    clock[0] += 601
    assert b.remaining("k") == 0 and b.next("k") == 10
    b.forget_pods({"other"})
    assert b.remaining("k") == 0


async def test_concurrent_pulls_of_one_image_are_one_pull():
    s = Setup(pullable=["nginx"])
    images = await asyncio.gather(*(s.manager.ensure({"metadata": {"uid": f"u{i}"}}, container()) for i in range(5)))
    assert len(s.pulls) == 1
    assert {i.id for i in images} == {images[0].id}
    assert [r for _, r, _ in s.told].count("Pulled") == 5


def _dockerconfig_secret(name: str, registry: str, user: str, password: str) -> dict:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry: {"auth": auth}}}).encode()
    return {"metadata": {"name": name, "namespace": "ns"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(config).decode()}}


async def test_the_pods_pull_secrets_reach_the_pull_and_a_missing_one_is_told():
    from tests.nodeagent.test_executor import Node, pod

    node = Node()
    node.runtime.images = {}
    node.runtime.registry["registry.example:5000/app:1"] = fake_image("registry.example:5000/app:1")
    node.api.preload(SECRETS, _dockerconfig_secret("regcred", "registry.example:5000", "u", "pw"))
    p = pod()
    p["spec"]["containers"][0]["image"] = "registry.example:5000/app:1"
    p["spec"]["imagePullSecrets"] = [{"name": "regcred"}, {"name": "gone"}]
    await node.sync(p)
    pull = next(c for c in node.runtime.calls if c[0] == "pull_image")
    assert pull[1] == "registry.example:5000/app:1"
    (host, credential), = pull[2]
    assert host == "registry.example:5000" and (credential.username, credential.password) == ("u", "pw")
    assert ("FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets (gone); "
            "attempting to pull the image may not succeed.") in node.events.told
    assert "running" in p["status"]["containerStatuses"][0]["state"]
