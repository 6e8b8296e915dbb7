"""SQL of the configuration write side; every function is one transaction.

Each reads what the rules need, asks ``goal_engine.domain.configuration`` whether
the change is allowed, and persists it: the row, its audit entry and an outbox
event, together or not at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from goal_engine.contract.events import (
    GoalConfig,
    GoalConfigured,
    WorkflowSnapshot,
    WorkflowStatusChanged,
    encode_event,
    make_event,
)
from goal_engine.contract.topics import Topic, workflow_key
from goal_engine.domain import ids
from goal_engine.domain.configuration import (
    CatalogEntry,
    CatalogLookup,
    ConfiguredGoal,
    GoalDraft,
    activation_violations,
    canonical,
    catalog_refs,
    check_goal,
)
from goal_engine.domain.configuration import Conflict as Conflict  # re-exported: the API maps them
from goal_engine.domain.configuration import Unprocessable as Unprocessable

SOURCE = "goal-engine/api"


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class Actor:
    tenant_id: str
    subject: str


_GOAL_COLUMNS = "id, workflow_id, goal_type, criteria, is_active, created_at, updated_at"


def _goal(row: asyncpg.Record) -> GoalConfig:
    return GoalConfig(
        id=str(row["id"]),
        workflow_id=row["workflow_id"],
        goal_type=row["goal_type"],
        criteria=json.loads(row["criteria"]),
        is_active=row["is_active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def list_goals(pool: asyncpg.Pool, tenant_id: str, workflow_id: str) -> list[GoalConfig]:
    async with pool.acquire() as conn:
        await _require_workflow(conn, tenant_id, workflow_id)
        return await _goals(conn, tenant_id, workflow_id)


async def create_goal(
    pool: asyncpg.Pool, actor: Actor, workflow_id: str, goal_type: str, criteria: Any
) -> GoalConfig:
    draft = GoalDraft(goal_type, canonical(goal_type, criteria))
    async with pool.acquire() as conn, conn.transaction():
        workflow = await _lock_workflow(conn, actor.tenant_id, workflow_id, create=True)
        goals = await _goals(conn, actor.tenant_id, workflow_id)
        armed = workflow["status"] == "active"
        catalog = await _catalog(conn, actor.tenant_id, [draft] if armed else [])
        check_goal(goals, draft, creating=True, armed=armed, catalog=catalog)
        row = await conn.fetchrow(
            f"""
            INSERT INTO workflow_goals (tenant_id, id, workflow_id, goal_type, criteria, created_by)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_GOAL_COLUMNS}
            """,
            actor.tenant_id,
            uuid.uuid4(),
            workflow_id,
            goal_type,
            json.dumps(draft.criteria),
            actor.subject,
        )
        goal = _goal(row)
        await _record_change(conn, actor, "goal.created", "goal", goal.id, None, goal)
        await _publish_goal_change(conn, actor.tenant_id, workflow_id, "created", goal)
        return goal


async def update_goal(
    pool: asyncpg.Pool,
    actor: Actor,
    workflow_id: str,
    goal_id: str,
    *,
    goal_type: str | None,
    criteria: Any | None,
    is_active: bool | None,
) -> GoalConfig:
    async with pool.acquire() as conn, conn.transaction():
        workflow = await _lock_workflow(conn, actor.tenant_id, workflow_id)
        goals = await _goals(conn, actor.tenant_id, workflow_id)
        before = next((g for g in goals if g.id == goal_id), None)
        if before is None:
            raise NotFound("goal not found")
        new_type = goal_type or before.goal_type
        draft = GoalDraft(
            new_type, canonical(new_type, criteria if criteria is not None else before.criteria), goal_id
        )
        armed = workflow["status"] == "active" and (before.is_active if is_active is None else is_active)
        catalog = await _catalog(conn, actor.tenant_id, [draft] if armed else [])
        others = [g for g in goals if g.id != goal_id]
        check_goal(others, draft, creating=False, armed=armed, catalog=catalog)
        row = await conn.fetchrow(
            f"""
            UPDATE workflow_goals SET goal_type = $3, criteria = $4,
                is_active = coalesce($5, is_active), updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING {_GOAL_COLUMNS}
            """,
            actor.tenant_id,
            uuid.UUID(goal_id),
            new_type,
            json.dumps(draft.criteria),
            is_active,
        )
        goal = _goal(row)
        await _record_change(conn, actor, "goal.updated", "goal", goal.id, before, goal)
        await _publish_goal_change(conn, actor.tenant_id, workflow_id, "updated", goal)
        return goal


async def delete_goal(pool: asyncpg.Pool, actor: Actor, workflow_id: str, goal_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _lock_workflow(conn, actor.tenant_id, workflow_id)
        row = await conn.fetchrow(
            f"""
            DELETE FROM workflow_goals WHERE tenant_id = $1 AND workflow_id = $2 AND id = $3
            RETURNING {_GOAL_COLUMNS}
            """,
            actor.tenant_id,
            workflow_id,
            _uuid_or_404(goal_id),
        )
        if row is None:
            raise NotFound("goal not found")
        goal = _goal(row)
        await _record_change(conn, actor, "goal.deleted", "goal", goal.id, goal, None)
        await _publish_goal_change(conn, actor.tenant_id, workflow_id, "deleted", goal)


async def set_logic(
    pool: asyncpg.Pool, actor: Actor, workflow_id: str, logic: Literal["any", "all"]
) -> WorkflowSnapshot:
    async with pool.acquire() as conn, conn.transaction():
        before = await _lock_workflow(conn, actor.tenant_id, workflow_id, create=True)
        await conn.execute(
            "UPDATE workflows SET logic = $3 WHERE tenant_id = $1 AND workflow_id = $2",
            actor.tenant_id,
            workflow_id,
            logic,
        )
        change = ({"logic": before["logic"]}, {"logic": logic})
        await _record_change(conn, actor, "goal_settings.updated", "workflow", workflow_id, *change)
        return await _publish_goal_change(conn, actor.tenant_id, workflow_id, "settings_updated", None)


async def set_status(
    pool: asyncpg.Pool, actor: Actor, workflow_id: str, status: Literal["active", "inactive"]
) -> WorkflowSnapshot:
    async with pool.acquire() as conn, conn.transaction():
        before = await _lock_workflow(conn, actor.tenant_id, workflow_id, create=status == "active")
        if status == "active":
            goals = await _goals(conn, actor.tenant_id, workflow_id)
            violations = activation_violations(goals, await _catalog(conn, actor.tenant_id, goals))
            if violations:
                raise Unprocessable(violations)
        await conn.execute(
            """
            UPDATE workflows SET status = $3,
                activated_at = CASE WHEN $3 = 'active' AND status <> 'active' THEN now()
                                    ELSE activated_at END
            WHERE tenant_id = $1 AND workflow_id = $2
            """,
            actor.tenant_id,
            workflow_id,
            status,
        )
        action = "workflow.activated" if status == "active" else "workflow.deactivated"
        change = ({"status": before["status"]}, {"status": status})
        await _record_change(conn, actor, action, "workflow", workflow_id, *change)
        snapshot = await _bump_version(conn, actor.tenant_id, workflow_id)
        topic = Topic.WORKFLOW_ACTIVATED if status == "active" else Topic.WORKFLOW_DEACTIVATED
        await _enqueue(
            conn, actor.tenant_id, topic, WorkflowStatusChanged(workflow_id=workflow_id, workflow=snapshot)
        )
        return snapshot


# --- internals ----------------------------------------------------------------------


def _uuid_or_404(goal_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(goal_id)
    except ValueError:
        raise NotFound("goal not found") from None


async def _catalog(
    conn: asyncpg.Connection, tenant_id: str, goals: Sequence[ConfiguredGoal]
) -> CatalogLookup:
    """The tenant's live catalog entries the goals reference, in one query, as a lookup."""
    refs = catalog_refs(goals)
    found: dict[tuple[str, str], CatalogEntry] = {}
    if refs:
        rows = await conn.fetch(
            """
            SELECT c.kind, c.entity_id, c.parent_id
            FROM unnest($2::text[], $3::text[]) AS r (kind, entity_id)
            JOIN catalog_entities c USING (kind, entity_id)
            WHERE c.tenant_id = $1 AND NOT c.deleted
            """,
            tenant_id,
            [r.kind for r in refs],
            [r.entity_id for r in refs],
        )
        found = {(r["kind"], r["entity_id"]): CatalogEntry(r["parent_id"]) for r in rows}
    return lambda kind, entity_id: found.get((kind, entity_id))


