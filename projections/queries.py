"""Reads of the read models for the API; every query is tenant-scoped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg


async def read_workflow_known(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, workflow_id: str
) -> tuple[bool, str]:
    """Whether the tenant has this workflow (configured through the API, or enrolled into),
    and the snapshot text it read at (for the read cache)."""
    row = await db.fetchrow(
        """
        SELECT EXISTS (SELECT 1 FROM workflows WHERE tenant_id = $1 AND workflow_id = $2)
            OR EXISTS (SELECT 1 FROM workflow_stats WHERE tenant_id = $1 AND workflow_id = $2),
            pg_current_snapshot()::text
        """,
        tenant_id,
        workflow_id,
    )
    return bool(row[0]), row[1]


async def workflow_publication(pool: asyncpg.Pool, tenant_id: str, workflow_id: str) -> dict[str, Any] | None:
    """The workflow's settings in the write model beside what the engine was last published.

    One statement, so both versions come from the same snapshot of the database;
    ``live`` is whether the engine has the latest change.
    """
    row = await pool.fetchrow(
        """
        SELECT w.workflow_id, w.logic, w.status, w.version,
               p.version AS published_version, p.published_at
        FROM workflows w
        LEFT JOIN published_workflow_configs p
               ON p.tenant_id = w.tenant_id AND p.workflow_id = w.workflow_id
        WHERE w.tenant_id = $1 AND w.workflow_id = $2
        """,
        tenant_id,
        workflow_id,
    )
    if row is None:
        return None
    return {**dict(row), "live": row["published_version"] == row["version"]}


async def enrollment(pool: asyncpg.Pool, tenant_id: str, enrollment_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        """
        SELECT enrollment_id, workflow_id, contact_id, status, enrolled_at, ended_at, goal_config_ids
        FROM enrollments WHERE tenant_id = $1 AND enrollment_id = $2
        """,
        tenant_id,
        enrollment_id,
    )
    return dict(row) if row is not None else None


_RECENT = timedelta(days=31)
_FIRST = datetime(1, 1, 1, tzinfo=UTC)  # before anything a time check lets in
_PAGE = """
SELECT id, workflow_id, workflow_enrollment_id, contact_id, goal_config_id, goal_type,
       achieved_at, trigger_event, metadata
FROM workflow_goal_achievements
WHERE tenant_id = $1 AND workflow_id = $2 AND achieved_at >= $6
  AND ($3::timestamptz IS NULL OR (achieved_at, id) < ($3, $4::uuid))
ORDER BY achieved_at DESC, id DESC
LIMIT $5
"""


async def achievements(
    db: asyncpg.Pool | asyncpg.Connection,
    tenant_id: str,
    workflow_id: str,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[dict[str, Any]]:
    """The achievement log, newest first; ``after`` is the (achieved_at, id) of the last row seen.

    Read first over the 31 days before the position (or now), and over the whole log only
    when those hold fewer than ``limit`` rows: a page is then the same rows either way,
    since everything the first read leaves out is older than all it found. Why: read over
    the whole log at once, the page merges every monthly partition and so fetches the
    newest row of each from its table, a random page of each month, seldom cached (at 10M
    achievements, 707 ms p99 with those months out of memory). The first read's bound
    prunes the older months before they are read, in the generic plan too.
    """
    position, tiebreak = after if after else (None, None)
    recent = (position or datetime.now(UTC)) - _RECENT
    rows = await db.fetch(_PAGE, tenant_id, workflow_id, position, tiebreak, limit, recent)
    if len(rows) < limit:
        rows = await db.fetch(_PAGE, tenant_id, workflow_id, position, tiebreak, limit, _FIRST)
    # Every row's two documents in one parse: the same parser, a page's hundred calls fewer.
    documents = iter(
        json.loads("[" + ",".join(d for r in rows for d in (r["trigger_event"], r["metadata"])) + "]")
    )
    return [
        {**dict(r), "id": str(r["id"]), "trigger_event": next(documents), "metadata": next(documents)}
        for r in rows
    ]


async def audit_entries(
    pool: asyncpg.Pool, tenant_id: str, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    """The tenant's audit log, newest first; ``before_id`` is the id of the last entry seen."""
    rows = await pool.fetch(
        """
        SELECT id, at, actor, action, entity_type, entity_id, before, after FROM audit_log
        WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2)
        ORDER BY id DESC LIMIT $3
        """,
        tenant_id,
        before_id,
        limit,
    )
    return [
        {**dict(r), "before": _json_or_none(r["before"]), "after": _json_or_none(r["after"])} for r in rows
    ]


