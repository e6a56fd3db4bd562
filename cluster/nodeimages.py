"""The images the walkthrough and the tests use, built from what Debian installed on this machine.

These machines reach no image registry, so `cluster up` makes the few images it needs itself,
once, and loads them into every node (kind's `kind load`). Each is an OCI image archive (an OCI
image layout in a tar, its manifests named by the `io.containerd.image.name` annotation):

- busybox (Debian's busybox-static, its applets as links, /etc/passwd and /etc/group as the
  official image has them);
- nginx (Debian's nginx and the libraries it loads, the official image's configuration:
  `Server: nginx`, the welcome page on port 80, logs to the container's stdout and stderr);
- python (Debian's python3.11 and its standard library);
- agnhost (the e2e test image's netexec, serve-hostname and pause: the project's own
  stdlib-only servers on the python image, with curl and dig as the real one has them);
- netshoot (curl and dig, for the walkthrough's client pod).

Images share their base layers (one busybox layer under all of them, one python layer under
python and agnhost), so a node unpacks each once. Builds are reproducible: sorted entries,
owner root, fixed times, gzip without a timestamp; the same machine gives the same digests, and
an archive is rebuilt only when a recipe or an input file changed (the cache key).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CACHE = Path("/var/cache/minicluster/images")
RECIPE_VERSION = "1"
EPOCH = 1700000000  # the fixed mtime of every entry
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOT = Path(__file__).resolve().parent.parent


class BuildError(RuntimeError):
    pass


# --------------------------------------------------------------------------- layer contents


@dataclass(frozen=True)
class Entry:
    """One path of a layer: a host file's content, given bytes, a directory or a link."""

    path: str  # inside the image, no leading slash
    source: Path | None = None
    data: bytes | None = None
    link: str | None = None
    mode: int = 0o644
    directory: bool = False
    uid: int = 0
    gid: int = 0


@dataclass
class Layer:
    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            self.entries.setdefault(parent, Entry(parent, directory=True, mode=0o755))
        self.entries[entry.path] = entry

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self.add(Entry(path, directory=True, mode=mode, uid=uid, gid=gid))

    def file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        self.add(Entry(path, data=data.encode() if isinstance(data, str) else data, mode=mode))

    def host_file(self, host: Path, path: str | None = None) -> None:
        """A host file at the same path (or `path`); a link is kept as a link, its target too."""
        path = path or str(host).lstrip("/")
        if host.is_symlink():
            target = os.readlink(host)
            self.add(Entry(path, link=target))
            resolved = (host.parent / target) if not target.startswith("/") else Path(target)
            self.host_file(Path(os.path.normpath(resolved)))
            return
        self.add(Entry(path, source=host, mode=host.stat().st_mode & 0o7777))

    def symlink(self, path: str, target: str) -> None:
        self.add(Entry(path, link=target))

    def inputs(self) -> Iterable[str]:
        """What the cache key covers: every entry, a host file by its size and mtime."""
        for path in sorted(self.entries):
            e = self.entries[path]
            if e.source is not None:
                st = e.source.stat()
                yield f"{path} {e.source} {st.st_size} {st.st_mtime_ns} {e.mode:o}"
            else:
                yield f"{path} {e.link} {e.directory} {e.mode:o} {e.uid} {e.gid} " + \
                    hashlib.sha256(e.data or b"").hexdigest()


