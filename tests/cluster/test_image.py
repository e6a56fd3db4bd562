"""Where the offline base image comes from (cluster/image.py): the host's Debian mirror and
its locally added CA certificates."""
from __future__ import annotations

from pathlib import Path

from cluster import image


def test_the_mirror_is_read_from_deb822_sources(tmp_path: Path):
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
                       "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    assert image.debian_mirror(sources, tmp_path / "none") == "http://mirror.example/debian"


def test_the_mirror_is_read_from_a_one_line_sources_list(tmp_path: Path):
    legacy = tmp_path / "sources.list"
    legacy.write_text("# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n")
    assert image.debian_mirror(tmp_path / "none", legacy) == "http://other.example/debian"


def test_without_sources_the_mirror_is_debians(tmp_path: Path):
    assert image.debian_mirror(tmp_path / "a", tmp_path / "b") == "http://deb.debian.org/debian"


def test_local_ca_certificates_are_concatenated_in_name_order(tmp_path: Path):
    (tmp_path / "b.crt").write_text("B\n")
    (tmp_path / "a.crt").write_text("A\n")
    (tmp_path / "ignored.pem").write_text("X\n")
    assert image.local_ca_certs(tmp_path) == "A\nB\n"
    assert image.local_ca_certs(tmp_path / "missing") == ""
