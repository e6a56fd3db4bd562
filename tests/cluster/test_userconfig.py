"""The user's kubeconfig as kind writes it (cluster/userconfig.py): which file, merging and
removing exactly our entries, and the file's mode, owner, lock and atomic replacement."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster import userconfig as uc
from kubecore.client.config import load_kubeconfig, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]


def entries(name: str, server: str = "https://127.0.0.1:6443") -> dict:
    return {"clusters": [{"name": name, "cluster": {"server": server}}],
            "users": [{"name": name, "user": {"token": f"t-{name}"}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}


def cluster_file(name: str = "mc") -> dict:
    """What `cluster up` writes to <state>/kubeconfig (kubecore.client.config.write_kubeconfig)."""
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": "https://127.0.0.1:6443",
                                                    "certificate-authority-data": "Q0E="}}],
            "users": [{"name": name, "user": {"client-certificate-data": "Q0VSVA==",
                                              "client-key-data": "S0VZ"}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                    "namespace": "default"}}],
            "current-context": name}


OURS = uc.cluster_entry(cluster_file(), "minicluster")
OTHER = {"apiVersion": "v1", "kind": "Config", "preferences": {"colors": True},
         **entries("prod", "https://prod:6443"), "current-context": "prod",
         "extensions": [{"name": "x", "extension": {"a": 1}}]}


def names(doc: dict, section: str) -> list[str]:
    return [e["name"] for e in doc.get(section) or []]


# --- names and files ------------------------------------------------------------------------

@pytest.mark.parametrize(("cluster", "key"), [("mc", "minicluster"), ("mce", "minicluster-mce")],
                         ids=["default", "other-name"])
def test_context_name(cluster, key):
    assert uc.context_name(cluster) == key


@pytest.mark.parametrize(("explicit", "kubeconfig", "expected"), [
    ("/x/flag", "/a:/b", ["/x/flag"]),
    (None, "/a:/b:/a::", ["/a", "/b"]),
    (None, "", ["/home/u/.kube/config"]),
    (None, None, ["/home/u/.kube/config"]),
], ids=["flag-wins", "env-deduplicated", "empty-env-is-unset", "home"])
def test_paths_follow_kubectl(explicit, kubeconfig, expected):
    env = {"HOME": "/home/u", **({"KUBECONFIG": kubeconfig} if kubeconfig is not None else {})}
    assert uc.paths(explicit, env) == [Path(p) for p in expected]


@pytest.mark.parametrize(("exists", "expected"), [
    ((), "c"), (("b",), "b"), (("b", "c"), "b"), (("a", "b", "c"), "a"),
], ids=["none-exists-last", "only-middle", "first-existing", "all"])
def test_new_entries_go_into_the_first_existing_file_of_KUBECONFIG(tmp_path, exists, expected):
    for name in exists:
        (tmp_path / name).write_text("")
    env = {"KUBECONFIG": os.pathsep.join(str(tmp_path / n) for n in "abc")}
    assert uc.path_for_merge(None, env) == tmp_path / expected


# --- documents ------------------------------------------------------------------------------

def test_the_cluster_entry_is_renamed_and_its_server_replaced():
    doc = uc.cluster_entry(cluster_file("mce"), "minicluster-mce", ["https://10.0.0.1:6443"])
    assert [names(doc, s) for s in uc.SECTIONS] == [["minicluster-mce"]] * 3
    assert doc["contexts"][0]["context"] == {"cluster": "minicluster-mce", "user": "minicluster-mce",
                                             "namespace": "default"}
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert doc["current-context"] == "minicluster-mce"


@pytest.mark.parametrize("bad", [
    {**cluster_file(), "users": []}, {**cluster_file(), "clusters": cluster_file()["clusters"] * 2},
    None, "text", {"clusters": "x"}])
def test_a_cluster_kubeconfig_has_one_entry_of_each(bad):
    with pytest.raises(uc.UserConfigError):
        uc.cluster_entry(bad, "minicluster")


@pytest.mark.parametrize(("existing", "expected_clusters", "expected_keys"), [
    ({}, ["minicluster"], ["apiVersion", "kind", "preferences", "clusters", "users", "contexts",
                           "current-context"]),
    (OTHER, ["prod", "minicluster"], ["apiVersion", "kind", "preferences", "clusters", "users",
                                      "contexts", "current-context", "extensions"]),
    ({**OTHER, "clusters": [{"name": "minicluster", "cluster": {"server": "https://old"}},
                            *OTHER["clusters"]]},
     ["minicluster", "prod"], list(OTHER)),
    (entries("dev"), ["dev", "minicluster"], ["clusters", "users", "contexts", "apiVersion", "kind",
                                              "preferences", "current-context"]),
], ids=["empty", "others-kept", "stale-entry-replaced-in-place", "bare-file-gets-apiVersion"])
def test_merge(existing, expected_clusters, expected_keys):
    before = yaml.safe_dump(existing)
    merged = uc.merge(existing, OURS)
    assert yaml.safe_dump(existing) == before, "the input is not changed"
    assert names(merged, "clusters") == expected_clusters
    assert list(merged) == expected_keys
    assert merged["current-context"] == "minicluster"
    ours = [c for c in merged["clusters"] if c["name"] == "minicluster"]
    assert ours == OURS["clusters"]
    for section in uc.SECTIONS:  # every other entry exactly as it was
        assert [e for e in merged[section] if e["name"] != "minicluster"] == \
            [e for e in existing.get(section) or [] if e["name"] != "minicluster"]


@pytest.mark.parametrize(("existing", "expected", "changed"), [
    (uc.merge(OTHER, OURS), {k: v for k, v in OTHER.items() if k != "current-context"}, True),
    ({**uc.merge(OTHER, OURS), "current-context": "prod"}, OTHER, True),
    (OTHER, OTHER, False),
    ({}, {}, False),
    (uc.merge({}, OURS), {"apiVersion": "v1", "kind": "Config", "preferences": {}}, True),
    ({**OTHER, "current-context": "minicluster"},
     {k: v for k, v in OTHER.items() if k != "current-context"}, True),
], ids=["ours-current", "other-current-kept", "nothing-ours", "empty", "only-ours",
        "dangling-current-context"])
def test_remove_takes_exactly_our_entries(existing, expected, changed):
    out, mutated = uc.remove(existing, "minicluster")
    assert (out, mutated) == (expected, changed)


@pytest.mark.parametrize(("doc", "why"), [
    (None, None), ({}, None), (OTHER, None), ([1], "holds a list, not a mapping"),
    ("x", "holds a str, not a mapping"), ({"clusters": {"a": 1}}, "clusters is a dict, not a list"),
    ({"users": ["x"]}, "an entry of users is not a mapping"),
    ({"current-context": 3}, "current-context is not a string"),
], ids=["empty-file", "empty-map", "kubeconfig", "list", "scalar", "section-map", "entry-scalar",
        "current-not-string"])
def test_problem(doc, why):
    found = uc.problem(doc)
    assert found is None if why is None else why in (found or "")


# --- files ----------------------------------------------------------------------------------

def test_a_missing_file_and_directory_are_created_private(tmp_path):
    target = tmp_path / "home" / ".kube" / "config"
    assert uc.merge_into(OURS, env={"HOME": str(tmp_path / "home")}) == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert yaml.safe_load(target.read_text()) == uc.merge({}, OURS)
    assert sorted(p.name for p in target.parent.iterdir()) == ["config"], "no lock or temp file left"


def test_an_existing_file_keeps_its_mode_order_and_other_entries(tmp_path):
    target = tmp_path / "config"
    text = yaml.safe_dump(OTHER, sort_keys=False)
    target.write_text(text)
    target.chmod(0o640)
    uc.merge_into(OURS, explicit=target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    merged = yaml.safe_load(target.read_text())
    assert list(merged) == list(OTHER)
    assert merged == uc.merge(OTHER, OURS)
    assert uc.remove_from("minicluster", explicit=target) == [target]
    assert yaml.safe_load(target.read_text()) == {k: v for k, v in OTHER.items() if k != "current-context"}
    assert uc.remove_from("minicluster", explicit=target) == [], "idempotent"


def test_a_symlinked_kubeconfig_stays_a_link(tmp_path):
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    real.write_text(yaml.safe_dump(OTHER))
    link = tmp_path / "config"
    link.symlink_to(real)
    uc.merge_into(OURS, explicit=link)
    assert link.is_symlink()
    assert names(yaml.safe_load(real.read_text()), "contexts") == ["prod", "minicluster"]


def test_with_several_KUBECONFIG_files_merge_writes_one_and_remove_cleans_all(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    b.write_text(yaml.safe_dump(uc.merge(OTHER, OURS)))  # an older entry, in the second file
    env = {"KUBECONFIG": f"{a}{os.pathsep}{b}"}
    assert uc.merge_into(OURS, env=env) == b
    a.write_text(yaml.safe_dump(uc.merge(entries("dev"), OURS)))
    assert uc.remove_from("minicluster", env=env) == [a, b]
    assert names(yaml.safe_load(a.read_text()), "clusters") == ["dev"]
    assert names(yaml.safe_load(b.read_text()), "clusters") == ["prod"]


def test_remove_leaves_missing_files_missing(tmp_path):
    home = tmp_path / "home"
    assert uc.remove_from("minicluster", env={"HOME": str(home)}) == []
    assert not home.exists()


@pytest.mark.parametrize("text", ["clusters: [a\n", "- just\n- a list\n", "clusters: 7\n",
                                  "\xff\xfe"], ids=["yaml-error", "list", "section", "binary"])
def test_a_corrupt_kubeconfig_is_one_error_and_left_untouched(tmp_path, text):
    target = tmp_path / "config"
    target.write_bytes(text.encode("latin-1"))
    with pytest.raises(uc.UserConfigError) as err:
        uc.merge_into(OURS, explicit=target)
    assert "\n" not in str(err.value) and str(target) in str(err.value)
    with pytest.raises(uc.UserConfigError):
        uc.remove_from("minicluster", explicit=target)
    assert target.read_bytes() == text.encode("latin-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_a_held_lock_is_waited_for_then_named(tmp_path):
    target = tmp_path / "config"
    lock = tmp_path / "config.lock"
    lock.write_text("")
    with pytest.raises(uc.UserConfigError, match="config.lock exists"):
        with uc.locked(target, wait=0.1):
            pass
    lock.unlink()
    with uc.locked(target):
        assert lock.exists()
    assert not lock.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files away needs root")
def test_as_root_files_go_to_the_directory_owner(tmp_path):
    home = tmp_path / "alice"
    home.mkdir()
    os.chown(home, 12345, 12346)
    target = uc.merge_into(OURS, env={"HOME": str(home)})
    for p in (target, target.parent):
        assert (p.stat().st_uid, p.stat().st_gid) == (12345, 12346)
    os.chown(target, 23456, 23457)  # an existing file keeps its own owner
    uc.remove_from("minicluster", env={"HOME": str(home)})
    assert (target.stat().st_uid, target.stat().st_gid) == (23456, 23457)


# --- command line ---------------------------------------------------------------------------

def state_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "state-kubeconfig"
    write_kubeconfig(path, name="mce", server="https://10.250.0.1:6443", ca_file=tmp_path / "ca.crt",
                     cert_file=tmp_path / "admin.crt", key_file=tmp_path / "admin.key")
    return path


def test_cli_merge_and_remove(tmp_path, capsys):
    into = tmp_path / "kube" / "config"
    into.parent.mkdir()
    into.write_text(yaml.safe_dump(OTHER, sort_keys=False))
    assert uc.main(["merge", "--from", str(state_kubeconfig(tmp_path)), "--name", "mce",
                    "--server", "https://127.0.0.1:6443", "--into", str(into)]) == 0
    assert capsys.readouterr().out == f'Set kubectl context to "minicluster-mce" in {into}\n'
    config = load_kubeconfig(into)
    assert config.server == "https://127.0.0.1:6443"
    assert config.cert_file == str(tmp_path / "admin.crt")
    assert load_kubeconfig(into, context="prod").server == "https://prod:6443"
    assert uc.main(["remove", "--name", "mce", "--into", str(into)]) == 0
    assert capsys.readouterr().out == f'removed "minicluster-mce" from {into}\n'
    assert yaml.safe_load(into.read_text()) == {k: v for k, v in OTHER.items() if k != "current-context"}


@pytest.mark.parametrize(("argv", "message"), [
    (["merge", "--from", "{tmp}/missing"], "missing not found: is the cluster up?"),
    (["merge", "--from", "{tmp}/corrupt"], "not valid YAML"),
    (["merge", "--from", "{tmp}/state-kubeconfig", "--into", "{tmp}/corrupt"], "left untouched"),
    (["remove", "--into", "{tmp}/corrupt"], "left untouched"),
], ids=["no-source", "corrupt-source", "corrupt-target", "corrupt-remove"])
def test_cli_errors_are_one_line(tmp_path, argv, message):
    state_kubeconfig(tmp_path)
    (tmp_path / "corrupt").write_text("clusters: [\n")
    res = subprocess.run([sys.executable, "-m", "cluster.userconfig",
                          *(a.format(tmp=tmp_path) for a in argv)],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "HOME": str(tmp_path), "KUBECONFIG": ""})
    assert res.returncode == 1
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and message in res.stderr
    assert (tmp_path / "corrupt").read_text() == "clusters: [\n"


def test_several_servers_go_in_the_servers_extension_and_one_drops_it():
    from kubecore.client.config import SERVERS_EXTENSION

    servers = ["https://127.0.0.1:6443", "https://127.0.0.1:6444"]
    cluster = uc.cluster_entry(cluster_file(), "minicluster", servers)["clusters"][0]["cluster"]
    assert cluster["server"] == servers[0]
    assert cluster["extensions"] == [{"name": SERVERS_EXTENSION, "extension": {"servers": servers}}]
    again = uc.cluster_entry({**cluster_file(), "clusters": [{"name": "mc", "cluster": cluster}]},
                             "minicluster", ["https://10.0.0.1:6443"])["clusters"][0]["cluster"]
    assert again["server"] == "https://10.0.0.1:6443" and "extensions" not in again
