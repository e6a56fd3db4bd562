"""The API server's encryption at rest for a cluster this project starts: an
EncryptionConfiguration (apiserver.config.k8s.io/v1) that encrypts Secrets with AES-GCM under
a fresh random 32-byte key, and still reads values stored in plain JSON (`identity` last).
The file holds the key, so only its owner may read it (mode 0600, set when it is created,
never after).

`cluster up` writes a fresh one (etcd starts empty there); `python -m cluster.encryption
PATH` writes one only where none exists, for compose, whose etcd volume outlives a restart
and must keep being readable.
"""
from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

import yaml

KEY_BYTES = 32


def config_text(key_name: str, key: bytes) -> str:
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{
            "resources": ["secrets"],
            "providers": [
                {"aesgcm": {"keys": [{"name": key_name, "secret": base64.b64encode(key).decode()}]}},
                {"identity": {}},
            ],
        }],
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_config(path: Path) -> Path:
    """A fresh configuration at `path` (replacing any), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(config_text("key1", secrets.token_bytes(KEY_BYTES)))
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cluster.encryption PATH", file=sys.stderr)
        return 2
    path = Path(args[0])
    if path.exists():
        print(f"{path} exists, kept")
    else:
        write_config(path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
