"""The API benchmark (``python -m goal_engine.bench.api``) cannot rot: a small run end to end,
and its SQL seed against the projector's own fold of the same log."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from goal_engine.bench.api.bulk import table_indexes
from goal_engine.bench.api.seed import AGGREGATES, BULK_TABLES, Seeder, plan
from goal_engine.bench.api.warm import READ_TABLES
from goal_engine.contract.events import (
    EnrollmentEnded,
    EnrollmentStarted,
    ExitGoal,
    GoalAchieved,
    TriggerEvent,
    encode_event,
    make_event,
)
from goal_engine.contract.topics import Topic
from goal_engine.core.config import REPO_ROOT
from goal_engine.devstack.postgres import create_database, drop_database
from goal_engine.devstack.processes import child_env
from goal_engine.domain import ids
from projections.migrate import upgrade_async
from projections.projector import Projector

pytestmark = pytest.mark.integration


SMALL = ["--achievements", "2000", "--tenants", "2", "--workflows-per-tenant", "3"]


def _bench(server_url: str, *args: str) -> tuple[str, dict[str, Any]]:
    """Run the bench with ``args``; its stdout and its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "goal_engine.bench.api", *args],
        env=child_env({"GOAL_ENGINE_DATABASE_URL": server_url}),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    *_, report_line, last = done.stdout.strip().splitlines()
    assert re.fullmatch(r"bench-api: worst p99 \d+\.\d ms over 2,000 achievements", last), last
    return done.stdout, json.loads(Path(report_line.removeprefix("report: ")).read_text())


def test_a_small_run_passes_and_reports_every_endpoint(postgres_server_url: str) -> None:
    """2,000 achievements, 2 s of load: exit 0, a check with no mismatch, no error, sane counts."""
    args = [*SMALL, "--clients", "4", "--duration", "2", "--warmup", "0.5", "--progress-every", "1"]
    stdout, report = _bench(postgres_server_url, *args)
    assert "seed: " in stdout and "rows/s" in stdout  # the progress lines
    assert report["ok"] and report["error"] is None
    assert report["seed"]["achievements"] == 2000 and report["seed"]["workflows"] == 6
    assert report["seed"]["enrollments"] > 2000  # the ones that did not convert too
    assert report["check"]["mismatches"] == [] and report["check"]["compared"] >= 10
    # The routes' tables, their indexes and the log's indexes, in shared_buffers before the load.
    warm = report["warm"]
    assert warm["skipped"] is None and warm["left_cold"] == [], warm
    assert warm["relations"] >= 2 * len(READ_TABLES) and warm["mib"] > 0
    assert warm["recent_rows"] > 0  # every workflow's last days of the hourly rollups and enrollments
    assert "prewarm: " in stdout
    measure = report["measure"]
    assert measure["non_2xx"] == 0 and measure["clients"] == 4
    assert {e["name"] for e in measure["endpoints"]} == {
        "stats",
        "stats-window",
        "stats-now",
        "tenant-stats",
        "achievements",
    }
    for endpoint in measure["endpoints"]:
        assert endpoint["requests"] > 0 and endpoint["non_2xx"] == 0, endpoint
        latency = endpoint["latency"]
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"] < 10_000
    assert measure["requests"] == sum(e["requests"] for e in measure["endpoints"])
    # The API's cache counters over the load: every cached read answered, some from the cache
    # (6 workflows, 2 tenants: the same all-time stats and summaries asked again and again).
    cache = measure["read_cache"]
    assert set(cache) == {"stats", "tenant-stats", "achievements", "window-rollups"}, cache
    assert cache["tenant-stats"].get("hit", 0) > 0 and cache["stats"].get("miss", 0) > 0, cache
    assert cache["stats"].get("uncached", 0) > 0, cache  # stats-now: up to now, never kept...
    assert cache["window-rollups"].get("hit", 0) > 0, cache  # ...but its whole days and hours are
    assert "api's read cache" in stdout
    # The host's speed before and after the load, in the JSON and in the table.
    assert measure["python_speed_before"] > 0 and measure["python_speed_after"] > 0
    assert "host speed" in stdout
    assert 1.9 < measure["seconds"] < 15  # the window, and the last answers after it
    # The run's database is gone.
    name = report["setup"]["database"].rsplit("/", 1)[1]
    assert not asyncio.run(_database_exists(postgres_server_url, name))


