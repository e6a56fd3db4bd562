"""`cluster up`'s progress lines (cluster/progress.py) and what the launcher says with them:
the step titles, the ready message, and the background launcher's reports over a pipe."""
from __future__ import annotations

import io
import logging
import os
import threading
from pathlib import Path

import pytest

from cluster.cli import setup_logging
from cluster.components import all_components
from cluster.config import ClusterConfig
from cluster.launcher import LaunchError, Steps, ready_message, stage_titles
from cluster.progress import Events, Lines, Relay
from cluster.supervisor import StartError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Utf8(io.StringIO):
    encoding = "utf-8"


def lines(live: bool = False) -> tuple[Lines, io.StringIO, io.StringIO, Clock]:
    out, err, clock = Utf8(), Utf8(), Clock()
    return Lines(out, err, live=live, clock=clock), out, err, clock


def test_plain_lines_one_per_step_with_seconds():
    shown, out, err, clock = lines()
    shown.start("Creating PKI")
    clock.now += 0.42
    shown.start("Starting etcd")  # starting a step ends the one before
    clock.now += 1.5
    shown.end(False)
    shown.fail("starting etcd: etcd exited with 1; see /s/logs/etcd.log")
    assert out.getvalue().splitlines() == [
        " • Creating PKI ...", " ✓ Creating PKI (0.4s)", " • Starting etcd ...", " ✗ Starting etcd (1.5s)"]
    assert err.getvalue() == "error: starting etcd: etcd exited with 1; see /s/logs/etcd.log\n"


def test_ready_ends_the_last_step_then_prints_the_message():
    shown, out, _, clock = lines()
    shown.start("Waiting for nodes to be Ready (2)")
    clock.now += 3
    shown.ready("Cluster 'mc' is ready")
    assert out.getvalue().splitlines()[-2:] == [" ✓ Waiting for nodes to be Ready (2) (3.0s)",
                                                "Cluster 'mc' is ready"]


def test_on_a_terminal_a_spinner_line_is_replaced_by_the_result():
    shown, out, _, clock = lines(live=True)
    shown.start("Starting nodes (2)")
    threading.Event().wait(0.25)
    clock.now += 2
    shown.end(True)
    text = out.getvalue()
    assert "⠈⠁ Starting nodes (2) (0s)" in text  # the first frame
    assert text.endswith("\r\x1b[K \x1b[32m✓\x1b[0m Starting nodes (2) (2.0s)\n")
    assert " • " not in text


def test_a_terminal_without_unicode_gets_ascii_marks():
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    shown = Lines(out, io.StringIO(), live=False)
    shown.start("Creating PKI")
    shown.end(True)
    out.seek(0)
    assert out.read().splitlines() == [" - Creating PKI ...", " ok Creating PKI (0.0s)"]


def test_the_background_launcher_reports_through_a_pipe():
    read_end, write_end = os.pipe()
    events = Events(write_end)
    events.start("Creating PKI")
    events.end(True, 0.25)
    events.start("Starting etcd")
    events.ready("Cluster 'mc' is ready")
    assert events.fd is None, "closed after the ready message"
    shown, out, _, _ = lines()
    relay = Relay(shown)
    data = os.read(read_end, 65536)
    os.close(read_end)
    relay.feed(data[:7])  # a line may arrive in pieces
    relay.feed(data[7:])
    assert relay.finished and relay.ready == "Cluster 'mc' is ready" and relay.error is None
    assert out.getvalue().splitlines()[:3] == [" • Creating PKI ...", " ✓ Creating PKI (0.2s)",
                                               " • Starting etcd ..."]
    assert out.getvalue().splitlines()[3].startswith(" ✓ Starting etcd (")


def test_a_failure_reaches_the_user_and_a_gone_reader_does_not_stop_the_launcher():
    read_end, write_end = os.pipe()
    events = Events(write_end)
    events.start("Starting the API server")
    events.fail("starting the API server: apiserver exited with 1; see /s/logs/apiserver.log")
    shown, out, _, _ = lines()
    relay = Relay(shown)
    relay.feed(os.read(read_end, 65536))
    assert relay.error == "starting the API server: apiserver exited with 1; see /s/logs/apiserver.log"
    assert out.getvalue().splitlines()[-1].startswith(" ✗ Starting the API server (")
    os.close(read_end)
    orphan_read, orphan_write = os.pipe()
    os.close(orphan_read)
    gone = Events(orphan_write)
    gone.start("Starting etcd")  # EPIPE: no exception, the reports just stop
    assert gone.fd is None


