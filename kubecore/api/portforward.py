"""The `pods/portforward` protocol `portforward.k8s.io` (kubelet's pkg/kubelet/cri/streaming/portforward).

The client upgrades `POST .../pods/<name>/portforward` to `SPDY/3.1` with
`X-Stream-Protocol-Version: portforward.k8s.io` (kubectl up to 1.30), or opens a WebSocket of
subprotocol `SPDY/3.1+portforward.k8s.io` and speaks the same SPDY inside it (kubectl 1.31+,
KUBECTL_PORT_FORWARD_WEBSOCKETS). For every local connection it accepts it then opens two SPDY
streams with the headers

    streamtype: error | data     port: <container port>     requestid: <n>

The server pairs the two by request id, connects to the port inside the pod's network
namespace and copies bytes between the data stream and the connection; what fails is one
line of text on the error stream (`error forwarding port 8080 to pod <sandbox>, uid : ...`),
which kubectl prints as `an error occurred forwarding 18080 -> 8080: ...`.

Pure logic only: the header checks and the pairing, shared by the node agent and its tests.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

PROTOCOL_V1 = "portforward.k8s.io"
WEBSOCKET_TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL_V1  # kubectl 1.31+: SPDY inside a WebSocket
STREAM_PROTOCOL_HEADER = "X-Stream-Protocol-Version"
SPDY_UPGRADE = "SPDY/3.1"

STREAM_TYPE = "streamtype"
PORT = "port"
REQUEST_ID = "requestid"
ERROR_STREAM, DATA_STREAM = "error", "data"

# kubelet's --streaming-connection-idle-timeout default, and how long a half pair may wait
IDLE_TIMEOUT_SECONDS = 4 * 3600.0
STREAM_CREATION_TIMEOUT_SECONDS = 30.0


def stream_problem(headers: Mapping[str, str]) -> str | None:
    """Why a new stream is refused (kubelet's httpStreamReceived), or None."""
    port = headers.get(PORT, "")
    if not port:
        return f'"{PORT}" header is required'
    if not port.isdigit() or int(port) > 65535:
        return f'unable to parse "{port}" as a port: strconv.ParseUint: parsing "{port}": invalid syntax'
    if int(port) < 1:
        return f'port "{port}" must be > 0'
    kind = headers.get(STREAM_TYPE, "")
    if not kind:
        return f'"{STREAM_TYPE}" header is required'
    if kind not in (ERROR_STREAM, DATA_STREAM):
        return f'invalid stream type "{kind}"'
    return None


def request_id(headers: Mapping[str, str], stream_id: int) -> str:
    """The pair a stream belongs to: its requestid header; from clients that send none, kubelet's
    guess from consecutive stream ids (the error stream first, its data stream two after)."""
    given = headers.get(REQUEST_ID, "")
    if given:
        return given
    return str(stream_id if headers.get(STREAM_TYPE) == ERROR_STREAM else stream_id - 2)


S = TypeVar("S")


@dataclass
class Pair(Generic[S]):
    request_id: str
    error: S | None = None
    data: S | None = None

    @property
    def complete(self) -> bool:
        return self.error is not None and self.data is not None


@dataclass
class Pairs(Generic[S]):
    """Streams waiting for their other half, by request id."""

    pending: dict[str, Pair[S]] = field(default_factory=dict)

    def add(self, rid: str, kind: str, stream: S) -> tuple[Pair[S], str | None]:
        """Add a stream; the pair it is in, and kubelet's error when that pair already has this kind."""
        pair = self.pending.setdefault(rid, Pair(rid))
        if kind == ERROR_STREAM:
            if pair.error is not None:
                return pair, "error stream already assigned"
            pair.error = stream
        else:
            if pair.data is not None:
                return pair, "data stream already assigned"
            pair.data = stream
        if pair.complete:
            del self.pending[rid]
        return pair, None

    def drop(self, rid: str) -> Pair[S] | None:
        return self.pending.pop(rid, None)


def forward_error(port: int, pod: str, uid: str, reason: str) -> str:
    """The text kubelet writes on the error stream when forwarding fails."""
    return f"error forwarding port {port} to pod {pod}, uid {uid}: {reason}"
