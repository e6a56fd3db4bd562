"""Starting the project's processes: the parent-death signal, and what a failed start shows."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster import procs
from cluster.procs import die_with_parent, ephemeral_ports, free_port, restartable_ports_in_a_row, wait_http_ok

ROOT = Path(__file__).resolve().parents[2]

FORKS_SEEN: list[str] = []
os.register_at_fork(before=lambda: FORKS_SEEN.append("before"))


def test_starting_a_child_runs_no_fork_handlers_in_this_process():
    # A child started with a preexec_fn is made with fork(), which runs every at-fork handler:
    # gRPC's restarts gRPC's threads in the child, where they aborted it before exec ("epoll_wait
    # error: Bad file descriptor"; the API server of tests/compat "died with SIGABRT at
    # startup"). Python's own handlers run on the same fork() as the C library's, so seeing
    # none run means no handler ran.
    before = len(FORKS_SEEN)
    proc = subprocess.Popen(die_with_parent(["true"]), start_new_session=True)
    assert proc.wait(timeout=10) == 0
    assert len(FORKS_SEEN) == before


def test_a_child_gets_sigterm_when_the_process_that_started_it_dies(tmp_path):
    starter = ("import subprocess, sys\n"
               "from cluster.procs import die_with_parent\n"
               "child = subprocess.Popen(die_with_parent(['sleep', '60']), start_new_session=True)\n"
               "print(child.pid, flush=True)\n"
               "sys.stdin.read()\n")
    parent = subprocess.Popen([sys.executable, "-c", starter], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert process_state(child) not in (None, "Z")  # sleeping, under setpriv's pdeathsig
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process_state(child) not in (None, "Z"):
            time.sleep(0.05)
        assert process_state(child) in (None, "Z"), "the child outlived the process that started it"
    finally:
        if process_state(child) not in (None, "Z"):
            os.kill(child, 9)


def process_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (Z: ended, not yet reaped), or None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def test_a_program_that_is_not_there_raises_as_popen_would():
    with pytest.raises(FileNotFoundError):
        die_with_parent(["no-such-program-here"])


@pytest.mark.parametrize(("script", "says"), [
    ("echo 'fatal: it broke' >&2; kill -ABRT $$", ["was killed by SIGABRT", "fatal: it broke"]),
    ("echo 'Traceback: bad flag' >&2; exit 2", ["exited with 2", "Traceback: bad flag"]),
], ids=["signal", "exit-code"])
def test_a_process_that_dies_before_it_is_healthy_is_shown_with_its_last_words(tmp_path, script, says):
    log_path = tmp_path / "server.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(die_with_parent(["sh", "-c", script]), stdout=log, stderr=subprocess.STDOUT)
    with pytest.raises(RuntimeError) as failure:
        wait_http_ok(f"http://127.0.0.1:{free_port()}/readyz", timeout=10, proc=proc, log_path=log_path)
    for words in says:
        assert words in str(failure.value)


def test_restartable_ports_lie_below_the_ephemeral_range_and_are_free():
    low, _ = ephemeral_ports()
    first = restartable_ports_in_a_row(7)
    assert 23000 <= first and first + 7 <= min(low, 30000)
    for port in range(first, first + 7):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_without_room_below_the_ephemeral_range_any_free_block_is_taken(tmp_path, monkeypatch):
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("1024\t65535\n")
    monkeypatch.setattr(procs, "EPHEMERAL_RANGE_FILE", ranges)
    assert ephemeral_ports() == (1024, 65535)
    first = restartable_ports_in_a_row(3)
    for port in range(first, first + 3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
