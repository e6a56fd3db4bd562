"""The user's kubeconfig, written the way kind writes it, so that `kubectl` reaches the
cluster without any `export KUBECONFIG` (kind: pkg/cluster/internal/kubeconfig/internal/
kubeconfig, paths.go, merge.go, remove.go, lock.go).

`cluster up` merges one cluster, user and context named `minicluster` (`minicluster-<name>`
for a cluster not named `mc`) into the user's file and makes it the current context;
`cluster down` removes exactly those three entries again, and the current context only if it
is still ours. Every other entry and key stays, in the file's order (PyYAML keeps the order
of keys, not comments).

Which file, as kubectl (client-go's loading rules) and kind choose it: `--kubeconfig`, else
the files of `$KUBECONFIG` (new entries go into the first that exists, else the last), else
`~/.kube/config`. The file is locked as client-go and kind lock it (`<file>.lock`, created
exclusively), written atomically (a temporary file renamed over it, keeping its mode and
owner), and created 0600 in a 0700 directory if missing. As root (sudo, or compose's one-shot
container writing into a mounted ~/.kube), what is created gets the owner of the directory it
is created in, so the user can still write their own kubeconfig.

The functions on documents (`cluster_entry`, `merge`, `remove`) are pure; the rest is thin
file I/O around them.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from kubecore.client.config import set_servers

Doc = dict[str, Any]
SECTIONS = ("clusters", "users", "contexts")
DEFAULT_CLUSTER = "mc"
LOCK_WAIT = 2.0  # seconds to wait for another writer's lock (kind retries for ~150 ms)


class UserConfigError(RuntimeError):
    """The user's kubeconfig cannot be read, locked or written; the message is one line."""


def context_name(cluster: str) -> str:
    """The name of the cluster, user and context entries of the local cluster `cluster`
    (kind's `kind-<name>`)."""
    return "minicluster" if cluster == DEFAULT_CLUSTER else f"minicluster-{cluster}"


# --- which file ----------------------------------------------------------------------------

