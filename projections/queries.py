"""Reads of the read models for the API; every query is tenant-scoped."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg


async def workflow_known(db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, workflow_id: str) -> bool:
    """Whether the tenant has this workflow: configured through the API, or enrolled into."""
    known = await db.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM workflows WHERE tenant_id = $1 AND workflow_id = $2)
            OR EXISTS (SELECT 1 FROM workflow_stats WHERE tenant_id = $1 AND workflow_id = $2)
        """,
        tenant_id,
        workflow_id,
    )
    return bool(known)


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


async def achievements(
    pool: asyncpg.Pool, tenant_id: str, workflow_id: str, limit: int, after: tuple[datetime, str] | None
) -> list[dict[str, Any]]:
    """The achievement log, newest first; ``after`` is the (achieved_at, id) of the last row seen."""
    rows = await pool.fetch(
        """
        SELECT id, workflow_id, workflow_enrollment_id, contact_id, goal_config_id, goal_type,
               achieved_at, trigger_event, metadata
        FROM workflow_goal_achievements
        WHERE tenant_id = $1 AND workflow_id = $2
          AND ($3::timestamptz IS NULL OR (achieved_at, id) < ($3, $4::uuid))
        ORDER BY achieved_at DESC, id DESC
        LIMIT $5
        """,
        tenant_id,
        workflow_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [
        {
            **dict(r),
            "id": str(r["id"]),
            "trigger_event": json.loads(r["trigger_event"]),
            "metadata": json.loads(r["metadata"]),
        }
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
