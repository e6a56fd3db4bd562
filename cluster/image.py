"""The project's image (`minicluster:dev`) in whatever engine DOCKER_HOST names, built offline
as far as it can be.

`python -m cluster.image` makes sure of the base the Dockerfile names (`debian:bookworm-slim`):
present already, else loaded from the cache, else pulled, else made here: `debootstrap
--variant=minbase bookworm` from the Debian mirror apt uses (about 90 s), imported under that
name and saved to the cache for the next run. Then it builds the image with the host's network
(`--network host`: apt and pip reach their registries that way), trusting the CA certificates
the host added locally (/usr/local/share/ca-certificates, e.g. a proxy that re-signs TLS), and
reusing the layers of the last build (cached as a saved image), so only the project's own files
are copied again when the dependencies did not change.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cluster.dockerengine import DEFAULT_CACHE

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BASE = "debian:bookworm-slim"
IMAGE = "minicluster:dev"
SUITE = "bookworm"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


class ImageError(RuntimeError):
    pass


def _docker(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 1200,
            stdin: bytes | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(["docker", *args], check=False, capture_output=True, timeout=timeout, input=stdin,
                         env={**os.environ, **(env or {})})
    if check and res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise ImageError(f"docker {args[0]}: {err[-1] if err else 'exit ' + str(res.returncode)}")
    return res


def present(name: str, env: dict[str, str] | None = None) -> bool:
    return _docker("image", "inspect", name, env=env, check=False).returncode == 0


def _cache_file(cache: Path, name: str) -> Path:
    return cache / (name.replace(":", "_").replace("/", "_") + ".tar")


def debian_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources"),
                  legacy: Path = Path("/etc/apt/sources.list")) -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line format)."""
    for path in (sources, legacy):
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[1]:
                return next(w for w in words[1:] if not w.startswith("["))
    return "http://deb.debian.org/debian"


def debootstrap_base(env: dict[str, str] | None = None) -> None:
    """Make BASE with debootstrap and import it (root, debootstrap installed)."""
    if shutil.which("debootstrap") is None:
        raise ImageError(f"{BASE} cannot be pulled and debootstrap is not installed (Debian: debootstrap)")
    with tempfile.TemporaryDirectory(prefix="mc-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        res = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), debian_mirror()],
                             check=False, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
            raise ImageError("debootstrap failed: " + " | ".join(tail))
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (rootfs / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        tar = subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], capture_output=True,
                             check=True)
        _docker("import", "--change", 'CMD ["bash"]', "-", BASE, env=env, stdin=tar.stdout)


def ensure_base(cache: Path = DEFAULT_CACHE, env: dict[str, str] | None = None,
                say=lambda text: None) -> str:
    """BASE in the engine; how it got there."""
    if present(BASE, env):
        return "present"
    cached = _cache_file(cache, BASE)
    if cached.exists() and _docker("load", "-i", str(cached), env=env, check=False).returncode == 0 \
            and present(BASE, env):
        return "loaded from the cache"
    if _docker("pull", "-q", BASE, env=env, check=False, timeout=120).returncode == 0:
        return "pulled"
    say(f"{BASE} cannot be pulled: making it with debootstrap (about 90 s)")
    debootstrap_base(env)
    cache.mkdir(parents=True, exist_ok=True)
    _docker("save", "-o", str(cached), BASE, env=env)
    return "made with debootstrap"


def local_ca_certs(directory: Path = LOCAL_CA_DIR) -> str:
    """The PEM text of the CA certificates this host added locally, for the build's pip."""
    if not directory.is_dir():
        return ""
    return "".join(p.read_text() for p in sorted(directory.glob("**/*.crt")))


def build(cache: Path = DEFAULT_CACHE, env: dict[str, str] | None = None, say=lambda text: None) -> float:
    """Build IMAGE from the repository; the seconds it took."""
    cached = _cache_file(cache, IMAGE)
    if not present(IMAGE, env) and cached.exists():
        _docker("load", "-i", str(cached), env=env, check=False)
    start = time.monotonic()
    args = ["build", "-q", "--network", "host", "-t", IMAGE,
            "--build-arg", f"EXTRA_CA_CERTS={local_ca_certs()}"]
    if present(IMAGE, env):
        args += ["--cache-from", IMAGE]
    _docker(*args, str(ROOT), env=env)
    took = time.monotonic() - start
    cache.mkdir(parents=True, exist_ok=True)
    _docker("save", "-o", str(cached), IMAGE, env=env)
    return took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.image",
                                description=f"build {IMAGE} (and its base, offline if need be) in the engine "
                                            "DOCKER_HOST names")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    a = p.parse_args(argv)
    try:
        how = ensure_base(a.cache_dir, say=print)
        print(f"{BASE}: {how}")
        print(f"{IMAGE}: built in {build(a.cache_dir):.0f}s")
    except (ImageError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