def _tarinfo(e: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(e.path + ("/" if e.directory else ""))
    info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, e.uid, e.gid, "", ""
    info.mode = e.mode
    if e.directory:
        info.type = tarfile.DIRTYPE
    elif e.link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, e.link, 0o777
    return info


def layer_blob(layer: Layer) -> tuple[bytes, str]:
    """(the gzip-compressed tar, its diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(layer.entries):
            e = layer.entries[path]
            info = _tarinfo(e)
            if e.directory or e.link is not None:
                tar.addfile(info)
                continue
            data = e.data if e.data is not None else e.source.read_bytes()  # type: ignore[union-attr]
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, compresslevel=6, mtime=0)
    return compressed, f"sha256:{hashlib.sha256(uncompressed).hexdigest()}"


# --------------------------------------------------------------------------- the recipes


def shared_libraries(binaries: Iterable[Path]) -> list[Path]:
    """The libraries (and the loader) the binaries load, as ldd resolves them on this machine."""
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        for match in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out):
            found.add(Path(match.group(1)))
    return sorted(found)


PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
"""


def busybox_layer() -> Layer:
    layer = Layer()
    busybox = Path("/bin/busybox") if Path("/bin/busybox").exists() else Path("/usr/bin/busybox")
    layer.add(Entry("bin/busybox", source=busybox, mode=0o755))
    listing = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in listing.split():
        if applet != "bin/busybox":
            depth = applet.count("/")
            layer.symlink(applet, "../" * depth + "bin/busybox" if depth else "bin/busybox")
    layer.file("etc/passwd", PASSWD)
    layer.file("etc/group", GROUP)
    layer.file("etc/shadow", "".join(f"{line.split(':')[0]}:*:::::::\n" for line in PASSWD.splitlines()), 0o640)
    for d, mode in (("tmp", 0o1777), ("root", 0o700), ("home", 0o755), ("var", 0o755), ("var/spool/mail", 0o755),
                    ("var/www", 0o755), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755),
                    ("usr/local/bin", 0o755)):
        layer.dir(d, mode)
    return layer


NGINX_CONF = """user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;


events {
    worker_connections  1024;
}


http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
"""
NGINX_DEFAULT_CONF = """server {
    listen       80;
    listen  [::]:80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"""
NGINX_INDEX = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
NGINX_50X = """<!DOCTYPE html>
<html>
<head>
<title>Error</title>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
</body>
</html>
"""


def _libraries_layer(layer: Layer, binaries: Sequence[Path]) -> None:
    for lib in shared_libraries(binaries):
        layer.host_file(lib)


def nginx_version() -> str:
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr
    match = re.search(r"nginx/(\S+)", out)
    if match is None:
        raise BuildError("nginx is not installed (Debian: nginx)")
    return match.group(1)


def _os_release(layer: Layer) -> None:
    """The images are Debian's packages: they say so, as the official Debian-based images do."""
    for path in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        if path.exists():
            layer.host_file(path)


def nginx_layer() -> Layer:
    layer = Layer()
    _os_release(layer)
    nginx = Path("/usr/sbin/nginx")
    layer.add(Entry("usr/sbin/nginx", source=nginx, mode=0o755))
    _libraries_layer(layer, [nginx])
    layer.host_file(Path("/etc/nginx/mime.types"))
    layer.file("etc/nginx/nginx.conf", NGINX_CONF)
    layer.file("etc/nginx/conf.d/default.conf", NGINX_DEFAULT_CONF)
    layer.file("usr/share/nginx/html/index.html", NGINX_INDEX)
    layer.file("usr/share/nginx/html/50x.html", NGINX_50X)
    layer.symlink("var/log/nginx/access.log", "/dev/stdout")
    layer.symlink("var/log/nginx/error.log", "/dev/stderr")
    layer.dir("var/cache/nginx")
    layer.dir("var/lib/nginx")
    layer.dir("var/lock")
    layer.symlink("var/run", "/run")
    layer.file("etc/passwd", PASSWD + "nginx:x:101:101:nginx user:/nonexistent:/bin/false\n")
    layer.file("etc/group", GROUP + "nginx:x:101:\n")
    return layer


PYTHON_SKIP = ("test", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo", "__pycache__", "pydoc_data",
               "config-3.11-x86_64-linux-gnu", "distutils", "venv", "unittest/test")


def python_layer() -> Layer:
    layer = Layer()
    _os_release(layer)
    python = Path("/usr/bin/python3.11")
    if not python.exists():
        raise BuildError("Debian's python3.11 is not installed")
    layer.add(Entry("usr/bin/python3.11", source=python, mode=0o755))
    for name in ("usr/bin/python3", "usr/bin/python", "usr/local/bin/python3", "usr/local/bin/python"):
        layer.symlink(name, "/usr/bin/python3.11")
    stdlib = Path("/usr/lib/python3.11")
    modules: list[Path] = [python]
    for current, dirs, files in os.walk(stdlib):
        rel = os.path.relpath(current, stdlib)
        dirs[:] = sorted(d for d in dirs if d not in PYTHON_SKIP and f"{rel}/{d}".lstrip("./") not in PYTHON_SKIP
                         and d != "dist-packages")
        for name in sorted(files):
            path = Path(current) / name
            if name.endswith((".py", ".so")) or path.parent.name == "lib-dynload":
                layer.host_file(path)
                if name.endswith(".so"):
                    modules.append(path)
    _libraries_layer(layer, modules)
    # what compiled wheels load (all of glibc, libgcc_s, libstdc++), as the Debian-based official
    # image has it: its packages' libraries
    for library in package_libraries("libc6", "libgcc-s1", "libstdc++6"):
        layer.host_file(library)
    return layer


