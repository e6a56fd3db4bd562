"""Pulling an image with the OCI distribution protocol into the node's store, as containerd does.

- Resolve: `GET /v2/<name>/manifests/<tag or digest>` accepting OCI and Docker manifests and
  indexes; an index (or manifest list) is narrowed to this node's platform (linux/amd64); a
  manifest asked for by digest must have that digest.
- Fetch: the config and every layer not in the store yet, `GET /v2/<name>/blobs/<digest>`,
  streamed into the store, which keeps a blob only when its sha256 is its digest.
- Auth: a 401's `WWW-Authenticate` says how. `Bearer realm=..,service=..,scope=..` gets a token
  from the realm (anonymously, or with the pod's imagePullSecrets as basic auth), kept per scope
  until it expires; `Basic` sends the credentials themselves. A blob redirected to another host
  (a CDN) is fetched without them.
- Mirrors: per registry, endpoints tried in order before the registry itself (containerd's
  hosts.toml); an endpoint that cannot be reached is skipped, a "not found" ends the pull only
  after the last one.
- `localhost`, `127.0.0.1` and mirrors given as http:// are spoken to in plain HTTP.

Errors are `image.ImagePullError` with containerd's wording, which kubelet puts in the pod's
events (`failed to pull and unpack image "docker.io/library/x:1": ...`).
"""
from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from services.nodeagent.oci import reference
from services.nodeagent.oci.image import DigestMismatchError, Image, ImageError, ImagePullError, ImageStore
from services.nodeagent.oci.store import INDEX_TYPES, MANIFEST_TYPES, choose_platform, digest_of

ACCEPT = ", ".join([*MANIFEST_TYPES, *INDEX_TYPES])
DOCKER_HUB = "https://registry-1.docker.io"
PLAIN_HTTP_HOSTS = ("localhost", "127.0.0.1", "[::1]")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Credential:
    username: str
    password: str


@dataclass
class _Tokens:
    by_scope: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)


def endpoint_for(domain: str) -> str:
    if domain == reference.DEFAULT_DOMAIN:
        return DOCKER_HUB
    host = domain.split(":")[0] if not domain.startswith("[") else domain.split("]")[0] + "]"
    return f"{'http' if host in PLAIN_HTTP_HOSTS else 'https'}://{domain}"


def parse_mirror(value: str) -> tuple[str, str]:
    """`--registry-mirror docker.io=http://127.0.0.1:5000`: (registry, endpoint)."""
    registry, sep, endpoint = value.partition("=")
    if not sep or not registry or not re.match(r"^https?://[^/]+/?$", endpoint):
        raise ValueError(f"a registry mirror is REGISTRY=http(s)://HOST[:PORT], not {value!r}")
    return registry, endpoint.rstrip("/")


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def keyring_from_secrets(secrets: Sequence[Mapping[str, Any]]) -> dict[str, Credential]:
    """registry host (with an optional path) -> credentials, from kubernetes.io/dockerconfigjson
    and kubernetes.io/dockercfg Secrets (their `data`, base64 as the API has them)."""
    out: dict[str, Credential] = {}
    for secret in secrets:
        data = secret.get("data") or {}
        raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not raw:
            continue
        try:
            doc = json.loads(base64.b64decode(raw))
        except (ValueError, TypeError):
            continue
        auths = doc.get("auths", doc) if isinstance(doc, dict) else {}
        for key, entry in auths.items():
            if not isinstance(entry, dict):
                continue
            user, password = entry.get("username", ""), entry.get("password", "")
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
            host = re.sub(r"^https?://", "", key).rstrip("/")
            if host in ("index.docker.io/v1", "index.docker.io", "registry-1.docker.io"):
                host = reference.DEFAULT_DOMAIN
            out.setdefault(host, Credential(user, password))
    return out


def credential_for(keyring: Mapping[str, Credential], ref: reference.Reference) -> Credential | None:
    """The most specific key matching the image (kubelet's keyring: host, then host/path prefixes)."""
    candidates = [k for k in keyring if ref.name == k or ref.name.startswith(k.rstrip("/") + "/") or k == ref.domain]
    return keyring[max(candidates, key=len)] if candidates else None


class _NotFound(Exception):
    pass


class _Unreachable(Exception):
    pass


