"""A minimal HTTP/1.1 load generator: one keep-alive connection per client, requests
written as prepared bytes, answers read by Content-Length.

The benchmarks run the load generator, etcd and the server on the same cores, so
every microsecond the generator spends is taken from what it measures. aiohttp's
client costs about 0.2 ms of CPU per request; this costs a fraction of that. It
speaks only what the benchmarks need (JSON bodies, answers with Content-Length).
"""
from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
from urllib.parse import urlsplit


class HttpError(Exception):
    pass


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str, ssl: ssl_module.SSLContext | None = None) -> Connection:
        """A connection to `url`; an https URL is TLS with `ssl` (server check, client
        certificate)."""
        parts = urlsplit(url)
        if parts.scheme == "https":
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port, ssl=ssl,
                                                           server_hostname=parts.hostname)
        else:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def request(self, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
        self.writer.write(head.encode() + payload)
        status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
        lines = status_and_headers.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise HttpError(f"{method} {path}: answer without Content-Length")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
