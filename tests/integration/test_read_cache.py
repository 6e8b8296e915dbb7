"""The read cache (goal_engine/api/cache.py) on real PostgreSQL: exact, tenant-scoped.

The app runs in-process (``httpx.ASGITransport``, no Kafka); the projector folds into the
same database between the requests. Every answer is compared with the same app's answer
with the cache turned off: a kept answer may be served only while it is still the truth.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest
from fastapi.routing import APIRoute
from prometheus_client import REGISTRY

from goal_engine.api.cache import ReadCache
from goal_engine.api.fastpath import FastReads
from goal_engine.api.main import create_app, create_read_pool
from goal_engine.core.config import Settings
from projections import analytics, queries
from tests.integration.helpers import bearer
from tests.integration.test_analytics import Journey, make_journeys, project
from tests.tokens import BAD_TOKENS, TEST_SECRET, without_scopes

pytestmark = pytest.mark.integration

T0 = datetime(2026, 10, 1, tzinfo=UTC)
#: The cached routes, each with a query of its own (the window ends at a fixed instant).
READS = (
    ("stats", "/api/v1/workflows/wf/goals/stats", {}),
    (
        "stats",
        "/api/v1/workflows/wf/goals/stats",
        {"from": "2026-10-02T00:30:00Z", "to": "2026-10-20T00:00:00+00:00", "interval": "day"},
    ),
    ("tenant-stats", "/api/v1/goals/stats", {}),
    ("achievements", "/api/v1/workflows/wf/goals/achievements", {"limit": "5"}),
)


def lookups(route: str, result: str) -> float:
    value = REGISTRY.get_sample_value("goal_engine_api_read_cache_total", {"route": route, "result": result})
    return value or 0.0


async def client(
    pool: asyncpg.Pool, cache_mib: int, fast_path: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(jwt_secret=TEST_SECRET, log_format="text", api_read_cache_mib=cache_mib)
    app = create_app(settings)
    if not fast_path:  # before the first request builds the middleware stack
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FastReads]
    app.state.settings, app.state.pool, app.state.read_pool = settings, pool, pool
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        yield http


@pytest.fixture
async def cached(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async for http in client(pool, cache_mib=8):
        yield http


@pytest.fixture
async def uncached(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async for http in client(pool, cache_mib=0):
        yield http


def token(tenant: str) -> dict[str, str]:
    return bearer(Settings(jwt_secret=TEST_SECRET), tenant)


async def test_a_kept_answer_is_never_stale_after_the_projector_commits(
    pool: asyncpg.Pool, cached: httpx.AsyncClient, uncached: httpx.AsyncClient
) -> None:
    tenant = f"cache-{uuid.uuid4().hex[:6]}"
    auth = token(tenant)
    await project(pool, tenant, "wf", make_journeys(random.Random(3), 40))
    before = []
    for route, path, params in READS:
        first = await cached.get(path, params=params, headers=auth)
        hits = lookups(route, "hit")
        again = await cached.get(path, params=params, headers=auth)
        assert first.status_code == again.status_code == 200, first.text
        assert again.json() == first.json() == (await uncached.get(path, params=params, headers=auth)).json()
        assert lookups(route, "hit") == hits + 1  # the second one was kept
        before.append(first.json())

    # The projector commits two more converted enrollments: one inside the window, one newest of all.
    later = [T0 + timedelta(days=12, minutes=7), T0 + timedelta(days=60)]
    await project(
        pool, tenant, "wf", [Journey(at, (("tag_added", at + timedelta(hours=3)),)) for at in later]
    )

    for (route, path, params), was in zip(READS, before, strict=True):
        misses = lookups(route, "miss")
        now = (await cached.get(path, params=params, headers=auth)).json()
        assert now == (await uncached.get(path, params=params, headers=auth)).json()
        assert now != was, f"{path} {params}: the kept answer was served after the commit"
        assert lookups(route, "miss") == misses + 1


async def test_keys_hold_the_tenant(pool: asyncpg.Pool, cached: httpx.AsyncClient) -> None:
    mine, other = (f"{who}-{uuid.uuid4().hex[:6]}" for who in ("mine", "other"))
    await project(pool, mine, "wf", make_journeys(random.Random(5), 30))
    for route, path, params in READS:
        assert (await cached.get(path, params=params, headers=token(mine))).status_code == 200
        theirs = await cached.get(path, params=params, headers=token(other))
        # Not my kept answer: their own (no such workflow, no workflows).
        if route == "tenant-stats":
            assert theirs.json() == {"workflows": [], "total": 0}
        else:
            assert theirs.status_code == 404, theirs.text


async def test_a_window_up_to_now_is_never_kept_but_its_rollups_are(
    pool: asyncpg.Pool, cached: httpx.AsyncClient, uncached: httpx.AsyncClient
) -> None:
    tenant = f"now-{uuid.uuid4().hex[:6]}"
    journeys = make_journeys(random.Random(9), 10)
    await project(pool, tenant, "wf", journeys)
    uncounted, hits = lookups("stats", "uncached"), lookups("stats", "hit")
    kept, read = lookups("window-rollups", "hit"), lookups("window-rollups", "miss")
    path, params = "/api/v1/workflows/wf/goals/stats", {"from": "2026-10-01T00:00:00Z", "interval": "day"}

    async def both() -> dict[str, Any]:
        answer = await cached.get(path, params=params, headers=token(tenant))
        assert answer.status_code == 200, answer.text
        assert answer.json() == (await uncached.get(path, params=params, headers=token(tenant))).json()
        return cast(dict[str, Any], answer.json())

    for _ in range(2):
        await both()
    # The clock moves the answer (to defaults to now): read each time, never kept; its whole
    # days and hours were, from the first read (unless the hour ended in between).
    assert lookups("stats", "uncached") == uncounted + 4 and lookups("stats", "hit") == hits  # both apps
    assert lookups("window-rollups", "hit") + lookups("window-rollups", "miss") == kept + read + 2
    assert lookups("window-rollups", "hit") >= kept + 1 or datetime.now(UTC).minute == 0

    # A commit inside the window: the kept rollups are read again, and the answer has it.
    at = T0 + timedelta(days=3, minutes=5)
    before = lookups("window-rollups", "miss")
    journeys.append(Journey(at, (("tag_added", at + timedelta(hours=2)),)))
    await project(pool, tenant, "wf", journeys)  # the others again: redelivered, counted once
    assert (await both())["goals_achieved"] == sum(1 for j in journeys if j.exited_at)
    assert lookups("window-rollups", "miss") == before + 1


@pytest.fixture
async def routed(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its fast path (fastpath.py) nor a cache: every request through FastAPI's route."""
    async for http in client(pool, cache_mib=0, fast_path=False):
        yield http


