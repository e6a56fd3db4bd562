"""kube-apiserver's `--encryption-provider-config`: an EncryptionConfiguration
(apiserver.config.k8s.io/v1) read into one transformer per resource.

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
    - resources: [secrets]            # group-resources; "*.apps" and "*.*" match whole groups
      providers:                      # the first encrypts; every one is tried on read
      - aesgcm: {keys: [{name: key2, secret: <base64 of 16, 24 or 32 bytes>}, ...]}
      - aescbc: {keys: [...]}
      - identity: {}

A resource named nowhere is stored as plain JSON. secretbox and kms are refused at start-up
with a clear error (this server has no XSalsa20 or KMS plugin); anything malformed stops the
server there too, never at the first write.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from services.apiserver.storage.transformers import (
    AESCBC,
    AESGCM,
    IDENTITY,
    Identity,
    Prefixed,
    PrefixTransformers,
    Transformer,
)

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
AES_KEY_SIZES = (16, 24, 32)
_AES: dict[str, tuple[str, Callable[[bytes], Transformer]]] = {
    "aesgcm": ("k8s:enc:aesgcm:v1:", AESGCM),
    "aescbc": ("k8s:enc:aescbc:v1:", AESCBC),
}


class EncryptionConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


def _aes_provider(kind: str, conf: Any, path: str) -> Prefixed:
    prefix, make = _AES[kind]
    keys = conf.get("keys") if isinstance(conf, dict) else None
    if not keys or not isinstance(keys, list):
        raise EncryptionConfigError(f"{path}.keys: Required value: {kind} provider has no keys")
    per_key: list[Prefixed] = []
    names: set[str] = set()
    for i, key in enumerate(keys):
        kpath = f"{path}.keys[{i}]"
        name = key.get("name") if isinstance(key, dict) else None
        if not isinstance(name, str) or not name:
            raise EncryptionConfigError(f"{kpath}.name: Required value: key name is required")
        if ":" in name:
            raise EncryptionConfigError(f'{kpath}.name: Invalid value: "{name}": should not contain ":"')
        if name in names:
            raise EncryptionConfigError(f'{kpath}.name: Duplicate value: "{name}"')
        names.add(name)
        per_key.append(Prefixed(name.encode() + b":", make(_secret(key.get("secret"), f"{kpath}.secret"))))
    return Prefixed(prefix.encode(), PrefixTransformers(
        per_key, "no matching key was found for the provided AES transformer"))


def _secret(value: Any, path: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise EncryptionConfigError(f"{path}: Required value: secret is required")
    try:
        secret = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise EncryptionConfigError(f'{path}: Invalid value: "REDACTED": secrets must be base64 '
                                    "encoded") from None
    if len(secret) not in AES_KEY_SIZES:
        raise EncryptionConfigError(f'{path}: Invalid value: "REDACTED": secret is not of the '
                                    f"expected length, got {len(secret)}, expected one of [16 24 32]")
    return secret


def _provider(provider: Any, path: str) -> Prefixed:
    if not isinstance(provider, dict) or len(provider) != 1:
        raise EncryptionConfigError(f"{path}: Invalid value: exactly one provider must be given "
                                    "(aesgcm, aescbc or identity)")
    (kind, conf), = provider.items()
    if kind in _AES:
        return _aes_provider(kind, conf, f"{path}.{kind}")
    if kind == "identity":
        return Prefixed(b"", Identity())
    if kind in ("secretbox", "kms"):
        raise EncryptionConfigError(f"{path}.{kind}: Unsupported value: this server implements "
                                    "aesgcm, aescbc and identity only")
    raise EncryptionConfigError(f'{path}: Unsupported value: "{kind}": provider does not contain '
                                "any of the expected providers: AESGCM, AESCBC, Identity")


def parse(config: Any) -> dict[str, Transformer]:
    """group-resource (`secrets`, `deployments.apps`, `*.apps`, `*.*`) -> its transformer."""
    if not isinstance(config, dict):
        raise EncryptionConfigError("the configuration is not a YAML or JSON object")
    if config.get("apiVersion") != API_VERSION or config.get("kind") != KIND:
        raise EncryptionConfigError(f"expected apiVersion {API_VERSION} and kind {KIND}, got "
                                    f"{config.get('apiVersion')!r} / {config.get('kind')!r}")
    entries = config.get("resources")
    if not entries or not isinstance(entries, list):
        raise EncryptionConfigError("resources: Required value: resources must contain at least one resource")
    chains: dict[str, list[Prefixed]] = {}
    for i, entry in enumerate(entries):
        path = f"resources[{i}]"
        names = entry.get("resources") if isinstance(entry, dict) else None
        providers = entry.get("providers") if isinstance(entry, dict) else None
        if not names or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise EncryptionConfigError(f"{path}.resources: Required value: resources must contain "
                                        "at least one resource")
        if not providers or not isinstance(providers, list):
            raise EncryptionConfigError(f"{path}.providers: Required value: providers must contain "
                                        "at least one provider")
        built = [_provider(p, f"{path}.providers[{j}]") for j, p in enumerate(providers)]
        for name in names:
            chains.setdefault(name.lower(), []).extend(built)
    return {name: PrefixTransformers(chain, "no matching prefix found")
            for name, chain in chains.items()}


def load(path: str | Path) -> dict[str, Transformer]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise EncryptionConfigError(f"error opening encryption provider configuration file "
                                    f"{str(path)!r}: {exc}") from exc
    if not text.strip():
        raise EncryptionConfigError(f"encryption provider configuration file {str(path)!r} is empty")
    try:
        return parse(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise EncryptionConfigError(f"error while parsing file: {exc}") from exc


def for_resource(overrides: Mapping[str, Transformer], group_resource: str) -> Transformer:
    """The transformer of one resource: its own entry, else its group's (`*.apps`, `*.` for
    the core group), else `*.*`, else plain JSON."""
    group = group_resource.partition(".")[2]
    for name in (group_resource, f"*.{group}", "*.*"):
        if name in overrides:
            return overrides[name]
    return IDENTITY
