"""The cluster's PKI, made at `cluster up` (and by compose): what kubeadm writes under
/etc/kubernetes/pki, with the `cryptography` library.

- `ca.crt`/`ca.key`: the cluster CA. It signs every certificate below, and is the CA the API
  server and the node agents trust for client certificates, and that every client trusts.
- `apiserver.crt`: the API server's serving certificate; its SANs are the names a client may
  dial (`kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
  `kubernetes.default.svc.cluster.local`, `localhost`), the first address of the service range
  (10.96.0.1), loopback, the node bridge address, and what the user adds.
- `apiserver-kubelet-client.crt`: the API server's client certificate towards the node agents
  (CN `kube-apiserver-kubelet-client`, as kubeadm names it).
- `sa.key`/`sa.pub`: the key pair that signs and verifies ServiceAccount tokens.
- client certificates (CN = user, O = groups: how kube-apiserver's x509 authenticator reads
  them) for the admin and each component, and a serving certificate per node agent.

Keys are ECDSA P-256: what kubeadm offers as `encryptionAlgorithm: ECDSA-P256`, and a key is
made in well under a millisecond, so a test session makes its own PKI. Private keys are
written 0600. `Pki.create` keeps an existing CA (and so every certificate it signed stays
valid); leaf certificates are re-issued when asked for.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365
APISERVER_DNS_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local", "localhost")
ADMIN_USER = "kubernetes-admin"
MASTERS_GROUP = "system:masters"
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its key, as files."""

    cert: Path
    key: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
                     + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> datetime.datetime:
    # a little in the past, so a machine whose clock is slightly behind accepts it too
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)


class Pki:
    """The PKI in one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = KeyPair(directory / "ca.crt", directory / "ca.key")
        self.sa_key = directory / "sa.key"
        self.sa_pub = directory / "sa.pub"
        self._ca_cert: x509.Certificate | None = None
        self._ca_key: ec.EllipticCurvePrivateKey | None = None

    # -- the CA --------------------------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, *, cn: str = "kubernetes") -> Pki:
        """The directory's PKI: its CA if there is one, a new CA and ServiceAccount key pair
        otherwise."""
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        pki = cls(directory)
        if not (pki.ca.cert.exists() and pki.ca.key.exists()):
            pki._make_ca(cn)
        if not (pki.sa_key.exists() and pki.sa_pub.exists()):
            key = _new_key()
            _write_key(pki.sa_key, key)
            pki.sa_pub.write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return pki

    def _make_ca(self, cn: str) -> None:
        key = _new_key()
        name = _name(cn)
        start = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                             key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        _write_key(self.ca.key, key)
        _write_cert(self.ca.cert, cert)

    def _signer(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if self._ca_cert is None or self._ca_key is None:
            self._ca_cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())
            key = serialization.load_pem_private_key(self.ca.key.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{self.ca.key}: not an ECDSA key")
            self._ca_key = key
        return self._ca_cert, self._ca_key

    # -- leaves --------------------------------------------------------------------------
    def _issue(self, stem: str, subject: x509.Name, *,
               usage: x509.ObjectIdentifier | tuple[x509.ObjectIdentifier, ...],
               ips: Iterable[str] = (), dns_names: Iterable[str] = ()) -> KeyPair:
        ca_cert, ca_key = self._signer()
        key = _new_key()
        start = _now()
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start)
                   .not_valid_after(start + datetime.timedelta(days=LEAF_DAYS))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                                key_cert_sign=False, crl_sign=False,
                                                content_commitment=False, data_encipherment=False,
                                                key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(list(usage) if isinstance(usage, tuple) else [usage]),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       ca_key.public_key()), critical=False))
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns_names)]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        pair = KeyPair(self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        _write_key(pair.key, key)
        _write_cert(pair.cert, builder.sign(ca_key, hashes.SHA256()))
        return pair

    def client(self, stem: str, user: str, groups: Sequence[str] = ()) -> KeyPair:
        """A client certificate for `user` in `groups` (CN and O)."""
        return self._issue(stem, _name(user, groups), usage=ExtendedKeyUsageOID.CLIENT_AUTH)

    def serving(self, stem: str, cn: str, *, ips: Iterable[str] = (),
                dns_names: Iterable[str] = ()) -> KeyPair:
        """A serving certificate valid for these addresses and names."""
        return self._issue(stem, _name(cn), usage=ExtendedKeyUsageOID.SERVER_AUTH,
                           ips=ips, dns_names=dns_names)

    def apiserver(self, *, ips: Iterable[str], dns_names: Iterable[str] = ()) -> KeyPair:
        return self.serving("apiserver", "kube-apiserver", ips=["127.0.0.1", *ips],
                            dns_names=[*APISERVER_DNS_NAMES, *dns_names])

    def etcd_peer(self, member: str) -> KeyPair:
        """kubeadm's etcd/peer certificate of one member: serving and client, for the Raft
        traffic between members on loopback."""
        return self._issue(f"etcd-peer-{member}", _name(member),
                           usage=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
                           ips=["127.0.0.1", "::1"], dns_names=["localhost", member])

    def admin(self) -> KeyPair:
        return self.client("admin", ADMIN_USER, [MASTERS_GROUP])

    def kubelet_client(self) -> KeyPair:
        return self.client("apiserver-kubelet-client", KUBELET_CLIENT_USER)