def package_libraries(*packages: str) -> list[Path]:
    """The shared libraries Debian's packages installed here (`dpkg -L`), character sets aside."""
    out = subprocess.run(["dpkg", "-L", *packages], capture_output=True, text=True, check=False).stdout
    return sorted({Path(line) for line in out.splitlines()
                   if ".so" in Path(line).name and "/gconv/" not in line and Path(line).is_file()})


AGNHOST_SCRIPT = """#!/bin/sh
exec python3 -m services.nodeagent.workloads.agnhost "$@"
"""


def agnhost_layer() -> Layer:
    layer = Layer()
    workloads = ROOT / "services" / "nodeagent" / "workloads"
    layer.file("app/services/__init__.py", "")
    layer.file("app/services/nodeagent/__init__.py", "")
    for path in sorted(workloads.glob("*.py")):
        layer.add(Entry(f"app/services/nodeagent/workloads/{path.name}", source=path))
    layer.file("agnhost", AGNHOST_SCRIPT, 0o755)
    return layer


def netshoot_layer() -> Layer:
    layer = Layer()
    _os_release(layer)
    binaries = [Path("/usr/bin/curl"), Path("/usr/bin/dig")]
    for binary in binaries:
        if not binary.exists():
            raise BuildError(f"{binary} is not installed (Debian: curl, bind9-dnsutils)")
        layer.add(Entry(str(binary).lstrip("/"), source=binary, mode=0o755))
    _libraries_layer(layer, binaries)
    certs = Path("/etc/ssl/certs/ca-certificates.crt")
    if certs.exists():
        layer.add(Entry("etc/ssl/certs/ca-certificates.crt", source=certs))
    return layer


@dataclass(frozen=True)
class Recipe:
    names: tuple[str, ...]  # the normalized names it gets
    layers: tuple[Callable[[], Layer], ...]
    config: dict[str, object]


def recipes() -> dict[str, Recipe]:
    busybox_version = "1.35"
    return {
        "busybox": Recipe((f"docker.io/library/busybox:{busybox_version}", "docker.io/library/busybox:latest"),
                          (busybox_layer,), {"Env": [PATH_ENV], "Cmd": ["sh"]}),
        "nginx": Recipe(
            (f"docker.io/library/nginx:{nginx_version()}", f"docker.io/library/nginx:{nginx_version()[:4]}",
             "docker.io/library/nginx:latest"),
            (busybox_layer, nginx_layer),
            {"Env": [PATH_ENV, f"NGINX_VERSION={nginx_version()}"], "Cmd": ["nginx", "-g", "daemon off;"],
             "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"}),
        "python": Recipe(("docker.io/library/python:3.11", "docker.io/library/python:latest"),
                         (busybox_layer, python_layer),
                         {"Env": [PATH_ENV, "LANG=C.UTF-8", "PYTHON_VERSION=3.11"], "Cmd": ["python3"]}),
        # as the real agnhost image, curl and dig are there too
        "agnhost": Recipe(("registry.k8s.io/e2e-test-images/agnhost:2.39",),
                          (busybox_layer, python_layer, netshoot_layer, agnhost_layer),
                          {"Env": [PATH_ENV, "PYTHONPATH=/app"], "Entrypoint": ["/agnhost"]}),
        "netshoot": Recipe(("docker.io/nicolaka/netshoot:latest",), (busybox_layer, netshoot_layer),
                           {"Env": [PATH_ENV], "Cmd": ["sh"]}),
    }


# --------------------------------------------------------------------------- archives


