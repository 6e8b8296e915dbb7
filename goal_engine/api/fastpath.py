"""The read cache's hits, answered before FastAPI's routing, validation and dependencies.

A profile of the API under ``make bench-api`` put about half of a kept answer's CPU in
FastAPI resolving the route's dependencies and parameters, to then send bytes already
kept (``cache.py``). This layer answers those requests itself, and only those:

- a ``GET`` without a body of one of the cached routes in its plain shape: the all-time
  stats (no query), the tenant summary (no query), an achievements page with
  ``?limit=N`` alone (N written plainly);
- with one ``Authorization: Bearer <token>`` header whose token verifies (the app's own
  :class:`VerifiedTokens`) and carries the read scope;
- whose answer is kept under the same key the route keeps it under (the key functions
  of ``cache.py``, the tenant from the token) at the current snapshot.

Anything else goes on to the app unchanged, which answers as ever: 401, 403, 404 and 422
(and their reasons) are never answered here. A key exists only once the route itself
answered it with a 200 after full validation, so a hit here is what the route would send.
The same headers as the route's answer, and the same metrics: this runs inside the
request metrics (``middleware.py``), and counts its hits as the route does.
"""

from __future__ import annotations

import re
from collections.abc import Hashable

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from goal_engine.api.cache import ReadCache, achievements_key, stats_key, tenant_stats_key
from goal_engine.core.database import UNAVAILABLE
from goal_engine.core.security import READ, InvalidToken, VerifiedTokens

_STATS = re.compile(r"/api/v1/workflows/([^/]+)/goals/stats")
_ACHIEVEMENTS = re.compile(r"/api/v1/workflows/([^/]+)/goals/achievements")
_TENANT_STATS = "/api/v1/goals/stats"
_LIMIT = re.compile(rb"limit=([1-9][0-9]{0,5})")


def _route(path: str, query: bytes) -> tuple[str, str, int] | None:
    """(route, workflow id or "", limit or 0) of a plain request of a cached route, else None."""
    if path == _TENANT_STATS:
        return ("tenant-stats", "", 0) if not query else None
    if (m := _STATS.fullmatch(path)) is not None:
        return ("stats", m[1], 0) if not query else None
    if (m := _ACHIEVEMENTS.fullmatch(path)) is not None and (limit := _LIMIT.fullmatch(query)) is not None:
        return "achievements", m[1], int(limit[1])
    return None


def _key(route: str, tenant: str, workflow_id: str, limit: int) -> Hashable:
    if route == "stats":
        return stats_key(tenant, workflow_id, None, None, None)
    if route == "achievements":
        return achievements_key(tenant, workflow_id, limit, None)
    return tenant_stats_key(tenant)


def _bearer(scope: Scope) -> str | None:
    """The token of the request's one ``Authorization: Bearer`` header; None otherwise (or no body)."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if token is not None or not value.startswith(b"Bearer "):
                return None
            token = value[7:].decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding") and value != b"0":
            return None
    return token if token and " " not in token else None


class KeptAnswers:
    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state  # the app's: its read cache, tokens and (after start-up) read pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plain_get = scope["type"] == "http" and scope["method"] == "GET"
        if plain_get and (body := await self._kept(scope)) is not None:
            headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    async def _kept(self, scope: Scope) -> bytes | None:
        cache: ReadCache = self.state.read_cache
        if not cache.enabled or (route := _route(scope["path"], scope["query_string"])) is None:
            return None
        if (token := _bearer(scope)) is None:
            return None
        tokens: VerifiedTokens = self.state.tokens
        try:
            principal = tokens.verify(token)
        except InvalidToken:
            return None  # the app answers the 401, with its reason
        if READ not in principal.scopes:
            return None
        name, workflow_id, limit = route
        key = _key(name, principal.tenant_id, workflow_id, limit)
        if not cache.holds(key):
            return None
        try:
            return await cache.kept(self.state.read_pool, name, key)
        except UNAVAILABLE:
            return None  # the app meets the same failure and answers its 503