def paths(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> list[Path]:
    """The files kubectl reads: `--kubeconfig` alone, else `$KUBECONFIG`'s files (empty and
    repeated ones dropped), else ~/.kube/config."""
    if explicit:
        return [Path(explicit)]
    seen: list[Path] = []
    for part in env.get("KUBECONFIG", "").split(os.pathsep):
        if part and Path(part) not in seen:
            seen.append(Path(part))
    if seen:
        return seen
    return [Path(env.get("HOME", "")) / ".kube" / "config"]


def path_for_merge(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The file new entries go into: the only candidate, else the first that exists, else the
    last (client-go creates the last file of `$KUBECONFIG` when none exists)."""
    candidates = paths(explicit, env)
    if len(candidates) == 1:
        return candidates[0]
    return next((p for p in candidates if p.is_file()), candidates[-1])


# --- documents (pure) ------------------------------------------------------------------------

def problem(doc: object) -> str | None:
    """Why `doc` (a parsed file) is not a kubeconfig this module may rewrite, or None."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        return f"the file holds a {type(doc).__name__}, not a mapping"
    for section in SECTIONS:
        entries = doc.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            return f"{section} is a {type(entries).__name__}, not a list"
        if not all(isinstance(e, dict) for e in entries):
            return f"an entry of {section} is not a mapping"
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        return "current-context is not a string"
    return None


def cluster_entry(cluster_config: Doc, key: str, servers: Sequence[str] = ()) -> Doc:
    """The cluster's own kubeconfig (one cluster, user and context) with every entry renamed
    to `key`, its context made current, and its servers replaced by `servers` if given (kind's
    KINDFromRawKubeadm; several: the first for kubectl, all for failover, see `set_servers`)."""
    bad = problem(cluster_config)
    if bad is None and not isinstance(cluster_config, dict):
        bad = "the file is empty"
    if bad:
        raise UserConfigError(f"not a kubeconfig: {bad}")
    for section in SECTIONS:
        count = len(cluster_config.get(section) or [])
        if count != 1:
            raise UserConfigError(f"a cluster's kubeconfig has one entry in {section}, this one {count}")
    doc = copy.deepcopy(cluster_config)
    cluster, user, context = (doc[s][0] for s in SECTIONS)
    cluster["name"] = user["name"] = context["name"] = key
    context.setdefault("context", {})
    context["context"]["cluster"] = context["context"]["user"] = key
    if servers:
        set_servers(cluster.setdefault("cluster", {}), servers)
    doc["current-context"] = key
    return doc


def merge(existing: Doc, ours: Doc) -> Doc:
    """`existing` with `ours`' one cluster, user and context put in place of entries of the
    same name (or appended), and `ours`' context current (kind's merge). A file without keys
    of its own (a new one) takes `ours`' other keys too: apiVersion, kind, preferences."""
    out = copy.deepcopy(existing) if existing else {}
    if not any(k not in (*SECTIONS, "current-context") for k in out):
        for key, value in ours.items():
            if key not in (*SECTIONS, "current-context"):
                out.setdefault(key, copy.deepcopy(value))
    for section in SECTIONS:
        entry = ours[section][0]
        entries = out.get(section) or []
        if any(e.get("name") == entry["name"] for e in entries):
            out[section] = [copy.deepcopy(entry) if e.get("name") == entry["name"] else e
                            for e in entries]
        else:
            out[section] = [*entries, copy.deepcopy(entry)]
    out["current-context"] = ours["current-context"]
    return out


def remove(existing: Doc, key: str) -> tuple[Doc, bool]:
    """`existing` without the cluster, user and context named `key`, and without a current
    context that is `key`; and whether anything changed (kind's remove). A list that becomes
    empty goes, as kind's encoder omits it."""
    out = copy.deepcopy(existing) if existing else {}
    changed = False
    for section in SECTIONS:
        entries = out.get(section)
        if not entries:
            continue
        kept = [e for e in entries if e.get("name") != key]
        if len(kept) != len(entries):
            changed = True
            if kept:
                out[section] = kept
            else:
                del out[section]
    if out.get("current-context") == key:
        del out["current-context"]
        changed = True
    return out, changed


def dump(doc: Doc) -> str:
    """The file's text: keys in the document's order, nothing for an empty document."""
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False) if doc else ""


# --- files -----------------------------------------------------------------------------------

def read(path: Path) -> Doc:
    """The kubeconfig at `path` ({} if there is none); UserConfigError if it is not one."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UserConfigError(f"cannot read kubeconfig {path}: {_reason(exc)}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserConfigError(f"kubeconfig {path} is not valid YAML ({_yaml_reason(exc)}); "
                              "left untouched") from None
    bad = problem(doc)
    if bad:
        raise UserConfigError(f"kubeconfig {path} is not a kubeconfig ({bad}); left untouched")
    return doc or {}


def write(path: Path, doc: Doc) -> None:
    """Replace `path` by `doc` atomically: a temporary file in the same directory with the
    old file's mode and owner (0600 and the directory's owner for a new file), renamed over
    it. A symbolic link is followed, so the link stays."""
    target = Path(os.path.realpath(path))
    ensure_dir(target.parent)
    try:
        st = target.stat()
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        parent = target.parent.stat()
        mode, owner = 0o600, (parent.st_uid, parent.st_gid)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(dump(doc))
            out.flush()
            os.fchmod(out.fileno(), mode)
            _give(out.fileno(), owner)
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_dir(directory: Path) -> None:
    """Create `directory` and its missing parents 0700, each owned (as root) by the owner of
    the nearest directory that existed."""
    missing: list[Path] = []
    existing = directory
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    st = existing.stat()
    for d in reversed(missing):
        d.mkdir(mode=0o700)
        _give(d, (st.st_uid, st.st_gid))


def _give(target: int | Path, owner: tuple[int, int]) -> None:
    """Hand what was created to `owner` (the replaced file's, or the directory's): root can;
    anyone else only to a group of their own, and otherwise keeps it."""
    if owner == (os.geteuid(), os.getegid()):
        return
    try:
        os.chown(target, *owner)
    except PermissionError:
        if os.geteuid() == 0:
            raise


@contextmanager
def locked(path: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """client-go's and kind's lock on a kubeconfig: `<file>.lock`, created exclusively and
    removed after the write."""
    ensure_dir(path.parent)
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + wait
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise UserConfigError(f"kubeconfig {path} is locked ({lock} exists: another kubectl "
                                      "or kind is writing it, or one died; remove it if none "
                                      "is running)") from None
            time.sleep(0.05)
        except OSError as exc:
            raise UserConfigError(f"cannot lock kubeconfig {path}: {_reason(exc)}") from None
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def merge_into(ours: Doc, *, explicit: str | os.PathLike[str] | None = None,
               env: Mapping[str, str] | None = None) -> Path:
    """Merge `ours` (from `cluster_entry`) into the user's kubeconfig; the file written."""
    path = path_for_merge(explicit, os.environ if env is None else env)
    try:
        with locked(path):
            write(path, merge(read(path), ours))
    except OSError as exc:
        raise UserConfigError(f"cannot write kubeconfig {path}: {_reason(exc)}") from None
    return path


