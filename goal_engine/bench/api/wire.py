"""The load's HTTP client: one keep-alive HTTP/1.1 connection per client, GET only.

The clients share the 2 cores with the API and PostgreSQL, and in a closed loop a
client's own CPU is part of every latency it measures: httpx spends about 2.4 ms of CPU
per request, more than the API's cached answer. This client writes the request bytes and
parses the answer with httptools (the parser uvicorn uses), a fraction of that. It reads
the whole body; a connection the server closed between requests is opened again and
the request sent once more, as httpx would.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httptools


class HttpError(Exception):
    """The request failed before a whole answer came back (the connection, or a bad answer)."""


class _Answer:
    """httptools' callbacks: the body and whether the message is complete."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.complete = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body) of ``GET path?params``."""
        target = f"{path}?{urlencode(params)}" if params else path
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        reused = self._streams is not None
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout)
        except (OSError, EOFError, httptools.HttpParserError, TimeoutError) as exc:
            self.close()
            if reused and isinstance(exc, EOFError):  # closed by the server while idle: once more
                return await self.get(path, params, headers)
            raise HttpError(f"{type(exc).__name__}: {exc}") from None

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(request)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            data = await reader.read(65536)
            if not data:
                raise EOFError("the server closed the connection")
            parser.feed_data(data)
        if not parser.should_keep_alive():
            self.close()
        return parser.get_status_code(), b"".join(answer.body)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
