"""Encryption at rest without etcd: kube-apiserver's value layouts, reads by prefix, key
rotation, and the EncryptionConfiguration file read as kube reads it."""
from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.apiserver.storage import encryptionconfig as ec
from services.apiserver.storage.codec import ValueCodec
from services.apiserver.storage.transformers import TransformError

KEY = b"/registry/secrets/default/s"
DATA = b'{"kind":"Secret","data":{"a":"c2VjcmV0"}}'
K1, K2 = bytes(range(32)), bytes(range(32, 64))


def config(*providers: dict, resources: tuple[str, ...] = ("secrets",)) -> dict:
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resources), "providers": list(providers)}]}


def aes(kind: str, *keys: tuple[str, bytes]) -> dict:
    return {kind: {"keys": [{"name": n, "secret": base64.b64encode(k).decode()} for n, k in keys]}}


def secrets_transformer(*providers: dict):
    return ec.for_resource(ec.parse(config(*providers)), "secrets")


def test_aesgcm_is_kube_s_layout_with_the_etcd_key_as_additional_data():
    sealed = secrets_transformer(aes("aesgcm", ("k1", K1))).to_storage(DATA, KEY)
    prefix = b"k8s:enc:aesgcm:v1:k1:"
    assert sealed.startswith(prefix) and DATA not in sealed
    nonce, box = sealed[len(prefix):len(prefix) + 12], sealed[len(prefix) + 12:]
    assert len(box) == len(DATA) + 16  # the GCM tag
    assert AESGCM(K1).decrypt(nonce, box, KEY) == DATA


def test_aescbc_is_kube_s_layout_iv_then_pkcs7_padded_blocks():
    sealed = secrets_transformer(aes("aescbc", ("k1", K1))).to_storage(DATA, KEY)
    body = sealed[len(b"k8s:enc:aescbc:v1:k1:"):]
    dec = Cipher(algorithms.AES(K1), modes.CBC(body[:16])).decryptor()
    plain = dec.update(body[16:]) + dec.finalize()
    assert plain[:-plain[-1]] == DATA and len(body[16:]) % 16 == 0


def test_a_value_written_by_kube_s_layout_reads_back():
    nonce = os.urandom(12)
    kube_written = b"k8s:enc:aesgcm:v1:k1:" + nonce + AESGCM(K1).encrypt(nonce, DATA, KEY)
    assert secrets_transformer(aes("aesgcm", ("k1", K1))).from_storage(kube_written, KEY) == (DATA, False)


@pytest.mark.parametrize("providers", [
    [aes("aesgcm", ("k1", K1))], [aes("aescbc", ("k1", K1))],
    [aes("aesgcm", ("k1", K1)), {"identity": {}}], [{"identity": {}}],
], ids=["aesgcm", "aescbc", "aesgcm-then-identity", "identity"])
def test_what_is_written_reads_back(providers):
    t = secrets_transformer(*providers)
    assert t.from_storage(t.to_storage(DATA, KEY), KEY) == (DATA, False)


def test_a_sealed_value_moved_to_another_key_does_not_open():
    t = secrets_transformer(aes("aesgcm", ("k1", K1)))
    with pytest.raises(TransformError, match="message authentication failed"):
        t.from_storage(t.to_storage(DATA, KEY), b"/registry/secrets/default/other")


@pytest.mark.parametrize("old, new, stale", [
    ([aes("aesgcm", ("k1", K1))], [aes("aesgcm", ("k2", K2), ("k1", K1))], True),
    ([aes("aesgcm", ("k1", K1))], [aes("aescbc", ("k2", K2)), aes("aesgcm", ("k1", K1))], True),
    ([{"identity": {}}], [aes("aesgcm", ("k1", K1)), {"identity": {}}], True),
    ([aes("aesgcm", ("k1", K1))], [{"identity": {}}, aes("aesgcm", ("k1", K1))], True),
    ([aes("aesgcm", ("k2", K2))], [aes("aesgcm", ("k2", K2), ("k1", K1))], False),
], ids=["new-key-first", "new-provider-first", "plain-then-encrypted", "decrypting-back-to-plain",
        "current-key"])
def test_rotation_reads_old_values_and_marks_them_stale(old, new, stale):
    written = secrets_transformer(*old).to_storage(DATA, KEY)
    assert secrets_transformer(*new).from_storage(written, KEY) == (DATA, stale)


