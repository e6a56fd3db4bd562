"""The supervisor's restart loop, with real processes (no network namespaces)."""
from __future__ import annotations

import asyncio
import stat
import time

from cluster.components import Component
from cluster.config import ClusterConfig
from cluster.supervisor import Running, Supervisor


async def test_a_component_that_cannot_be_started_again_does_not_end_supervision(tmp_path):
    # `gone` exits, and then its program disappears (an upgrade, a removed venv): starting it
    # again fails. The supervisor must go on restarting the others, and keep trying it.
    program = tmp_path / "gone.sh"
    program.write_text("#!/bin/sh\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    cfg = ClusterConfig(name=f"sup-test-{time.monotonic_ns()}", state_dir=tmp_path / "state")
    gone = Component("gone", (str(program),))
    flaky = Component("flaky", ("sh", "-c", "exit 1"))
    sup = Supervisor(cfg, [gone, flaky])
    for comp in (gone, flaky):
        sup.running[comp.name] = r = Running(comp)
        sup.start(r)
    program.unlink()
    watch = asyncio.create_task(sup.watch())
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and sup.running["flaky"].restarts < 1 and not watch.done():
            await asyncio.sleep(0.1)
        assert not watch.done(), f"supervision ended: {watch.exception()!r}"
        assert sup.running["flaky"].restarts >= 1
    finally:
        sup.stop_all()
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def test_a_held_component_stays_down_and_starts_with_the_operators_flags_once_released(tmp_path):
    """`cluster etcd member replace` holds a member while it works on it, then has it start once
    with a flag of its own (--initial-cluster-state existing)."""
    from cluster.supervisor import hold, set_extra_args

    cfg = ClusterConfig(name=f"sup-test-{time.monotonic_ns()}", state_dir=tmp_path / "state")
    cfg.state_dir.mkdir(parents=True)
    out = tmp_path / "argv"
    member = Component("member", ("sh", "-c", f'echo "$0 $*" >> {out}; exit 1', "member"))
    sup = Supervisor(cfg, [member])
    sup.running["member"] = r = Running(member)
    hold(cfg, ["member"])
    sup.start(r)
    watch = asyncio.create_task(sup.watch())
    try:
        await asyncio.sleep(2.5)
        assert r.restarts == 0, "held, yet started again"
        set_extra_args(cfg, "member", ["--initial-cluster-state", "existing"])
        hold(cfg, ["member"], held=False)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and r.restarts < 1:
            await asyncio.sleep(0.1)
        assert r.restarts >= 1
        await asyncio.sleep(0.3)
        lines = out.read_text().splitlines()
        assert lines[0] == "member " and lines[1] == "member --initial-cluster-state existing", lines
    finally:
        sup.stop_all()
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
