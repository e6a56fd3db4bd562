"""Image references as containerd reads them (distribution's ParseNormalizedNamed + TagNameOnly).

`nginx` -> `docker.io/library/nginx:latest`; `user/app` -> `docker.io/user/app:latest`;
`localhost:5000/a/b@sha256:...` keeps its registry and digest. The first component is a
registry when it has a `.` or a `:` or is `localhost`; `index.docker.io` is docker.io. A name
with a digest gets no default tag; one with both keeps both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from services.nodeagent.oci.image import InvalidImageNameError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?:({_DOMAIN})/)?({_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_ANCHORED_ID = re.compile(r"^[a-f0-9]{64}$")
NAME_TOTAL_LENGTH_MAX = 255


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        """As a user writes it: `nginx:latest`, `user/app:1`, `localhost:5000/x:1`."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path[len(OFFICIAL_REPO_PREFIX):] if self.path.startswith(OFFICIAL_REPO_PREFIX) and \
                self.path.count("/") == 1 else self.path
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, "", digest)


def _invalid(ref: str, why: str = "invalid reference format") -> InvalidImageNameError:
    return InvalidImageNameError(
        f'Failed to apply default image tag "{ref}": couldn\'t parse image name "{ref}": {why}')


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    registry_like = "." in first or ":" in first or first == "localhost" or first.lower() != first
    if not sep or not registry_like:
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(ref: str) -> Reference:
    """The normalized reference, with the default tag when it has neither tag nor digest."""
    text = ref.strip()
    if not text:
        raise _invalid(ref)
    if _ANCHORED_ID.match(text):
        raise _invalid(ref, "cannot specify 64-byte hexadecimal strings")
    name_part, at, digest = text.partition("@")
    last = name_part.rfind("/")
    colon = name_part.rfind(":")
    tag = ""
    if colon > last:
        name_part, tag = name_part[:colon], name_part[colon + 1:]
        if not tag:
            raise _invalid(ref)
    domain, path = _split_domain(name_part)
    if path.lower() != path:
        raise _invalid(ref, "repository name must be lowercase")
    candidate = f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if at else "")
    match = _REFERENCE.match(candidate)
    if match is None or match.group(1) is None:
        raise _invalid(ref)
    if len(f"{domain}/{path}") > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(ref, "repository name must not be more than 255 characters")
    if not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize(ref: str) -> str:
    return str(parse(ref))
