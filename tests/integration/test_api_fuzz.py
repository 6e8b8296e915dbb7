"""Hostile HTTP at the running API (issue 10, tests: "an API fuzz of chunked, oversized
and odd-method requests").

Raw sockets to the real ``goal-engine api`` process, so nothing on the client side
tidies a request up. Every answer is a 4xx with a reason, never a 5xx; a body past
the limit is refused while it is still arriving; and whatever methods and paths
were sent, the API's metrics keep a bounded set of series.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import string
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount

from goal_engine.api.main import create_app
from goal_engine.api.middleware import KNOWN_METHODS
from goal_engine.core.config import Settings
from tests.api_routes import APP_SETTINGS, app_routes

pytestmark = pytest.mark.integration

GOALS = "/api/v1/workflows/wf-fuzz/goals"


async def exchange(
    settings: Settings, head: str, body_chunks: int = 0, chunk: bytes = b""
) -> tuple[int, bytes]:
    """Send ``head`` (then ``body_chunks`` chunked-encoded chunks, while the server listens);
    return the status and body of the answer.

    A raw socket, not asyncio's streams: when the server hangs up on a body still arriving
    the connection is reset, and ``StreamReader.read`` raises that reset before handing
    over the answer it had already buffered. The kernel keeps the answer readable after
    the reset, so ``recv`` on the socket returns it.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", settings.api_port))
        await loop.sock_sendall(sock, head.encode("latin-1"))
        answering = asyncio.Event()
        answer = asyncio.create_task(read_until_closed(sock, answering))
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        with contextlib.suppress(ConnectionError):  # the server may hang up once it has answered
            for _ in range(body_chunks):
                # As an HTTP/1.1 client should, stop sending once an answer starts.
                if answering.is_set():
                    break
                await loop.sock_sendall(sock, frame)
                await asyncio.sleep(0)  # let the reader see the answer between chunks
        raw = await asyncio.wait_for(answer, 30)
    finally:
        sock.close()
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), raw[:200]
    headers, _, body = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers.lower():
        body = _dechunk(body)
    return int(status_line.split()[1]), body


async def read_until_closed(sock: socket.socket, answering: asyncio.Event) -> bytes:
    # Until the server closes: an orderly end, or a reset after the answer (see exchange).
    loop, data = asyncio.get_running_loop(), b""
    with contextlib.suppress(ConnectionError):
        while piece := await loop.sock_recv(sock, 65536):
            data += piece
            answering.set()
    return data


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out, data = out + data[:n], data[n + 2 :]
    return out


def assert_refused_with_a_reason(status: int, body: bytes, *expected: int) -> None:
    assert 400 <= status < 500, (status, body[:300])
    if expected:
        assert status in expected, (status, body[:300])
    if status != 400 or body.startswith(b"{"):  # the server's own 400 for unparseable HTTP is plain text
        error = json.loads(body)["error"]
        assert error["code"] and error["message"], error
    else:
        assert body, "a 400 without a reason"


def head(method: str, path: str, *headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return "\r\n".join(lines) + "\r\n\r\n"


async def test_a_chunked_body_past_the_limit_is_refused_while_it_arrives(stack: Settings) -> None:
    # 64 MiB offered in 64 KiB chunks, no Content-Length, no token.
    started = time.monotonic()
    status, body = await exchange(
        stack, head("POST", GOALS, "Transfer-Encoding: chunked", "Content-Type: application/json"),
        body_chunks=1024, chunk=b"x" * 65536,
    )  # fmt: skip
    assert_refused_with_a_reason(status, body, 413)
    assert str(stack.max_body_bytes).encode() in body
    assert time.monotonic() - started < 20  # refused early, not after reading it all


@pytest.mark.parametrize("length", ["1000000000000", "99999999999999999999999", "-5", "12abc"])
async def test_a_declared_length_past_the_limit_or_not_a_number_is_refused(
    stack: Settings, length: str
) -> None:
    status, body = await exchange(stack, head("POST", GOALS, f"Content-Length: {length}"))
    assert_refused_with_a_reason(status, body, 400, 413)


@pytest.mark.parametrize(
    "method", ["PROPFIND", "PURGE", "BREW", "TRACE", "CONNECT", "MKCOL", "SEARCH", "get", "X" * 40, "OPTIONS"]
)
async def test_an_odd_method_is_a_4xx_with_a_reason(stack: Settings, method: str) -> None:
    for path in (GOALS, "/readyz", "/nowhere"):
        status, body = await exchange(stack, head(method, path))
        assert_refused_with_a_reason(status, body)


async def test_random_requests_get_4xx_and_mint_no_metric_series(stack: Settings) -> None:
    rng = random.Random(8)
    safe = string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@"
    for _ in range(150):
        method = rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]) if rng.random() < 0.5 else (
            "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 10)))
        )  # fmt: skip
        path = "/" + "/".join(
            "".join(rng.choices(safe, k=rng.randint(1, 30))) for _ in range(rng.randint(1, 6))
        )
        if rng.random() < 0.3:
            path = f"/api/v1/workflows/{path.strip('/').replace('/', '-')[:200]}/goals"
        body = "x" * rng.randint(0, 256)
        status, answer = await exchange(stack, head(method, path, f"Content-Length: {len(body)}") + body)
        if method == "HEAD":
            assert 400 <= status < 500, (method, path, status)
        else:
            assert_refused_with_a_reason(status, answer)

    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{stack.api_port}/metrics")).text
    labels = [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "goal_engine_api_requests_total"
    ]
    # The console's static files are one mount, one fixed label whatever the file asked for.
    mounts = {f"{r.path}/{{path}}" for r in create_app(APP_SETTINGS).routes if isinstance(r, Mount)}
    templates = {path for _, path in app_routes()} | mounts | {"unmatched"}
    assert {label["method"] for label in labels} <= KNOWN_METHODS | {"other"}
    assert {label["route"] for label in labels} <= templates
    assert len(labels) <= len(templates) * (len(KNOWN_METHODS) + 1) * 10  # ten statuses a route can answer
    # /readyz answers 503 by design while the stack starts; nothing else may answer 5xx.
    errors = [label for label in labels if label["status"].startswith("5") and label["route"] != "/readyz"]
    assert not errors, f"requests answered 5xx: {errors}"