def _json(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_archive(recipe: Recipe, layers: Sequence[Layer], out: Path) -> str:
    """Write the oci-archive; the manifest's digest."""
    blobs: dict[str, bytes] = {}
    descriptors, diff_ids = [], []
    for layer in layers:
        blob, diff_id = layer_blob(layer)
        digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
        blobs[digest] = blob
        descriptors.append({"mediaType": OCI_LAYER_GZIP, "digest": digest, "size": len(blob)})
        diff_ids.append(diff_id)
    config = _json({"architecture": "amd64", "os": "linux", "config": recipe.config,
                    "rootfs": {"type": "layers", "diff_ids": diff_ids},
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH))})
    config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    blobs[config_digest] = config
    manifest = _json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                      "layers": descriptors})
    manifest_digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    blobs[manifest_digest] = manifest
    index = _json({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest),
         "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}
        for name in recipe.names]})
    tmp = out.with_name(f".{out.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _tar_add(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        _tar_add(tar, "index.json", index)
        for digest in sorted(blobs):
            _tar_add(tar, f"blobs/sha256/{digest[7:]}", blobs[digest])
    os.replace(tmp, out)
    return manifest_digest


@dataclass(frozen=True)
class Built:
    name: str
    archive: Path
    manifest: str
    size: int
    cached: bool
    seconds: float


def build(name: str, cache: Path = DEFAULT_CACHE) -> Built:
    """The image's archive in `cache`, built unless an archive of the same inputs is there."""
    started = time.monotonic()
    known = recipes()
    if name not in known:
        raise BuildError(f"no default image {name!r} (there are: {', '.join(known)})")
    recipe = known[name]
    layers = [make() for make in recipe.layers]
    key = hashlib.sha256("\n".join([RECIPE_VERSION, *recipe.names, json.dumps(recipe.config, sort_keys=True),
                                    *(line for layer in layers for line in layer.inputs())]).encode()).hexdigest()
    cache.mkdir(parents=True, exist_ok=True)
    archive, key_file = cache / f"{name}.tar", cache / f"{name}.key"
    cached = archive.exists() and key_file.exists() and key_file.read_text().split()[0] == key
    if cached:
        manifest = key_file.read_text().split()[1]
    else:
        manifest = write_archive(recipe, layers, archive)
        key_file.write_text(f"{key} {manifest}\n")
    return Built(name, archive, manifest, archive.stat().st_size, cached, time.monotonic() - started)


def build_all(cache: Path = DEFAULT_CACHE, names: Sequence[str] = ()) -> list[Built]:
    return [build(name, cache) for name in (names or list(recipes()))]


def load(stores: Sequence[Path], cache: Path = DEFAULT_CACHE, names: Sequence[str] = ()) -> list[Built]:
    """Build (or take from the cache) and load into each node's image store."""
    from services.nodeagent.oci.store import ContentStore

    built = build_all(cache, names)
    for root in stores:
        store = ContentStore(root)
        for b in built:
            store.import_archive(b.archive)
    return built


def for_registry(built: Sequence[Built]) -> list[tuple[Path, tuple[str, ...], str]]:
    """What `registry.prepare` pushes: each archive with its names and manifest digest."""
    known = recipes()
    return [(b.archive, known[b.name].names, b.manifest) for b in built]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.nodeimages",
                                description="build the nodes' default images from this machine's Debian packages")
    sub = p.add_subparsers(dest="action", required=True)
    for action in ("build", "load"):
        b = sub.add_parser(action)
        b.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
        if action == "load":
            b.add_argument("--store", type=Path, action="append", required=True,
                           help="a node's image store (repeat for several)")
            b.add_argument("--registry-dir", type=Path, help="also make the cluster registry's storage and config here")
            b.add_argument("--registry-addr", default="0.0.0.0:5000", help="where that registry listens")
            b.add_argument("--seed-cache", type=Path, help="its cached seed (default: next to --cache)")
        b.add_argument("names", nargs="*", help=f"of: {', '.join(recipes())} (default: all)")
    a = p.parse_args(argv)
    from cluster import registry
    from services.nodeagent.oci.image import ImageError

    try:
        done = load(a.store, a.cache, a.names) if a.action == "load" else build_all(a.cache, a.names)
        if a.action == "load" and a.registry_dir is not None:
            registry.prepare(for_registry(done), a.registry_dir, a.registry_addr,
                             a.seed_cache or a.cache.parent / "registry")
    except (BuildError, ImageError, registry.RegistryError, KeyError, OSError, subprocess.SubprocessError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for built in done:
        sys.stdout.write(f"{built.name}\t{built.manifest[:19]}\t{built.size / 1e6:.1f} MB\t"
                         f"{'cached' if built.cached else 'built'}\t{built.seconds:.2f}s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