async def _goals(conn: asyncpg.Connection, tenant_id: str, workflow_id: str) -> list[GoalConfig]:
    rows = await conn.fetch(
        f"""
        SELECT {_GOAL_COLUMNS} FROM workflow_goals WHERE tenant_id = $1 AND workflow_id = $2
        ORDER BY created_at, id
        """,
        tenant_id,
        workflow_id,
    )
    return [_goal(r) for r in rows]


async def _require_workflow(conn: asyncpg.Connection, tenant_id: str, workflow_id: str) -> None:
    exists = await conn.fetchval(
        "SELECT true FROM workflows WHERE tenant_id = $1 AND workflow_id = $2", tenant_id, workflow_id
    )
    if not exists:
        raise NotFound("workflow not found")


async def _lock_workflow(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, *, create: bool = False
) -> asyncpg.Record:
    """Lock the workflow row for this transaction: its changes are serialised."""
    if create:
        await conn.execute(
            "INSERT INTO workflows (tenant_id, workflow_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            tenant_id,
            workflow_id,
        )
    row = await conn.fetchrow(
        "SELECT * FROM workflows WHERE tenant_id = $1 AND workflow_id = $2 FOR UPDATE", tenant_id, workflow_id
    )
    if row is None:
        raise NotFound("workflow not found")
    return row