@pytest.mark.parametrize("providers, message", [
    ([aes("aesgcm", ("k2", K2))], "no matching key was found for the provided AES transformer"),
    ([aes("aesgcm", ("k2", K2)), {"identity": {}}],
     "no matching key was found for the provided AES transformer"),
    ([{"identity": {}}], "no matching prefix found"),  # identity's own refusal is not reported
    ([aes("aescbc", ("k1", K1))], "no matching prefix found"),
    ([aes("aesgcm", ("k1", K2))], "cipher: message authentication failed"),
], ids=["unknown-key", "unknown-key-with-identity", "identity-only", "other-provider", "wrong-secret"])
def test_a_value_no_key_opens_is_a_clear_error(providers, message):
    written = secrets_transformer(aes("aesgcm", ("k1", K1))).to_storage(DATA, KEY)
    t = secrets_transformer(*providers)
    codec = ValueCodec(t)
    with pytest.raises(Exception) as err:
        codec.decode(KEY.decode(), written, 7)
    assert err.value.code == 500 and err.value.reason == "InternalError"
    assert err.value.message == (f'Internal error occurred: unable to transform key '
                                 f'"{KEY.decode()}": {message}')


def test_resources_named_nowhere_stay_plain_and_wildcards_match_groups():
    overrides = ec.parse({**config(aes("aesgcm", ("k1", K1)), resources=("secrets", "*.apps"))})
    assert ec.for_resource(overrides, "pods").to_storage(DATA, KEY) == DATA
    assert ec.for_resource(overrides, "deployments.apps").to_storage(DATA, KEY).startswith(b"k8s:enc:")
    everything = ec.parse(config(aes("aesgcm", ("k1", K1)), resources=("*.*",)))
    assert ec.for_resource(everything, "events").to_storage(DATA, KEY).startswith(b"k8s:enc:")


@pytest.mark.parametrize("conf, message", [
    ({"apiVersion": "v1", "kind": "EncryptionConfiguration"}, "expected apiVersion"),
    (config(), "resources[0].providers: Required value"),
    (config(aes("aesgcm", ("k1", b"short"))),
     'resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: "REDACTED": secret is not of '
     "the expected length, got 5, expected one of [16 24 32]"),
    (config({"aesgcm": {"keys": [{"name": "k1", "secret": "***"}]}}), "secrets must be base64 encoded"),
    (config(aes("aesgcm", ("k1", K1), ("k1", K2))), 'keys[1].name: Duplicate value: "k1"'),
    (config({"aesgcm": {"keys": []}}), "aesgcm provider has no keys"),
    (config({"secretbox": {"keys": []}}), "this server implements aesgcm, aescbc and identity only"),
    (config({"rot13": {}}), 'Unsupported value: "rot13"'),
], ids=["wrong-kind", "no-providers", "short-key", "not-base64", "duplicate-key-name", "no-keys",
        "secretbox", "unknown-provider"])
def test_a_bad_configuration_is_refused_with_where_and_why(conf, message):
    with pytest.raises(ec.EncryptionConfigError) as err:
        ec.parse(conf)
    assert message in str(err.value)


def test_a_missing_or_empty_file_is_refused(tmp_path):
    with pytest.raises(ec.EncryptionConfigError, match="error opening encryption provider"):
        ec.load(tmp_path / "none.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ec.EncryptionConfigError, match="is empty"):
        ec.load(tmp_path / "empty.yaml")


def test_the_server_refuses_to_start_on_a_bad_configuration(tmp_path, caplog):
    from services.apiserver.__main__ import main

    (tmp_path / "enc.yaml").write_text("apiVersion: apiserver.config.k8s.io/v1\n"
                                       "kind: EncryptionConfiguration\nresources: []\n")
    for name in ("tls.crt", "tls.key"):  # checked to exist before anything is started
        (tmp_path / name).write_text("")
    assert main(["--port", "1", "--tls-cert-file", str(tmp_path / "tls.crt"),
                 "--tls-private-key-file", str(tmp_path / "tls.key"),
                 "--encryption-provider-config", str(tmp_path / "enc.yaml")]) == 1
    assert "resources must contain at least one resource" in caplog.text