class Puller:
    def __init__(self, store: ImageStore, *, mirrors: Mapping[str, Sequence[str]] | None = None,
                 timeout: float = 300.0) -> None:
        self.store = store
        self.mirrors = dict(mirrors or {})
        self.timeout = timeout
        self._tokens = _Tokens()

    async def pull(self, ref: str, *, keyring: Mapping[str, Credential] | None = None) -> Image:
        parsed = reference.parse(ref)
        name = str(parsed)
        credential = credential_for(keyring or {}, parsed)
        endpoints = [*self.mirrors.get(parsed.domain, ()), endpoint_for(parsed.domain)]
        last: str = ""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            for endpoint in endpoints:
                try:
                    return await self._pull_from(session, endpoint, parsed, credential)
                except _Unreachable as exc:
                    last = str(exc)
                except _NotFound:
                    last = f"{name}: not found"
                except DigestMismatchError as exc:
                    raise ImagePullError(f'failed to pull and unpack image "{name}": {exc}') from exc
        raise ImagePullError(f'failed to pull and unpack image "{name}": failed to resolve reference "{name}": '
                             f"{last}")

    async def _pull_from(self, session: aiohttp.ClientSession, endpoint: str, ref: reference.Reference,
                         credential: Credential | None) -> Image:
        tag_or_digest = ref.digest or ref.tag
        body, media = await self._get_manifest(session, endpoint, ref, tag_or_digest, credential)
        digest = digest_of(body)
        if ref.digest and digest != ref.digest:
            raise DigestMismatchError(f"manifest has digest {digest}, asked for {ref.digest}")
        index_digest = None
        self._put(body, digest)
        if media in INDEX_TYPES:
            index_digest = digest
            chosen = choose_platform(json.loads(body).get("manifests") or ())
            body, media = await self._get_manifest(session, endpoint, ref, chosen["digest"], credential)
            digest = digest_of(body)
            if digest != chosen["digest"]:
                raise DigestMismatchError(f"manifest has digest {digest}, the index says {chosen['digest']}")
            self._put(body, digest)
        manifest = json.loads(body)
        for blob in [manifest["config"], *(manifest.get("layers") or ())]:
            if not self.store.has_blob(blob["digest"]):
                await self._fetch_blob(session, endpoint, ref, blob["digest"], credential)
        try:
            return self.store.commit(str(ref), digest,
                                     index_digest=index_digest)
        except ImageError as exc:
            raise ImagePullError(f'failed to pull and unpack image "{ref}": {exc}') from exc

    def _put(self, body: bytes, digest: str) -> None:
        if not self.store.has_blob(digest):
            writer = self.store.writer(digest)
            writer.write(body)
            writer.commit()

    async def _get_manifest(self, session: aiohttp.ClientSession, endpoint: str, ref: reference.Reference,
                            tag_or_digest: str, credential: Credential | None) -> tuple[bytes, str]:
        url = f"{endpoint}/v2/{ref.path}/manifests/{tag_or_digest}"
        async with await self._request(session, url, ref, credential, {"Accept": ACCEPT}) as resp:
            if resp.status == 404:
                raise _NotFound()
            await self._check(resp, ref)
            body = await resp.read()
            media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if media not in (*MANIFEST_TYPES, *INDEX_TYPES):
            media = json.loads(body).get("mediaType", "")
        return body, media

    async def _fetch_blob(self, session: aiohttp.ClientSession, endpoint: str, ref: reference.Reference,
                          digest: str, credential: Credential | None) -> None:
        url = f"{endpoint}/v2/{ref.path}/blobs/{digest}"
        resp = await self._request(session, url, ref, credential, {}, allow_redirects=False)
        if resp.status in (301, 302, 303, 307, 308):
            location = resp.headers.get("Location", "")
            resp.release()
            same_host = urlsplit(location).netloc in ("", urlsplit(endpoint).netloc)
            headers = {} if not same_host else self._auth_header(ref, endpoint, credential)
            resp = await session.get(location if urlsplit(location).netloc else endpoint + location, headers=headers)
        async with resp:
            if resp.status == 404:
                raise _NotFound()
            await self._check(resp, ref)
            writer = self.store.writer(digest)
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    writer.write(chunk)
                writer.commit()
            except BaseException:
                writer.abort()
                raise

    async def _check(self, resp: aiohttp.ClientResponse, ref: reference.Reference) -> None:
        if resp.status in (401, 403):
            raise ImagePullError(f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
                                 f"pull access denied, repository does not exist or may require authorization: "
                                 f"server message: insufficient_scope: authorization failed")
        if resp.status >= 400:
            text = (await resp.text())[:200]
            raise ImagePullError(f'failed to pull and unpack image "{ref}": unexpected status {resp.status} '
                                 f"from {resp.url}: {text}")

    def _auth_header(self, ref: reference.Reference, endpoint: str, credential: Credential | None) -> dict[str, str]:
        token = self._tokens.by_scope.get((endpoint, ref.path))
        if token is not None and token[1] > time.monotonic():
            return {"Authorization": f"Bearer {token[0]}"}
        if credential is not None:
            return {"Authorization": "Basic " + base64.b64encode(
                f"{credential.username}:{credential.password}".encode()).decode()}
        return {}

    async def _request(self, session: aiohttp.ClientSession, url: str, ref: reference.Reference,
                       credential: Credential | None, headers: Mapping[str, str], *,
                       allow_redirects: bool = True) -> aiohttp.ClientResponse:
        endpoint = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        try:
            resp = await session.get(url, headers={**headers, **self._auth_header(ref, endpoint, credential)},
                                     allow_redirects=allow_redirects)
            if resp.status != 401:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.release()
            scheme, params = parse_challenge(challenge)
            if scheme == "bearer":
                await self._fetch_token(session, endpoint, ref, params, credential)
            elif scheme != "basic" or credential is None:
                raise ImagePullError(f'failed to pull and unpack image "{ref}": failed to resolve reference '
                                     f'"{ref}": pull access denied, repository does not exist or may require '
                                     f"authorization: authorization failed: no basic auth credentials")
            return await session.get(url, headers={**headers, **self._auth_header(ref, endpoint, credential)},
                                     allow_redirects=allow_redirects)
        except aiohttp.ClientConnectorError as exc:
            raise _Unreachable(f"failed to do request: Head \"{url}\": {exc.os_error}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Unreachable(f"failed to do request: {url}: {exc}") from exc

    async def _fetch_token(self, session: aiohttp.ClientSession, endpoint: str, ref: reference.Reference,
                           params: Mapping[str, str], credential: Credential | None) -> None:
        query = {"service": params.get("service", ""), "scope": params.get("scope") or f"repository:{ref.path}:pull"}
        headers = {}
        if credential is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{credential.username}:{credential.password}".encode()).decode()
        async with session.get(f"{params['realm']}?{urlencode(query)}", headers=headers) as resp:
            if resp.status != 200:
                raise ImagePullError(f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
                                     f"failed to fetch anonymous token: unexpected status {resp.status}")
            doc = await resp.json(content_type=None)
        token = doc.get("token") or doc.get("access_token") or ""
        expires = float(doc.get("expires_in") or 60)
        self._tokens.by_scope[(endpoint, ref.path)] = (token, time.monotonic() + max(expires - 5, 1))