async def _bump_version(conn: asyncpg.Connection, tenant_id: str, workflow_id: str) -> WorkflowSnapshot:
    wf = await conn.fetchrow(
        """
        UPDATE workflows SET version = version + 1, updated_at = now()
        WHERE tenant_id = $1 AND workflow_id = $2 RETURNING *
        """,
        tenant_id,
        workflow_id,
    )
    return WorkflowSnapshot(
        workflow_id=workflow_id,
        version=wf["version"],
        status=wf["status"],
        logic=wf["logic"],
        activated_at=wf["activated_at"],
        goals=await _goals(conn, tenant_id, workflow_id),
    )


async def _publish_goal_change(
    conn: asyncpg.Connection, tenant_id: str, workflow_id: str, operation: str, goal: GoalConfig | None
) -> WorkflowSnapshot:
    snapshot = await _bump_version(conn, tenant_id, workflow_id)
    data = GoalConfigured.model_validate({"operation": operation, "goal": goal, "workflow": snapshot})
    await _enqueue(conn, tenant_id, Topic.GOAL_CONFIGURED, data)
    return snapshot


async def _enqueue(
    conn: asyncpg.Connection,
    tenant_id: str,
    topic: Topic,
    data: GoalConfigured | WorkflowStatusChanged,
) -> None:
    workflow_id = data.workflow.workflow_id
    event = make_event(
        topic,
        event_id=ids.config_event_id(tenant_id, workflow_id, data.workflow.version),
        tenant_id=tenant_id,
        time=datetime.now(UTC),
        data=data,
        source=SOURCE,
    )
    await conn.execute(
        "INSERT INTO outbox (tenant_id, topic, key, value) VALUES ($1, $2, $3, $4)",
        tenant_id,
        str(topic),
        workflow_key(tenant_id, workflow_id),
        encode_event(event),
    )
    # Wakes the relay at commit, so a change reaches Kafka in milliseconds.
    await conn.execute("NOTIFY goal_engine_outbox")


async def _record_change(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    before: Any,
    after: Any,
) -> None:
    await conn.execute(
        """
        INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, before, after)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        actor.tenant_id,
        actor.subject,
        action,
        entity_type,
        entity_id,
        _json(before),
        _json(after),
    )


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str)
