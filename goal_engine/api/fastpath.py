"""The cached read routes' plain requests, answered before FastAPI's routing, validation and dependencies.

A profile of the API under ``make bench-api`` (10M achievements, 2 processes) put about
a third of its CPU per request in FastAPI and Starlette around the read itself: the
middleware and routing stack, solving the route's seven dependencies and parameters,
its ``Response``. This layer answers the requests of the read routes in their plain
shapes itself, hits and misses alike, and only those:

- a ``GET`` without a body of the all-time stats (no query), a window of the stats
  (``from``, ``to``, ``interval``, each at most once, nothing else), the tenant summary
  (no query) or an achievements page with ``?limit=N`` alone (N written plainly, 1-500);
- with one ``Authorization: Bearer <token>`` header whose token verifies (the app's own
  :class:`VerifiedTokens`) and carries the read scope;
- whose path and query pass the route's own checks (the same pattern, the same
  pydantic types, decoded as Starlette decodes a query).

It answers with the bytes of ``reads.py``, the functions the routes call, so the body,
the cache key and the cache's counters are the route's. Anything else goes on to the
app unchanged, which answers as ever: 401, 403, 404, 422 and 503 (and their reasons) are
never answered here, and an answer ``reads.py`` refuses (no such workflow, a window too
long, the database unavailable) is asked of the app again, which refuses it its way.
The same headers as the route's answer, and the same metrics: this runs inside the
request metrics (``middleware.py``).
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qsl

import asyncpg
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from goal_engine.api import reads
from goal_engine.api.cache import ReadCache
from goal_engine.api.routes.analytics import Timestamp
from goal_engine.core.security import READ, InvalidToken, VerifiedTokens
from projections import analytics

_STATS = re.compile(r"/api/v1/workflows/([^/]+)/goals/stats")
_ACHIEVEMENTS = re.compile(r"/api/v1/workflows/([^/]+)/goals/achievements")
_TENANT_STATS = "/api/v1/goals/stats"
_LIMIT = re.compile(rb"limit=([1-9][0-9]{0,2})")
_MAX_LIMIT = 500  # pagination.Limit's
#: The path's workflow id as WorkflowId takes it (deps.py: ID_PATTERN, 1-200 characters).
_WORKFLOW_ID = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_INSTANT: TypeAdapter[datetime] = TypeAdapter(Timestamp)
_INTERVAL: TypeAdapter[analytics.Interval] = TypeAdapter(analytics.Interval)
_WINDOW_PARAMETERS = frozenset({"from", "to", "interval"})


class NotPlain(Exception):
    """The request is not one this layer answers: the app does."""


def _window(query: bytes) -> tuple[datetime | None, datetime | None, analytics.Interval | None]:
    """(from, to, interval) of a stats query, validated as the route validates them."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)  # as Starlette's QueryParams
    given = dict(pairs)
    if len(given) != len(pairs) or not given.keys() <= _WINDOW_PARAMETERS or "" in given.values():
        raise NotPlain
    try:
        start = _INSTANT.validate_python(given["from"]) if "from" in given else None
        end = _INSTANT.validate_python(given["to"]) if "to" in given else None
        interval = _INTERVAL.validate_python(given["interval"]) if "interval" in given else None
    except ValidationError:
        raise NotPlain from None
    return start, end, interval


def _workflow_id(match: re.Match[str]) -> str:
    if _WORKFLOW_ID.fullmatch(match[1]) is None:
        raise NotPlain
    return match[1]


def _bearer(scope: Scope) -> str | None:
    """The token of the request's one ``Authorization: Bearer`` header; None otherwise (or a body)."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if token is not None or not value.startswith(b"Bearer "):
                return None
            token = value[7:].decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding") and value != b"0":
            return None
    return token if token and " " not in token else None


class FastReads:
    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state  # the app's: its read cache, tokens and (after start-up) read pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain_get = scope["type"] == "http" and scope["method"] == "GET"
        if plain_get and (body := await self._answer(scope)) is not None:
            headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> bytes | None:
        path, query = scope["path"], scope["query_string"]
        if not path.endswith(("/stats", "/achievements")) or (token := _bearer(scope)) is None:
            return None
        tokens: VerifiedTokens = self.state.tokens
        try:
            principal = tokens.verify(token)
        except InvalidToken:
            return None  # the app answers the 401, with its reason
        if READ not in principal.scopes:
            return None
        state, tenant = self.state, principal.tenant_id
        try:
            return await self._read(path, query, state.read_pool, state.read_cache, tenant)
        except Exception:  # NotPlain, or no 200 to send: the app answers, its own way (404, 422, 503, 500)
            return None

    @staticmethod
    async def _read(path: str, query: bytes, pool: asyncpg.Pool, cache: ReadCache, tenant: str) -> bytes:
        if path == _TENANT_STATS:
            if query:
                raise NotPlain
            return await reads.tenant_stats(pool, cache, tenant)
        if (m := _STATS.fullmatch(path)) is not None:
            workflow_id = _workflow_id(m)
            return await reads.stats(pool, cache, tenant, workflow_id, *_window(query))
        if (m := _ACHIEVEMENTS.fullmatch(path)) is not None:
            workflow_id = _workflow_id(m)
            if (limit := _LIMIT.fullmatch(query)) is None or int(limit[1]) > _MAX_LIMIT:
                raise NotPlain
            return await reads.achievements(pool, cache, tenant, workflow_id, int(limit[1]), None)
        raise NotPlain