def test_reuse_seed_seeds_once_then_reuses_the_kept_database(postgres_server_url: str) -> None:
    args = [*SMALL, "--clients", "2", "--duration", "0.5", "--warmup", "0", "--reuse-seed"]
    _, first = _bench(postgres_server_url, *args)
    name = first["setup"]["database"].rsplit("/", 1)[1]
    try:
        assert name.startswith("goal_engine_apibench_kept_2000_2x3_12m_")
        assert not first["seed"]["reused"] and first["setup"]["database_kept"]
        stdout, second = _bench(postgres_server_url, *args, "--api-workers", "2", "--no-prewarm")
        assert "reusing the kept seed" in stdout and second["seed"]["reused"]
        assert first["warm"]["relations"] > 0 and second["warm"] is None
        assert second["setup"]["api_workers"] == 2 and second["measure"]["non_2xx"] == 0
        assert second["setup"]["database"] == first["setup"]["database"]
        assert {k: v for k, v in second["seed"].items() if k != "reused"} == {
            k: v for k, v in first["seed"].items() if k != "reused"
        }
        assert second["check"]["mismatches"] == [] and second["check"]["compared"] >= 10  # checked again
        _, other = _bench(postgres_server_url, *[*args[:-1], "--months", "11", "--reuse-seed"])
        assert other["setup"]["database"] != first["setup"]["database"] and not other["seed"]["reused"]
        asyncio.run(drop_database(postgres_server_url, other["setup"]["database"].rsplit("/", 1)[1]))
    finally:
        asyncio.run(drop_database(postgres_server_url, name))


async def _database_exists(server_url: str, name: str) -> bool:
    conn = await asyncpg.connect(server_url)
    try:
        return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name))
    finally:
        await conn.close()


@pytest.fixture
async def two_databases(
    postgres_server_url: str,
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Pool]]:
    """Two connections to a migrated database for the seed, a pool on another for the projector."""
    names = [f"goal_engine_seedcheck_{uuid.uuid4().hex[:8]}_{side}" for side in ("seed", "fold")]
    urls = [await create_database(postgres_server_url, name) for name in names]
    for url in urls:
        await upgrade_async(url)
    conn, lane = await asyncpg.connect(urls[0]), await asyncpg.connect(urls[0])
    pool = await asyncpg.create_pool(urls[1], min_size=1, max_size=2)
    try:
        yield conn, lane, pool
    finally:
        await conn.close()
        await lane.close()
        await pool.close()
        for name in names:
            await drop_database(postgres_server_url, name)


async def test_the_seeded_aggregates_are_what_the_projector_folds_from_the_seeded_log(
    two_databases: tuple[asyncpg.Connection, asyncpg.Connection, asyncpg.Pool],
) -> None:
    seeded, lane, folded = two_databases
    workflows = plan(300, tenants=2, workflows_per_tenant=3)
    await Seeder(seeded, workflows, months=2, end=datetime.now(UTC), lanes=[lane]).run(lambda line: None)
    # The indexes dropped for the load are back, as the migrations define them, and valid.
    async with folded.acquire() as migrated:
        assert await table_indexes(seeded, BULK_TABLES) == await table_indexes(migrated, BULK_TABLES)
    assert len(await table_indexes(seeded, BULK_TABLES)) >= len(BULK_TABLES)
    assert await seeded.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready") == 0
    # Every partition of the log has its indexes again (built through its parent's).
    per_partition = (
        "SELECT c.relname, count(x.indexrelid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "LEFT JOIN pg_index x ON x.indrelid = c.oid "
        "WHERE i.inhparent = 'workflow_goal_achievements'::regclass GROUP BY c.relname ORDER BY 1"
    )
    partitions = await seeded.fetch(per_partition)
    assert partitions and partitions == await folded.fetch(per_partition)
    assert all(count >= 2 for _, count in partitions)
    records = await _log_as_records(seeded)
    projector = Projector(folded, "")
    for i in range(0, len(records), 500):
        await projector.process_batch(records[i : i + 500])  # type: ignore[arg-type]

    for table in [*AGGREGATES, "enrollments"]:
        want = await _rows(folded, table)
        got = await _rows(seeded, table)
        assert want and len(got) == len(want), table
        differ = [(g, w) for g, w in zip(got, want, strict=True) if not _same(g, w)]
        assert not differ, (table, differ[:3])
    columns = "id, workflow_id, workflow_enrollment_id, contact_id, goal_config_id, goal_type, achieved_at"
    query = f"SELECT tenant_id, {columns} FROM workflow_goal_achievements ORDER BY tenant_id, id"
    assert await seeded.fetch(query) == await folded.fetch(query)