def remove_from(key: str, *, explicit: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None, also: tuple[Path, ...] = ()) -> list[Path]:
    """Remove `key`'s entries from every file kubectl reads (and from `also`: where `cluster
    up` wrote them); the files that changed. A missing file is left missing."""
    changed: list[Path] = []
    candidates = paths(explicit, os.environ if env is None else env)
    for path in [*candidates, *(p for p in also if p not in candidates)]:
        if not path.is_file():
            continue
        try:
            with locked(path):
                doc, mutated = remove(read(path), key)
                if mutated:
                    write(path, doc)
                    changed.append(path)
        except OSError as exc:
            raise UserConfigError(f"cannot write kubeconfig {path}: {_reason(exc)}") from None
    return changed


def load_cluster_config(path: Path, key: str, servers: Sequence[str] = ()) -> Doc:
    """The cluster's own kubeconfig at `path`, renamed to `key` (see `cluster_entry`)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserConfigError(f"{path} not found: is the cluster up?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserConfigError(f"cannot read {path}: {_reason(exc)}") from None
    except yaml.YAMLError as exc:
        raise UserConfigError(f"{path} is not valid YAML ({_yaml_reason(exc)})") from None
    try:
        return cluster_entry(doc, key, servers)
    except UserConfigError as exc:
        raise UserConfigError(f"{path}: {exc}") from None


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"{exc.problem} at line {exc.problem_mark.line + 1}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --- command line ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """`python -m cluster.userconfig merge --from FILE [--server URL] [--name NAME] [--into PATH]`
    and `... remove [--name NAME] [--into PATH]`; compose runs `merge` in a one-shot container
    with the host's ~/.kube mounted."""
    p = argparse.ArgumentParser(prog="python -m cluster.userconfig",
                                description="put the local cluster into the user's kubeconfig, or take it out")
    sub = p.add_subparsers(dest="action", required=True)
    m = sub.add_parser("merge", help="merge a cluster's kubeconfig and make its context current")
    m.add_argument("--from", dest="source", type=Path, required=True, help="the cluster's kubeconfig")
    m.add_argument("--server", action="append", default=[],
                   help="an API server's URL as the user reaches it (repeat for each: failover)")
    r = sub.add_parser("remove", help="remove the cluster's entries")
    for q in (m, r):
        q.add_argument("--name", default=DEFAULT_CLUSTER, help="the cluster's name")
        q.add_argument("--into", help="the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    args = p.parse_args(argv)
    key = context_name(args.name)
    try:
        if args.action == "merge":
            path = merge_into(load_cluster_config(args.source, key, args.server), explicit=args.into)
            sys.stdout.write(f'Set kubectl context to "{key}" in {path}\n')
        else:
            changed = remove_from(key, explicit=args.into)
            sys.stdout.write("".join(f'removed "{key}" from {c}\n' for c in changed)
                             or f'no "{key}" entries\n')
    except UserConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
