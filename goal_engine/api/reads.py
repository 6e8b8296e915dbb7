"""The cached read routes' answers as JSON bytes: one definition for the routes and the fast path.

Each function takes what its route has validated (the caller's tenant, the path and the
query) and gives the bytes of the route's 200 answer, kept or read (``cache.py``), or
raises what the route answers instead (:class:`NotFound`, :class:`Unprocessable`). The
routes (``routes/analytics.py``, ``routes/workflows.py``) and ``fastpath.py`` both call
them, so an answer is the same bytes whichever of them sends it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from goal_engine.api.cache import (
    LOOKUPS,
    ReadCache,
    achievements_key,
    stats_key,
    tenant_stats_key,
    window_rollups_key,
)
from goal_engine.api.pagination import encode_cursor
from goal_engine.api.schemas import AchievementPage, Stats, TenantStats
from goal_engine.configuration.store import NotFound, Unprocessable
from projections import analytics, queries


async def stats(
    pool: asyncpg.Pool,
    cache: ReadCache,
    tenant_id: str,
    workflow_id: str,
    start: datetime | None,
    end: datetime | None,
    interval: analytics.Interval | None,
) -> bytes:
    """One workflow's stats, all time or over [start, end)."""
    if start is not None and end is not None and start >= end:
        raise Unprocessable(["from must be before to"])
    window = analytics.Window(start, end, interval)
    try:
        analytics.check_series(window, datetime.now(UTC))  # a 422 before any read
    except analytics.SeriesTooLong as exc:
        raise Unprocessable([str(exc)]) from None

    async def read() -> tuple[bytes, str]:
        answer, snapshot, _ = await _read_stats(pool, tenant_id, workflow_id, window)
        return answer, snapshot

    if not window.all_time and window.end is None:  # up to now: the answer moves with the clock
        return await _stats_up_to_now(pool, cache, tenant_id, workflow_id, window)
    # The instants in UTC: one key for every spelling of the same window.
    key = stats_key(tenant_id, workflow_id, _utc(start), _utc(end), interval)
    return await cache.answer(pool, "stats", key, read)


async def _stats_up_to_now(
    pool: asyncpg.Pool, cache: ReadCache, tenant_id: str, workflow_id: str, window: analytics.Window
) -> bytes:
    """A window up to now: never kept, but its whole days and hours are (they change only at
    an hour's end, or with the database), so a read of the same window within the hour
    reads only its partial hours, when the database is still at the kept snapshot."""
    now = datetime.now(UTC)
    key = window_rollups_key(tenant_id, workflow_id, analytics.rollups_key(window, now))
    kept: analytics.Rollups | None = cache.kept(key)
    body, _, rollups = await _read_stats(pool, tenant_id, workflow_id, window, now, kept)
    LOOKUPS.labels("stats", "uncached").inc()  # as the cache counts: answers, not refusals
    if not cache.enabled or rollups is None:
        LOOKUPS.labels("window-rollups", "uncached").inc()
    elif rollups is kept:
        LOOKUPS.labels("window-rollups", "hit").inc()
    else:
        cache.keep(key, rollups.snapshot, rollups, rollups.size())
        LOOKUPS.labels("window-rollups", "miss").inc()
    return body


async def _read_stats(
    pool: asyncpg.Pool,
    tenant_id: str,
    workflow_id: str,
    window: analytics.Window,
    now: datetime | None = None,
    kept: analytics.Rollups | None = None,
) -> tuple[bytes, str, analytics.Rollups | None]:
    """The stats' 200 answer as bytes, with what analytics.read_workflow_stats gives besides."""
    try:
        answer, snapshot, rollups = await analytics.read_workflow_stats(
            pool, tenant_id, workflow_id, window, now, kept
        )
    except analytics.SeriesTooLong as exc:  # without from: the series starts at the first activity
        raise Unprocessable([str(exc)]) from None
    if answer is None:
        raise NotFound("workflow not found")
    return Stats.model_validate(answer).model_dump_json().encode(), snapshot, rollups


async def tenant_stats(pool: asyncpg.Pool, cache: ReadCache, tenant_id: str) -> bytes:
    """Every workflow of the tenant with its all-time conversion, best converting first."""

    async def read() -> tuple[bytes, str]:
        workflows, snapshot = await analytics.read_tenant_summary(pool, tenant_id)
        summary = TenantStats.model_validate({"workflows": workflows, "total": len(workflows)})  # one call
        return summary.model_dump_json().encode(), snapshot

    return await cache.answer(pool, "tenant-stats", tenant_stats_key(tenant_id), read)


async def achievements(
    pool: asyncpg.Pool,
    cache: ReadCache,
    tenant_id: str,
    workflow_id: str,
    limit: int,
    position: tuple[datetime, str] | None,
) -> bytes:
    """A page of the workflow's achievement log, newest first, after ``position``."""

    async def read() -> tuple[bytes, str]:
        # Another tenant's workflow (or none) is a 404, as for its stats, not an empty log.
        async with pool.acquire() as conn:  # one connection for both: a pool round trip fewer
            known, snapshot = await queries.read_workflow_known(conn, tenant_id, workflow_id)
            if not known:
                raise NotFound("workflow not found")
            rows = await queries.achievements(conn, tenant_id, workflow_id, limit, position)
        last = rows[-1] if len(rows) == limit else None
        cursor = encode_cursor(last["achieved_at"].isoformat(), last["id"]) if last else None
        page = AchievementPage.model_validate({"achievements": rows, "next_cursor": cursor})  # one call
        return page.model_dump_json().encode(), snapshot

    key = achievements_key(tenant_id, workflow_id, limit, position)
    return await cache.answer(pool, "achievements", key, read)


def _utc(t: datetime | None) -> datetime | None:
    return t.astimezone(UTC) if t is not None else None
