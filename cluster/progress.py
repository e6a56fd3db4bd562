"""What `cluster up` shows while it works, as kind's cli.Status does (kind: pkg/internal/cli/
status.go, spinner.go): one line per step, ` ✓ Starting etcd (0.4s)` once done, ` ✗` if it
failed; on a terminal a spinner with the seconds so far, otherwise a ` • Starting etcd ...`
line as each step starts (what scripts and tests read). The components' own output stays in
their logs.

`cluster up --detach` runs the launcher in the background: it reports its steps as JSON lines
on a pipe (`Events`), and the command the user ran shows them (`Relay` into `Lines`), so both
modes print the same.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

FRAMES = ("⠈⠁", "⠈⠑", "⠈⠱", "⠈⡱", "⢀⡱", "⢄⡱", "⢄⡱", "⢆⡱", "⢎⡱", "⢎⡰", "⢎⡠", "⢎⡀", "⢎⠁", "⠎⠁", "⠊⠁")


class Progress(Protocol):
    """Where `cluster up` reports its steps, its ready message and its failure."""

    def start(self, step: str) -> None: ...

    def end(self, ok: bool, seconds: float | None = None) -> None: ...

    def ready(self, message: str) -> None: ...

    def fail(self, message: str) -> None: ...


def _encodes(out: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Lines:
    """Steps as lines on `out` (a spinner when `live`, by default when `out` is a terminal);
    the failure as one `error:` line on `err`."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *,
                 live: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.live = self.out.isatty() if live is None else live
        self.clock = clock
        fancy = _encodes(self.out, "✓✗•" + "".join(FRAMES))
        self.marks = ("✓", "✗", "•") if fancy else ("ok", "x", "-")
        self.frames = FRAMES if fancy else ("|", "/", "-", "\\")
        if self.live:  # kind colours the marks on a terminal
            self.marks = ("\x1b[32m" + self.marks[0] + "\x1b[0m", "\x1b[31m" + self.marks[1] + "\x1b[0m",
                          self.marks[2])
        self.step: str | None = None
        self.began = self.clock()
        self._step_began = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spinner: threading.Thread | None = None

    def start(self, step: str) -> None:
        self.end(True)
        self.step, self._step_began = step, self.clock()
        if self.live:
            self._stop.clear()
            self._spinner = threading.Thread(target=self._spin, name="progress", daemon=True)
            self._spinner.start()
        else:
            self._write(f" {self.marks[2]} {step} ...\n")

    def end(self, ok: bool, seconds: float | None = None) -> None:
        if self.step is None:
            return
        if self._spinner is not None:
            self._stop.set()
            self._spinner.join()
            self._spinner = None
        took = self.clock() - self._step_began if seconds is None else seconds
        mark = self.marks[0] if ok else self.marks[1]
        erase = "\r\x1b[K" if self.live else ""  # the spinner's line
        self._write(f"{erase} {mark} {self.step} ({took:.1f}s)\n")
        self.step = None

    def ready(self, message: str) -> None:
        self.end(True)
        self._write(message if message.endswith("\n") else message + "\n")

    def fail(self, message: str) -> None:
        self.end(False)
        self.err.write(f"error: {message}\n")
        self.err.flush()

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.1 if frame else 0):
            took = self.clock() - self._step_began
            self._write(f"\x1b[?7l\r{self.frames[frame % len(self.frames)]} {self.step} ({took:.0f}s) \x1b[?7h")
            frame += 1

    def _write(self, text: str) -> None:
        with self._lock:
            self.out.write(text)
            self.out.flush()


class Events:
    """The background launcher's side: each report as a JSON line on the file descriptor
    `fd`; closed after the ready message or the failure. A reader that went away (the user's
    command was interrupted) ends the reports, not the launcher."""

    def __init__(self, fd: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.fd: int | None = fd
        self.clock = clock
        self.step: str | None = None
        self._step_began = 0.0

    def start(self, step: str) -> None:
        self.end(True)
        self.step, self._step_began = step, self.clock()
        self._send({"start": step})

    def end(self, ok: bool, seconds: float | None = None) -> None:
        if self.step is None:
            return
        took = self.clock() - self._step_began if seconds is None else seconds
        self._send({"end": self.step, "ok": ok, "seconds": round(took, 3)})
        self.step = None

    def ready(self, message: str) -> None:
        self.end(True)
        self._send({"ready": message})
        self.close()

    def fail(self, message: str) -> None:
        self.end(False)
        self._send({"error": message})
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _send(self, event: dict[str, Any]) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, (json.dumps(event) + "\n").encode())
        except OSError:  # the reader is gone
            self.close()


class Relay:
    """The user's side of `Events`: JSON lines fed in as they arrive, shown on `shown`."""

    def __init__(self, shown: Progress) -> None:
        self.shown = shown
        self.ready: str | None = None
        self.error: str | None = None
        self._partial = b""

    @property
    def finished(self) -> bool:
        return self.ready is not None or self.error is not None

    def feed(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._show(event)

    def _show(self, event: dict[str, Any]) -> None:
        if "start" in event:
            self.shown.start(str(event["start"]))
        elif "end" in event:
            self.shown.end(bool(event.get("ok")), float(event.get("seconds") or 0.0))
        elif "ready" in event:
            self.ready = str(event["ready"])
        elif "error" in event:
            self.shown.end(False)
            self.error = str(event["error"])