def test_stage_titles_name_what_each_stage_starts():
    cfg = ClusterConfig(nodes=3)
    assert stage_titles(cfg, all_components(cfg)) == {
        0: "Starting etcd and the image registry", 1: "Starting the API server",
        2: "Starting controllers (10), DNS and the live picture", 3: "Starting nodes (3)"}
    hosts = ClusterConfig(nodes=1, container_runtime="process")  # no images, no registry
    assert stage_titles(hosts, all_components(hosts))[0] == "Starting etcd"


@pytest.mark.parametrize(("exc", "expected"), [
    (StartError("etcd exited with 1 during start-up; see /s/logs/etcd.log"),
     "starting etcd: etcd exited with 1 during start-up; see /s/logs/etcd.log"),
    (RuntimeError("ip link add: File exists"),
     "starting etcd: ip link add: File exists; see /s/logs/launcher.log"),
    (TimeoutError(), "starting etcd: TimeoutError; see /s/logs/launcher.log"),
], ids=["names-its-log", "other-gets-the-launcher-log", "no-message"])
def test_a_failed_step_is_one_error_naming_the_step_and_the_log(exc, expected):
    shown, out, _, _ = lines()
    steps = Steps(ClusterConfig(state_dir=Path("/s")), shown)
    with pytest.raises(LaunchError) as err:
        with steps.step("Starting etcd"):
            raise exc
    assert str(err.value) == expected
    assert out.getvalue().splitlines()[-1].startswith(" ✗ Starting etcd")


@pytest.mark.parametrize(("name", "written", "explicit", "warning", "expected"), [
    ("mc", Path("/root/.kube/config"), None, None,
     ['Set kubectl context to "minicluster"', "  kubectl cluster-info --context minicluster",
      "  minikubectl get nodes"]),
    ("dev", Path("/tmp/my config"), "/tmp/my config", None,
     ['Set kubectl context to "minicluster-dev" in /tmp/my config',
      "  kubectl cluster-info --context minicluster-dev --kubeconfig '/tmp/my config'"]),
    ("mc", None, None, "kubeconfig /root/.kube/config is not valid YAML (x at line 1); left untouched",
     ["warning: kubectl context not set: kubeconfig /root/.kube/config is not valid YAML (x at line 1); "
      "left untouched", "  kubectl --kubeconfig /s/kubeconfig cluster-info"]),
], ids=["default", "explicit-path", "not-set"])
def test_the_ready_message_says_how_to_use_the_cluster(name, written, explicit, warning, expected):
    cfg = ClusterConfig(name=name, state_dir=Path("/s"))
    text = ready_message(cfg, seconds=31.24, written=written, explicit=explicit, warning=warning).splitlines()
    assert text[0] == expected[0]
    assert set(expected[1:]) <= set(text)
    assert f"Cluster {name!r} is ready after 31.2s: 2 nodes, API server https://127.0.0.1:6443. " \
           "You can now use it with:" in text
    assert "kubeconfig for scripts: /s/kubeconfig   logs: /s/logs" in text
    assert "The cluster's network, live: http://127.0.0.1:10311/" in text
    trace = "trace <pod> svc/<name>:<port>   # a packet's path, step by step"
    assert any(line.strip().startswith("minikubectl") and line.endswith(trace) for line in text)


@pytest.mark.parametrize(("verbose", "on_terminal"), [
    (False, ["forwarding is on"]),
    (True, ["step one", "forwarding is on", "starting etcd failed"]),
], ids=["default", "verbose"])
def test_the_launcher_log_goes_to_its_file_and_only_unreported_warnings_to_the_terminal(
        tmp_path, capsys, verbose, on_terminal):
    cfg = ClusterConfig(state_dir=tmp_path)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging(cfg, verbose=verbose, background=False)
        log = logging.getLogger("cluster.test")
        log.info("step one")
        log.warning("forwarding is on")
        log.error("starting etcd failed", extra={"reported": True})  # the progress lines say it
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    shown = [m for m in ("step one", "forwarding is on", "starting etcd failed") if m in err]
    assert shown == on_terminal
    text = cfg.launcher_log.read_text()
    assert all(m in text for m in ("step one", "forwarding is on", "starting etcd failed"))
