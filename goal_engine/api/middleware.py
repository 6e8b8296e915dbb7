"""The API's outermost layer (pure ASGI): the body limit and the request metrics.

Body limit: a declared ``Content-Length`` past the limit is refused before a
byte is read; any other body (chunked, or one that lies about its length) is
counted as it arrives, and the request that crosses the limit is refused then.
Either way a 413 answers before the route, its authentication included, sees
the body: an unauthenticated client cannot make the API hold more than the limit.

Metrics: labels from fixed sets only, whatever a caller sends. ``method`` is one
of :data:`KNOWN_METHODS` or ``other``; ``route`` the route's template (never the
raw path) or ``unmatched``; ``status`` what the app answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from typing import Any

import fastapi.routing
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from goal_engine.api.errors import error_response

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
#: After a 413, how much more of the body is read and dropped so the client sees the answer.
DRAIN_BYTES, DRAIN_SECONDS = 4 * 1024 * 1024, 2.0

REQUESTS = Counter("goal_engine_api_requests_total", "API requests", ["route", "method", "status"])
LATENCY = Histogram("goal_engine_api_request_seconds", "API request latency", ["route", "method"])


class BodyTooLarge(HTTPException):
    """Raised by ``receive`` past the limit; an HTTPException, so a route reading the body answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body may be at most {limit} bytes")


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class RouteTemplates:
    """The full template (``/api/v1/workflows/{workflow_id}/goals``) of the route a path names.

    Matched here from the app's route table rather than read from the scope: FastAPI
    keeps an included router's routes relative to its prefix there, and a request
    refused before routing (413) has no route in the scope at all.
    """

    def __init__(self, routes: Sequence[Any]) -> None:
        self._routes = routes  # the app's own list: read on first use, after every route is added
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def _build(self) -> list[tuple[re.Pattern[str], str]]:
        # FastAPI >= 0.160 keeps included routers as nodes; older versions list the routes flat.
        iterate = getattr(fastapi.routing, "iter_route_contexts", None)
        routes = list(iterate(self._routes)) if iterate else list(self._routes)
        return [
            (r.path_regex, r.path_format)
            for r in routes
            if getattr(r, "path_regex", None) is not None and isinstance(getattr(r, "path_format", None), str)
        ]

    def label(self, path: str) -> str:
        if self._table is None:
            self._table = self._build()
        return next((template for regex, template in self._table if regex.match(path)), UNMATCHED)


class LimitAndMeasure:
    def __init__(self, app: ASGIApp, max_body_bytes: int, routes: Sequence[Any]) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.templates = RouteTemplates(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers: an exception escaping it is the server error
        answered = False

        async def send_and_note(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            await send(message)

        try:
            if self._declared_too_large(scope):
                await self._refuse(scope, receive, send_and_note)
            else:
                await self.app(scope, self._counting(receive), send_and_note)
        except BodyTooLarge:
            if answered:
                raise
            await self._refuse(scope, receive, send_and_note)
        finally:
            route, method = self.templates.label(scope["path"]), method_label(scope["method"])
            REQUESTS.labels(route, method, str(status)).inc()
            LATENCY.labels(route, method).observe(time.perf_counter() - started)

    def _declared_too_large(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return not value.isdigit() or int(value) > self.limit
        return False

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return counted

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413, then close the connection, after a short lingering drain.

        A server that closes while the client is still sending resets the connection,
        and many clients then report the reset, not the 413 (some kernels discard the
        unread answer; asyncio's streams raise the reset before the buffered answer).
        So the answer goes out first, then what keeps arriving is
        read and dropped (at most DRAIN_BYTES, DRAIN_SECONDS, never kept), then the
        response ends and the server closes.
        """
        response = error_response(413, BodyTooLarge(self.limit).detail, headers={"Connection": "close"})
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                drained = 0
                while drained < DRAIN_BYTES:
                    message = await receive()
                    drained += len(message.get("body", b""))
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