async def test_plain_reads_skip_fastapi_with_the_route_s_bytes_and_headers(
    pool: asyncpg.Pool,
    cached: httpx.AsyncClient,
    routed: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fastpath.py: a plain request of a cached route, kept or read, never enters FastAPI's routing."""
    tenant = f"fast-{uuid.uuid4().hex[:6]}"
    auth = token(tenant)
    await project(pool, tenant, "wf", make_journeys(random.Random(11), 20))
    handled = []
    handle = APIRoute.handle

    async def counted(self: APIRoute, *args: Any) -> None:
        handled.append(self.path)
        await handle(self, *args)

    monkeypatch.setattr(APIRoute, "handle", counted)
    for _, path, params in READS:
        want = await routed.get(path, params=params, headers=auth)
        assert len(handled) == 1
        read, kept = [await cached.get(path, params=params, headers=auth) for _ in ("miss", "hit")]
        assert read.status_code == kept.status_code == want.status_code == 200
        assert read.content == kept.content == want.content
        assert read.headers.items() == kept.headers.items() == want.headers.items()
        assert handled.pop() and not handled, f"{path} {params} went through the route"


async def test_every_refusal_is_still_the_route_s(
    pool: asyncpg.Pool, cached: httpx.AsyncClient, routed: httpx.AsyncClient
) -> None:
    """Bad tokens, a missing scope, odd queries, unknown workflows, answers kept or not: the
    same status and body as the route's with no fast path and no cache."""
    workflow = f"wf-{uuid.uuid4().hex[:6]}"
    await project(pool, "victim", workflow, make_journeys(random.Random(13), 10))
    good = token("victim")
    paths = {
        "stats": f"/api/v1/workflows/{workflow}/goals/stats",
        "tenant-stats": "/api/v1/goals/stats",
        "achievements": f"/api/v1/workflows/{workflow}/goals/achievements?limit=50",
    }
    for path in paths.values():  # kept now, for the tenant every bad token below names
        assert (await cached.get(path, headers=good)).status_code == 200
    settings = Settings(jwt_secret=TEST_SECRET)
    headers = [
        {"Authorization": f"Bearer {t}"} if (t := bad(TEST_SECRET)) else {} for bad in BAD_TOKENS.values()
    ]
    headers += [
        without_scopes(settings, "victim"),
        {"Authorization": good["Authorization"].replace("Bearer", "bearer")},
    ]
    headers += [{"Authorization": good["Authorization"] + " x"}, token("victim-not")]
    requests = [(path, h) for path in paths.values() for h in headers]
    achievements = paths["achievements"].split("?")[0]
    odd = ["?limit=50&limit=50", "?limit=050", "?limit=0", "?limit=501", "?limit=500", "?limit=50&x=1"]
    odd += ["?limit=5%30", "?limit=1000", "/"]
    requests += [(achievements + q, good) for q in odd]
    window = "?from=2026-10-02T00:00:00Z&to=2026-10-09T00:00:00%2B00:00"
    odd = ["?intervall=day", "?from=", "/", window, window + "&interval=day", window + "&interval=days"]
    odd += [window + "&interval=day&interval=day", window + "&from=2026-10-03T00:00:00Z", "?to=2026-10-02"]
    odd += ["?from=2026-10-09T00:00:00Z&to=2026-10-09T00:00:00Z", "?from=1&interval=hour", "?interval=hour"]
    odd += ["?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&interval=hour", "?from=2026-10-02T00:00Z"]
    requests += [(paths["stats"] + q, good) for q in odd]
    requests += [(paths["tenant-stats"] + q, good) for q in ("?x=1", "/")]
    for other in ("wf-none", "wf%01x", "x" * 201):  # unknown to the tenant, or not an id
        requests += [(f"/api/v1/workflows/{other}/goals/{what}", good) for what in ("stats", "achievements")]
        requests += [(f"/api/v1/workflows/{other}/goals/stats{window}&interval=day", good)]
    for path, h in requests:
        for _ in ("first", "again"):  # the second time with whatever the first kept
            got, want = await cached.get(path, headers=h), await routed.get(path, headers=h)
            assert (got.status_code, got.content) == (want.status_code, want.content), (path, h)


async def test_the_read_pool_plans_each_statement_once(database_url: str) -> None:
    """main.py: the read routes' sessions keep one generic plan per statement."""
    read_pool = await create_read_pool(database_url)
    try:
        assert await read_pool.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
    finally:
        await read_pool.close()


async def test_a_page_holds_each_achievement_s_own_documents(pool: asyncpg.Pool) -> None:
    """queries.achievements parses a page's documents in one go: each row keeps its own."""
    tenant = f"docs-{uuid.uuid4().hex[:6]}"
    await project(pool, tenant, "wf", make_journeys(random.Random(17), 30))
    rows = await pool.fetch(
        "SELECT id::text, trigger_event::text, metadata::text FROM workflow_goal_achievements "
        "WHERE tenant_id = $1 ORDER BY achieved_at DESC, id DESC",
        tenant,
    )
    page = await queries.achievements(pool, tenant, "wf", len(rows), None)
    assert len(rows) > 5 and len({r["trigger_event"] for r in rows}) == len(rows)
    assert [(a["id"], a["trigger_event"], a["metadata"]) for a in page] == [
        (r["id"], json.loads(r["trigger_event"]), json.loads(r["metadata"])) for r in rows
    ]
    assert await queries.achievements(pool, f"{tenant}-none", "wf", 50, None) == []


@pytest.mark.parametrize("limit", [1, 7, 40, 500])
async def test_pages_read_the_recent_month_first_and_are_the_whole_log_s(
    pool: asyncpg.Pool, limit: int
) -> None:
    """queries.achievements reads the 31 days before the position first and the whole log only
    when those hold too few: paged through with cursors, the pages are the log in order, both
    where the recent days fill a page and where they do not (months apart, ties included)."""
    tenant, now = f"pages-{uuid.uuid4().hex[:6]}", datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(limit)
    times = [
        now - timedelta(days=rng.choice([0, 1, 20, 33, 45, 90, 200]), hours=rng.randrange(24))
        for _ in range(60)
    ]
    times += [now - timedelta(days=40)] * 3  # the same instant: the id orders them
    journeys = [Journey(t - timedelta(hours=2), (("tag_added", t),)) for t in times]
    await project(pool, tenant, "wf", journeys)
    want = await pool.fetch(
        "SELECT id::text FROM workflow_goal_achievements WHERE tenant_id = $1 "
        "ORDER BY achieved_at DESC, id DESC",
        tenant,
    )
    pages: list[list[str]] = []
    position = None
    while page := await queries.achievements(pool, tenant, "wf", limit, position):
        pages.append([a["id"] for a in page])
        position = (page[-1]["achieved_at"], page[-1]["id"])
    assert [i for p in pages for i in p] == [r["id"] for r in want] and len(want) == len(times)
    assert all(len(p) == limit for p in pages[:-1]), [len(p) for p in pages]  # full pages only


class CountingPool:
    """The real pool, with the statements run on it counted."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.statements = pool, 0

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements += 1
        return await self.pool.fetchval(sql, *args)


async def test_a_miss_reads_its_snapshot_with_its_rows(pool: asyncpg.Pool) -> None:
    """cache.py: with nothing kept for a key, the read runs at once and its own snapshot is the
    key's; only a kept answer costs the snapshot statement that checks it."""
    tenant = f"snap-{uuid.uuid4().hex[:6]}"
    await project(pool, tenant, "wf", make_journeys(random.Random(19), 10))
    cache, counting = ReadCache(1 << 20), CountingPool(pool)
    reads = []

    async def read() -> tuple[bytes, str]:
        answer, snapshot, _ = await analytics.read_workflow_stats(pool, tenant, "wf")
        reads.append(snapshot)
        return json.dumps(answer).encode(), snapshot

    counted = cast(asyncpg.Pool, counting)
    first = await cache.answer(counted, "stats", ("t", tenant), read)
    assert (counting.statements, len(reads)) == (0, 1)
    assert await cache.answer(counted, "stats", ("t", tenant), read) == first  # kept: checked, not read
    assert (counting.statements, len(reads)) == (1, 1)
    await pool.fetchval("SELECT pg_current_xact_id()")  # a transaction commits: a new snapshot
    assert await cache.answer(counted, "stats", ("t", tenant), read) == first  # same rows, read again
    assert (counting.statements, len(reads)) == (2, 2) and reads[0] != reads[1]