async def _rows(db: asyncpg.Connection | asyncpg.Pool, table: str) -> list[tuple[Any, ...]]:
    """Every row, sorted by its values other than floats (its key is among them)."""
    rows = [tuple(r.values()) for r in await db.fetch(f"SELECT * FROM {table}")]
    return sorted(rows, key=lambda row: repr([v for v in row if not isinstance(v, float)]))


def _same(got: object, want: object) -> bool:
    """Equal, but floats only to 1e-12 relative: they are sums of seconds, which the seed and the
    fold add in different orders. (Rounding both to the millisecond was flaky: a sum that lands
    on a half millisecond rounds one way in one order and the other way in the other.)"""
    if isinstance(got, float) and isinstance(want, float):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-9)
    if isinstance(got, list | tuple) and isinstance(want, list | tuple):
        return len(got) == len(want) and all(map(_same, got, want))
    return got == want


async def _log_as_records(conn: asyncpg.Connection) -> list[object]:
    """The seeded log as the worker and the other modules would have published it."""
    enrollments = await conn.fetch("SELECT * FROM enrollments ORDER BY enrolled_at")
    achievements = {
        (r["tenant_id"], r["workflow_enrollment_id"]): r
        for r in await conn.fetch("SELECT * FROM workflow_goal_achievements")
    }
    events = []
    for e in enrollments:
        tenant, contact = e["tenant_id"], e["contact_id"]
        started = EnrollmentStarted(workflow_id=e["workflow_id"], enrollment_id=e["enrollment_id"])
        events.append(
            (Topic.ENROLLMENT_STARTED, str(uuid.uuid4()), tenant, contact, e["enrolled_at"], started)
        )
        if e["status"] == "completed_goal":
            a = achievements[(tenant, e["enrollment_id"])]
            trigger = json.loads(a["trigger_event"])
            achieved = GoalAchieved(
                id=str(a["id"]),
                workflow_id=a["workflow_id"],
                workflow_enrollment_id=a["workflow_enrollment_id"],
                contact_id=contact,
                goal_config_id=a["goal_config_id"],
                goal_type=a["goal_type"],
                achieved_at=a["achieved_at"],
                trigger_event=TriggerEvent.model_validate(trigger),
                metadata=json.loads(a["metadata"]),
                enrolled_at=e["enrolled_at"],
            )
            events.append((Topic.GOAL_ACHIEVED, achieved.id, tenant, contact, a["achieved_at"], achieved))
            exited = ExitGoal(
                workflow_id=e["workflow_id"],
                workflow_enrollment_id=e["enrollment_id"],
                contact_id=contact,
                goal_config_ids=e["goal_config_ids"],
                exited_at=e["ended_at"],
                enrolled_at=e["enrolled_at"],
            )
            exit_id = ids.exit_id(tenant, e["enrollment_id"])
            events.append((Topic.EXIT_GOAL, exit_id, tenant, contact, e["ended_at"], exited))
        elif e["status"] != "active":
            ended = EnrollmentEnded(
                workflow_id=e["workflow_id"], enrollment_id=e["enrollment_id"], reason=e["status"]
            )
            events.append((Topic.ENROLLMENT_ENDED, str(uuid.uuid4()), tenant, contact, e["ended_at"], ended))
    records: list[object] = []
    for offset, (topic, event_id, tenant, contact, time, data) in enumerate(events):
        event = make_event(topic, event_id=event_id, tenant_id=tenant, time=time, subject=contact, data=data)
        value = encode_event(event)
        records.append(
            type("Record", (), {"topic": str(topic), "partition": 0, "offset": offset, "value": value})
        )
    return records