def _json_or_none(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


# --- what the console lists: the catalog and the tenant's workflows -----------------


def _like(q: str) -> str:
    """A case-insensitive substring pattern for ILIKE, the user's % and _ taken literally."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def catalog_entities(
    pool: asyncpg.Pool,
    tenant_id: str,
    *,
    kind: str | None,
    q: str | None,
    parent_id: str | None,
    limit: int,
    after: tuple[str, str, str] | None,
) -> list[dict[str, Any]]:
    """The tenant's catalog (not deleted) by name; ``q`` matches the name or the id.

    ``after`` is the (name, kind, entity_id) of the last row seen: keyset pages
    stay stable while the projector adds entities.
    """
    rows = await pool.fetch(
        """
        SELECT kind, entity_id, name, parent_id, changed_at FROM catalog_entities
        WHERE tenant_id = $1 AND NOT deleted
          AND ($2::text IS NULL OR kind = $2)
          AND ($3::text IS NULL OR name ILIKE $3 OR entity_id ILIKE $3)
          AND ($4::text IS NULL OR parent_id = $4)
          AND ($5::text IS NULL OR (name, kind, entity_id) > ($5, $6::text, $7::text))
        ORDER BY name, kind, entity_id
        LIMIT $8
        """,
        tenant_id,
        kind,
        _like(q) if q else None,
        parent_id,
        *(after or (None, None, None)),
        limit,
    )
    return [dict(r) for r in rows]


#: What the workflows list may be ordered by (the API's ``sort`` values), each a SQL expression.
WORKFLOW_SORTS = {
    "workflow_id": "workflow_id",
    "status": "status",
    "total_enrolled": "total_enrolled",
    "goals_achieved": "goals_achieved",
    "conversion_rate": "conversion_rate",
}


async def workflow_overview(
    pool: asyncpg.Pool,
    tenant_id: str,
    *,
    q: str | None,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The tenant's workflows (configured or enrolled into) with status, goals and totals.

    One page of them, ordered by ``sort`` (a key of :data:`WORKFLOW_SORTS`,
    then the id), and how many match in all.
    """
    order = f"{WORKFLOW_SORTS[sort]} {'DESC' if descending else 'ASC'}, workflow_id"
    rows = await pool.fetch(
        f"""
        WITH ids AS (
            SELECT workflow_id FROM workflows WHERE tenant_id = $1
            UNION SELECT workflow_id FROM workflow_stats WHERE tenant_id = $1
        ), overview AS (
            SELECT ids.workflow_id,
                   coalesce(w.status, 'inactive') AS status, coalesce(w.logic, 'any') AS logic,
                   (SELECT count(*) FROM workflow_goals g
                     WHERE g.tenant_id = $1 AND g.workflow_id = ids.workflow_id) AS goals,
                   coalesce(s.total_enrolled, 0) AS total_enrolled,
                   coalesce(s.goals_achieved, 0) AS goals_achieved,
                   coalesce(round(100.0 * s.goals_achieved / nullif(s.total_enrolled, 0), 1), 0.0)
                       AS conversion_rate,
                   s.timed_exits, s.time_to_goal_seconds
            FROM ids
            LEFT JOIN workflows w ON w.tenant_id = $1 AND w.workflow_id = ids.workflow_id
            LEFT JOIN workflow_stats s ON s.tenant_id = $1 AND s.workflow_id = ids.workflow_id
            WHERE $2::text IS NULL OR ids.workflow_id ILIKE $2
        )
        SELECT *, count(*) OVER () AS matching FROM overview ORDER BY {order} LIMIT $3 OFFSET $4
        """,
        tenant_id,
        _like(q) if q else None,
        limit,
        offset,
    )
    total = int(rows[0]["matching"]) if rows else 0
    if not rows and offset:
        # Past the end: the count still tells the client how many there are.
        total = int(
            await pool.fetchval(
                """
                SELECT count(*) FROM (SELECT workflow_id FROM workflows WHERE tenant_id = $1
                    UNION SELECT workflow_id FROM workflow_stats WHERE tenant_id = $1) ids
                WHERE $2::text IS NULL OR workflow_id ILIKE $2
                """,
                tenant_id,
                _like(q) if q else None,
            )
        )
    return [_overview_row(r) for r in rows], total


def _overview_row(r: asyncpg.Record) -> dict[str, Any]:
    timed = r["timed_exits"] or 0
    return {
        "workflow_id": r["workflow_id"],
        "status": r["status"],
        "logic": r["logic"],
        "goals": int(r["goals"]),
        "total_enrolled": int(r["total_enrolled"]),
        "goals_achieved": int(r["goals_achieved"]),
        "conversion_rate": float(r["conversion_rate"]),
        "avg_time_to_goal_hours": round(r["time_to_goal_seconds"] / timed / 3600, 2) if timed else None,
    }
