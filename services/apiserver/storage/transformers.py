"""Values as they go into etcd and come back (k8s.io/apiserver's storage/value): a
transformer seals the bytes of an object on write and opens them on read, with the etcd key
as authenticated data where the cipher takes it, so a sealed value copied under another key
does not open.

The layouts are kube-apiserver's, byte for byte, so that etcd written by either server reads
in the other with the same keys:

    identity   the JSON itself; refuses to read anything starting with `k8s:enc:`
    aesgcm     k8s:enc:aesgcm:v1:<key name>:  + 12-byte random nonce + AES-GCM(JSON, key)
    aescbc     k8s:enc:aescbc:v1:<key name>:  + 16-byte random IV + AES-CBC(JSON + PKCS#7)

A `PrefixTransformers` writes with its first transformer and reads with whichever one's
prefix the value starts with, so keys and providers can be rotated (new one first, old ones
after). A value read with any but the first is *stale*: an update rewrites it even when
nothing changed, which is how existing objects are re-encrypted under the new key.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _AESGCM

ENCRYPTED_PREFIX = b"k8s:enc:"
GCM_NONCE = 12
BLOCK = 16


class TransformError(Exception):
    """A stored value that no configured transformer opens."""


class Transformer(Protocol):
    def to_storage(self, data: bytes, key: bytes) -> bytes: ...

    def from_storage(self, data: bytes, key: bytes) -> tuple[bytes, bool]:
        """-> (plaintext, stale); TransformError when the value does not open."""
        ...


class Identity:
    """No encryption: what a server without encryption config writes (and kube's identity
    provider, which refuses encrypted values rather than hand out ciphertext as JSON)."""

    def to_storage(self, data: bytes, key: bytes) -> bytes:
        return data

    def from_storage(self, data: bytes, key: bytes) -> tuple[bytes, bool]:
        if data.startswith(ENCRYPTED_PREFIX):
            raise TransformError("identity transformer tried to read encrypted data")
        return data, False


class AESGCM:
    """kube's aes.NewGCMTransformer: nonce || Seal(data, additional data = the etcd key)."""

    def __init__(self, secret: bytes) -> None:
        self._aead = _AESGCM(secret)

    def to_storage(self, data: bytes, key: bytes) -> bytes:
        nonce = os.urandom(GCM_NONCE)
        return nonce + self._aead.encrypt(nonce, data, key)

    def from_storage(self, data: bytes, key: bytes) -> tuple[bytes, bool]:
        if len(data) < GCM_NONCE:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(data[:GCM_NONCE], data[GCM_NONCE:], key), False
        except InvalidTag:
            raise TransformError("cipher: message authentication failed") from None


class AESCBC:
    """kube's aes.NewCBCTransformer: IV || CBC(data + PKCS#7 padding); CBC takes no
    additional data, so the key is not bound (kube's layout, kept for compatibility)."""

    def __init__(self, secret: bytes) -> None:
        self._cipher = algorithms.AES(secret)

    def to_storage(self, data: bytes, key: bytes) -> bytes:
        iv = os.urandom(BLOCK)
        pad = BLOCK - len(data) % BLOCK
        enc = Cipher(self._cipher, modes.CBC(iv)).encryptor()
        return iv + enc.update(data + bytes([pad]) * pad) + enc.finalize()

    def from_storage(self, data: bytes, key: bytes) -> tuple[bytes, bool]:
        if len(data) < BLOCK:
            raise TransformError("the stored data was shorter than the required size")
        iv, body = data[:BLOCK], data[BLOCK:]
        if len(body) % BLOCK:
            raise TransformError("the stored data is not a multiple of the block size")
        dec = Cipher(self._cipher, modes.CBC(iv)).decryptor()
        plain = dec.update(body) + dec.finalize()
        pad = plain[-1] if plain else 0
        if pad == 0 or pad > len(plain):
            raise TransformError("invalid PKCS7 data (empty or not padded)")
        if plain[-pad:] != bytes([pad]) * pad:
            raise TransformError("invalid padding on input")
        return plain[:-pad], False


@dataclass(frozen=True)
class Prefixed:
    prefix: bytes
    transformer: Transformer


class PrefixTransformers:
    """kube's value.NewPrefixTransformers: write with the first, read by prefix."""

    def __init__(self, items: Sequence[Prefixed], no_match: str) -> None:
        if not items:
            raise ValueError("at least one transformer is needed")
        self.items = list(items)
        self.no_match = no_match

    def to_storage(self, data: bytes, key: bytes) -> bytes:
        first = self.items[0]
        return first.prefix + first.transformer.to_storage(data, key)

    def from_storage(self, data: bytes, key: bytes) -> tuple[bytes, bool]:
        errors: list[str] = []
        for i, item in enumerate(self.items):
            if not data.startswith(item.prefix):
                continue
            try:
                plain, stale = item.transformer.from_storage(data[len(item.prefix):], key)
            except TransformError as exc:
                if item.prefix:  # an unprefixed (identity) failure leaves the others' errors
                    errors.append(str(exc))
                continue
            return plain, stale or i != 0
        if errors:
            raise TransformError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        raise TransformError(self.no_match)


IDENTITY = Identity()
