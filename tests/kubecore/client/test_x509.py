"""kubecore.client.x509.subject_of reads a certificate as kube's x509 authenticator does."""
from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from cluster.pki import Pki
from kubecore.client.x509 import subject_of


@pytest.mark.parametrize(("user", "groups"), [
    ("system:node:node-1", ["system:nodes"]),
    ("jane", []),
    ("kubernetes-admin", ["system:masters", "team-a"]),
], ids=["node", "no-groups", "two-groups"])
def test_subject_of_a_real_certificate(tmp_path: Path, user: str, groups: list[str]) -> None:
    pair = Pki.create(tmp_path).client("c", user, groups)
    decoded = ssl._ssl._test_decode_cert(str(pair.cert))  # type: ignore[attr-defined]
    assert subject_of(decoded) == (user, groups)


def test_first_common_name_wins_and_empty_subject() -> None:
    cert = {"subject": ((("commonName", "a"),), (("organizationName", "o"),), (("commonName", "b"),))}
    assert subject_of(cert) == ("a", ["o"])
    assert subject_of({}) == ("", [])
