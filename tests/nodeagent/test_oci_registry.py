"""Pulling from a real registry (Debian's docker-registry on loopback), images pushed by skopeo:
by tag and by digest, through a mirror or directly, an index narrowed to this platform, a
corrupted layer refused, a missing image and an unreachable registry told as containerd tells them,
and a registry that wants a bearer token from its token service."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from cluster import nodeimages
from cluster import registry as cluster_registry
from cluster.procs import free_port
from services.nodeagent.oci import registry
from services.nodeagent.oci.image import ImagePullError
from services.nodeagent.oci.store import ContentStore

pytestmark = [pytest.mark.root,  # layers keep their owners and device nodes
              pytest.mark.skipif(shutil.which("docker-registry") is None, reason="needs Debian's docker-registry")]


def _serving(directory: Path, extra: str = ""):
    return cluster_registry.serving(directory, f"127.0.0.1:{free_port()}", extra)


_push = cluster_registry.push


@pytest.fixture(scope="module")
def busybox_archive() -> Path:
    return nodeimages.build("busybox").archive


@pytest.fixture(scope="module")
def plain_registry(tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("registry")
    with _serving(directory) as url:
        _push(f"oci-archive:{busybox_archive}:latest", url, "library/busybox:latest")
        yield url, directory / "storage"


def _pull(store: ContentStore, ref: str, **kw):
    return asyncio.run(registry.Puller(store, **kw).pull(ref))


def test_pull_through_a_mirror_by_tag_and_by_digest(tmp_path: Path, plain_registry, busybox_archive: Path):
    url, _ = plain_registry
    image = _pull(ContentStore(tmp_path / "a"), "busybox", mirrors={"docker.io": [url]})
    original = ContentStore(tmp_path / "o").import_archive(busybox_archive)[-1]
    assert image.repo_tags == ("docker.io/library/busybox:latest",)
    assert image.id == original.id and image.diff_ids == original.diff_ids
    digest = image.repo_digests[0].split("@")[1]
    store = ContentStore(tmp_path / "b")
    by_digest = _pull(store, f"docker.io/library/busybox@{digest}", mirrors={"docker.io": [url]})
    assert by_digest.id == image.id and all(p.is_dir() for p in store.layer_dirs(by_digest))


def test_pull_from_a_loopback_registry_directly(tmp_path: Path, plain_registry):
    url, _ = plain_registry
    host = url.removeprefix("http://")
    image = _pull(ContentStore(tmp_path), f"{host}/library/busybox:latest")
    assert image.repo_tags == (f"{host}/library/busybox:latest",)


def test_missing_and_unreachable(tmp_path: Path, plain_registry):
    url, _ = plain_registry
    host = url.removeprefix("http://")
    with pytest.raises(ImagePullError) as missing:
        _pull(ContentStore(tmp_path), f"{host}/nope:1")
    assert str(missing.value) == (f'failed to pull and unpack image "{host}/nope:1": failed to resolve reference '
                                  f'"{host}/nope:1": {host}/nope:1: not found')
    with pytest.raises(ImagePullError, match="failed to do request"):
        _pull(ContentStore(tmp_path), f"127.0.0.1:{free_port()}/x:1")


def test_a_corrupted_layer_is_refused(tmp_path: Path, busybox_archive: Path):
    storage = tmp_path / "reg" / "storage"
    with _serving(tmp_path / "reg") as url:
        _push(f"oci-archive:{busybox_archive}:latest", url, "library/busybox:latest")
        image = ContentStore(tmp_path / "o").import_archive(busybox_archive)[-1]
        manifest = json.loads((tmp_path / "o/blobs/sha256" / image.repo_digests[0].split(":")[-1]).read_bytes())
        layer = manifest["layers"][0]["digest"].split(":")[1]
        data = storage / "docker/registry/v2/blobs/sha256" / layer[:2] / layer / "data"
        blob = bytearray(data.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        data.write_bytes(bytes(blob))
        store = ContentStore(tmp_path / "s")
        with pytest.raises(ImagePullError, match="blob content has digest"):
            _pull(store, "busybox", mirrors={"docker.io": [url]})
        assert not store.has_blob(manifest["layers"][0]["digest"]) and store.images() == []


def test_an_index_is_narrowed_to_this_platform(tmp_path: Path, busybox_archive: Path):
    """A two-platform index (amd64 and arm64 manifests) pushed with `skopeo copy --all`."""
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(busybox_archive) as tar:
        tar.extractall(layout, filter="data")
    index = json.loads((layout / "index.json").read_text())
    amd64 = index["manifests"][0]
    manifest = json.loads((layout / "blobs/sha256" / amd64["digest"][7:]).read_bytes())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes())
    config["architecture"] = "arm64"

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs/sha256" / digest).write_bytes(data)
        return f"sha256:{digest}"
    config_bytes = json.dumps(config).encode()
    manifest["config"] = {**manifest["config"], "digest": put(config_bytes), "size": len(config_bytes)}
    arm_bytes = json.dumps(manifest).encode()
    arm = {"mediaType": amd64["mediaType"], "digest": put(arm_bytes), "size": len(arm_bytes),
           "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
    listed = [arm, {k: v for k, v in amd64.items() if k != "annotations"} | {"platform": {"os": "linux",
                                                                                      "architecture": "amd64"}}]
    inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": listed}).encode()
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(inner), "size": len(inner),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    with _serving(tmp_path / "reg") as url:
        _push(f"oci:{layout}:multi", url, "library/multi:1", "--all")
        image = _pull(ContentStore(tmp_path / "s"), "multi:1", mirrors={"docker.io": [url]})
        assert image.architecture == "amd64"
        assert image.repo_digests[0].endswith(hashlib.sha256(inner).hexdigest())  # named by the index


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token_service(key: rsa.RSAPrivateKey, cert: x509.Certificate, users: dict[str, str]) -> web.Application:
    """A registry token service: a JWT (RS256, its certificate in x5c) for `user:password`."""
    async def token(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        basic = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth else ""
        user, _, password = basic.partition(":")
        if users.get(user) != password:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        repo = request.query["scope"].split(":")[1]
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT",
                  "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": "test-issuer", "sub": user, "aud": request.query["service"], "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                  "access": [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return web.json_response({"token": f"{signing}.{_b64(signature)}", "expires_in": 300})
    app = web.Application()
    app.router.add_get("/token", token)
    return app


def test_a_registry_with_token_auth_and_pull_secret_credentials(tmp_path: Path, busybox_archive: Path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-signer")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "bundle.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    token_port = free_port()

    async def scenario() -> None:
        runner = web.AppRunner(_token_service(key, cert, {"alice": "s3cret"}))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", token_port).start()
        auth = (f"auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: test-registry\n"
                f"    issuer: test-issuer\n    rootcertbundle: {tmp_path / 'bundle.pem'}\n")
        try:
            with _serving(tmp_path / "reg", auth) as url:
                host = url.removeprefix("http://")
                await asyncio.to_thread(_push, f"oci-archive:{busybox_archive}:latest", url, "team/app:1",
                                        "--dest-creds", "alice:s3cret")
                store = ContentStore(tmp_path / "s")
                with pytest.raises(ImagePullError, match="failed to fetch anonymous token"):
                    await registry.Puller(store).pull(f"{host}/team/app:1")
                secret = {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": base64.b64encode(
                    json.dumps({"auths": {host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}}).encode()
                ).decode()}}
                keyring = registry.keyring_from_secrets([secret])
                image = await registry.Puller(store).pull(f"{host}/team/app:1", keyring=keyring)
                assert image.repo_tags == (f"{host}/team/app:1",)
        finally:
            await runner.cleanup()
    asyncio.run(scenario())
