"""Unmodified kubectl making and reading Secrets: `create secret generic/tls/docker-registry`,
`get secret` (its columns) and `get secret -o yaml` (the data as stored, base64)."""
from __future__ import annotations

import base64
import datetime

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.compat.conftest import Kubectl, rows


def self_signed() -> tuple[str, str]:
    """A certificate and its key: kubectl checks that they belong together before it sends."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def decoded(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def test_kubectl_creates_and_reads_secrets(kubectl: Kubectl) -> None:
    kubectl("create", "secret", "generic", "db", "--from-literal=user=admin",
            "--from-literal=password=s3cr3t")
    cert, key = self_signed()
    kubectl.write("tls.crt", cert)
    kubectl.write("tls.key", key)
    kubectl("create", "secret", "tls", "web-tls", "--cert=tls.crt", "--key=tls.key")
    kubectl("create", "secret", "docker-registry", "pull", "--docker-server=registry.example",
            "--docker-username=u", "--docker-password=p")

    table = rows(kubectl("get", "secrets").stdout)
    assert table[0] == ["NAME", "TYPE", "DATA", "AGE"]
    assert [r[:3] for r in table[1:]] == [["db", "Opaque", "2"],
                                          ["pull", "kubernetes.io/dockerconfigjson", "1"],
                                          ["web-tls", "kubernetes.io/tls", "2"]]

    db = yaml.safe_load(kubectl("get", "secret", "db", "-o", "yaml").stdout)
    assert (db["apiVersion"], db["kind"], db["type"]) == ("v1", "Secret", "Opaque")
    assert decoded(db) == {"user": "admin", "password": "s3cr3t"}
    assert decoded(kubectl.json("get", "secret", "web-tls")) == {"tls.crt": cert, "tls.key": key}
    auths = yaml.safe_load(decoded(kubectl.json("get", "secret", "pull"))[".dockerconfigjson"])
    assert auths["auths"]["registry.example"]["username"] == "u"


def test_kubectl_sees_secret_validation_errors(kubectl: Kubectl) -> None:
    kubectl.write("bad.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\n"
                              "type: kubernetes.io/tls\nstringData: {tls.crt: x}\n")
    proc = kubectl("apply", "-f", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert 'Secret "bad" is invalid: data[tls.key]: Required value' in proc.stderr
    kubectl.write("immutable.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: fixed}\n"
                                    "immutable: true\nstringData: {a: one}\n")
    kubectl("apply", "-f", "immutable.yaml")
    kubectl.write("immutable.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: fixed}\n"
                                    "immutable: true\nstringData: {a: two}\n")
    proc = kubectl("apply", "-f", "immutable.yaml", check=False)
    assert "data: Forbidden: field is immutable when `immutable` is set" in proc.stderr
