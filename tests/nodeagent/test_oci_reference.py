"""Image references normalized as containerd does (distribution's ParseNormalizedNamed cases)."""
from __future__ import annotations

import pytest

from services.nodeagent.oci import reference
from services.nodeagent.oci.image import InvalidImageNameError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("given", "normalized", "familiar"), [
    ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25"),
    ("library/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1", "nginx:1"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("nicolaka/netshoot:latest", "docker.io/nicolaka/netshoot:latest", "nicolaka/netshoot:latest"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.39", "registry.k8s.io/e2e-test-images/agnhost:2.39",
     "registry.k8s.io/e2e-test-images/agnhost:2.39"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
    ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
    (f"nginx@{DIGEST}", f"docker.io/library/nginx@{DIGEST}", f"nginx@{DIGEST}"),
    (f"nginx:1@{DIGEST}", f"docker.io/library/nginx:1@{DIGEST}", f"nginx:1@{DIGEST}"),
    ("Registry.Example.com/app", "Registry.Example.com/app:latest", "Registry.Example.com/app:latest"),
    ("a.b-c/d__e/f.g:TAG_1.0-x", "a.b-c/d__e/f.g:TAG_1.0-x", "a.b-c/d__e/f.g:TAG_1.0-x"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_normalized(given: str, normalized: str, familiar: str):
    ref = reference.parse(given)
    assert str(ref) == normalized
    assert ref.familiar() == familiar


@pytest.mark.parametrize("bad", [
    "", "Nginx", "nginx:", ":tag", "nginx:ta g", "a//b", "-a/b", "nginx@sha256:short",
    "ab" * 32, "docker.io/UPPER/x", "a" * 256,
], ids=["empty", "uppercase-repo", "empty-tag", "no-name", "space-in-tag", "empty-component", "leading-dash",
        "short-digest", "bare-64-hex", "uppercase-path", "too-long"])
def test_invalid(bad: str):
    with pytest.raises(InvalidImageNameError, match="couldn't parse image name"):
        reference.parse(bad)


def test_invalid_reason_is_kubelets():
    with pytest.raises(InvalidImageNameError) as info:
        reference.parse("Nginx")
    assert info.value.reason == "InvalidImageName"
    assert str(info.value) == ('Failed to apply default image tag "Nginx": couldn\'t parse image name "Nginx": '
                               "repository name must be lowercase")
