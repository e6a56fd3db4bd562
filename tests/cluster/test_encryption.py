"""The local cluster's encryption at rest: `cluster up` writes a fresh key file only its owner
reads, the API server is started with it, and compose keeps the key it made once."""
from __future__ import annotations

import stat
from pathlib import Path

import yaml

from cluster.components import control_plane
from cluster.config import ClusterConfig
from cluster.encryption import main, write_config
from services.apiserver.storage import encryptionconfig


def test_a_fresh_aesgcm_key_readable_by_its_owner_only(tmp_path: Path):
    path = write_config(tmp_path / "state" / "encryption-config.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = yaml.safe_load(path.read_text())
    providers = first["resources"][0]["providers"]
    assert first["resources"][0]["resources"] == ["secrets"]
    assert list(providers[0]) == ["aesgcm"] and providers[1] == {"identity": {}}
    sealed = encryptionconfig.for_resource(encryptionconfig.load(path), "secrets").to_storage(b"{}", b"k")
    assert sealed.startswith(b"k8s:enc:aesgcm:v1:key1:")
    write_config(path)
    assert yaml.safe_load(path.read_text()) != first  # up: a new key every time
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_command_keeps_an_existing_key(tmp_path: Path):
    path = tmp_path / "encryption-config.yaml"
    assert main([str(path)]) == 0
    text = path.read_text()
    assert main([str(path)]) == 0 and path.read_text() == text


def test_the_api_server_is_started_with_the_state_dir_s_config(tmp_path: Path):
    cfg = ClusterConfig(state_dir=tmp_path)
    argv = next(c.argv for c in control_plane(cfg) if c.name == "apiserver")
    i = argv.index("--encryption-provider-config")
    assert argv[i + 1] == str(tmp_path / "encryption" / "encryption-config.yaml") == str(cfg.encryption_config)
