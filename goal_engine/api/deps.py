"""What a route needs, as ``Annotated`` dependencies: its signature says it all."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from goal_engine.api.cache import ReadCache
from goal_engine.configuration.store import Actor
from goal_engine.contract.events import ID_PATTERN, NAME_PATTERN
from goal_engine.core.config import Settings
from goal_engine.core.security import READ, WRITE, InvalidToken, Principal, VerifiedTokens


# Coroutines, not plain functions: FastAPI would run each plain one in its thread pool.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def _read_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.read_pool
    return pool


async def _read_cache(request: Request) -> ReadCache:
    cache: ReadCache = request.app.state.read_cache
    return cache


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
#: The read routes' pool (main.py: connections go back without the session reset).
ReadPoolDep = Annotated[asyncpg.Pool, Depends(_read_pool)]
ReadCacheDep = Annotated[ReadCache, Depends(_read_cache)]

_bearer = HTTPBearer(auto_error=False, description="HS256 JWT with sub, tenant_id, scope and exp")


async def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "missing bearer token", headers=challenge)
    tokens: VerifiedTokens = request.app.state.tokens
    try:
        return tokens.verify(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(401, f"invalid token: {exc}", headers=challenge) from None


def _scoped(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def require(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(403, f"the token lacks the scope {scope}")
        return principal

    return require


#: The caller, with the read (or write) scope; its tenant is the only one it sees.
Reader = Annotated[Principal, Depends(_scoped(READ))]
Writer = Annotated[Principal, Depends(_scoped(WRITE))]


def actor(principal: Principal) -> Actor:
    return Actor(tenant_id=principal.tenant_id, subject=principal.subject)


WorkflowId = Annotated[
    str, Path(min_length=1, max_length=200, pattern=ID_PATTERN, description="the workflow's id")
]
GoalId = Annotated[uuid.UUID, Path(description="the goal's id")]
EnrollmentId = Annotated[
    str, Path(min_length=1, max_length=200, pattern=ID_PATTERN, description="the enrollment's id")
]

#: A search string of the console's lists (no NUL: PostgreSQL text cannot hold one).
Search = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=NAME_PATTERN, description="part of the name or id, any case"),
]


def _query_names(dependant: Any) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """A misspelt filter (``?intervall=day``) must not quietly answer something else.

    Nor a parameter given twice: every query parameter of this API is one value, and
    FastAPI would validate only the last of them (``?parent_id=ok&parent_id=<ESC>``).
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    errors = [
        {"loc": ("query", name), "msg": "unknown query parameter", "type": "extra_forbidden"}
        for name in sorted(set(request.query_params) - known)
    ]
    errors += [
        {"loc": ("query", name), "msg": "given more than once", "type": "value_error"}
        for name in sorted(known)
        if len(request.query_params.getlist(name)) > 1
    ]
    if errors:
        raise RequestValidationError(errors)
