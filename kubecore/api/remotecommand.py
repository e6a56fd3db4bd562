"""The channel protocol of `pods/exec` over WebSockets (what kubectl 1.30+ speaks).

A WebSocket whose subprotocol is `v5.channel.k8s.io` or `v4.channel.k8s.io` carries binary
messages (a client's text message is taken as its bytes, as kube-apiserver takes it), each
starting with one channel byte:

    0 stdin (client -> server)        3 error: one metav1.Status, sent once before the close
    1 stdout                          4 resize: {"Width": w, "Height": h} (tty only)
    2 stderr (absent with a tty)      255 close (v5 only): [255, channel], the sender is done
                                          writing that channel (kubectl: [255, 0] at stdin EOF)

The server ends the exchange by sending the Status on channel 3 and closing the WebSocket
normally (1000); the client reads stdout, stderr and the Status until then. The Status is
`Success`, or `Failure` with reason `NonZeroExitCode` and the code as the message of a cause
of type (JSON key "reason") `ExitCode`, or any other `Failure`, which kubectl prints as
`error: <message>`.

`pods/attach` speaks the same protocol without a command: the client joins the container's
own stdin, stdout and stderr.

The exec options come in the query: `command` (repeated), `container`, and the booleans
`stdin`, `stdout`, `stderr`, `tty`.

The API server and the node agent share this module: the API server checks the request and
relays the messages, the node agent runs the command and answers in this protocol (as
kube-apiserver relays to the kubelet).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

# Both legs of a relayed exec (client <-> API server <-> node agent) use these: pings keep
# an idle stream (a shell waiting for input) alive and notice a dead peer; one message may
# carry this much.
HEARTBEAT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

NON_ZERO_EXIT_CODE = "NonZeroExitCode"
EXIT_CODE_CAUSE = "ExitCode"


def _flag(query: Mapping[str, str], name: str) -> bool:
    return str(query.get(name, "")).strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class ExecOptions:
    command: tuple[str, ...]
    container: str | None = None
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False

    @classmethod
    def from_query(cls, query: Any) -> ExecOptions:
        """From a MultiDict of query parameters (aiohttp's `request.query`)."""
        return cls(command=tuple(query.getall("command", [])), container=query.get("container") or None,
                   stdin=_flag(query, "stdin"), stdout=_flag(query, "stdout"), stderr=_flag(query, "stderr"),
                   tty=_flag(query, "tty"))

    def problem(self) -> str | None:
        """What kube-apiserver rejects before any stream is opened, or None."""
        if not self.command:
            return "you must specify at least one command for the container"
        if not (self.stdin or self.stdout or self.stderr):
            return "you must specify at least one of stdin, stdout, stderr"
        return None

    def attach_problem(self) -> str | None:
        """What kube-apiserver rejects of an attach (which has no command), or None."""
        if not (self.stdin or self.stdout or self.stderr):
            return "you must specify at least one of stdin, stdout, stderr"
        return None

    def query(self, container: str | None = None, *, attach: bool = False) -> list[tuple[str, str]]:
        params = [] if attach else [("command", c) for c in self.command]
        chosen = container or self.container
        if chosen:
            params.append(("container", chosen))
        for name in ("stdin", "stdout", "stderr", "tty"):
            if getattr(self, name):
                params.append((name, "true"))
        return params


def success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code(code: int) -> dict[str, Any]:
    """The Status for a command that ended: Success for 0, NonZeroExitCode otherwise."""
    if code == 0:
        return success()
    return {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {code}",
            "reason": NON_ZERO_EXIT_CODE,
            "details": {"causes": [{"reason": EXIT_CODE_CAUSE, "message": str(code)}]}}


def failure(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def status_frame(status: Mapping[str, Any]) -> bytes:
    return frame(ERROR, json.dumps(status, separators=(",", ":")).encode())


def is_websocket(headers: Mapping[str, str]) -> bool:
    return "websocket" in headers.get("Upgrade", "").lower()


def is_spdy(headers: Mapping[str, str]) -> bool:
    return "spdy" in headers.get("Upgrade", "").lower()
