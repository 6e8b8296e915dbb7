"""Activation (R9, R10, R13), the achievement log and enrollment status (R8)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from goal_engine.api import reads
from goal_engine.api.cache import json_response
from goal_engine.api.deps import (
    EnrollmentId,
    PoolDep,
    ReadCacheDep,
    Reader,
    ReadPoolDep,
    Search,
    WorkflowId,
    Writer,
    actor,
)
from goal_engine.api.errors import ERROR_RESPONSES, NOT_FOUND
from goal_engine.api.pagination import Cursor, Limit, decode_cursor
from goal_engine.api.schemas import (
    AchievementPage,
    EnrollmentOut,
    WorkflowPage,
    WorkflowRow,
    WorkflowStatus,
)
from goal_engine.configuration import store
from goal_engine.configuration.store import NotFound, Unprocessable
from projections import queries

router = APIRouter(
    prefix="/workflows/{workflow_id}", tags=["workflows"], responses=ERROR_RESPONSES | NOT_FOUND
)
#: The tenant's workflows as a collection (no workflow id in the path).
collection_router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)

Sort = Literal["workflow_id", "status", "total_enrolled", "goals_achieved", "conversion_rate"]


@collection_router.get("/workflows", response_model=WorkflowPage)
async def list_workflows(
    pool: PoolDep,
    who: Reader,
    q: Search = None,
    sort: Annotated[Sort, Query(description="the column to order by (then the id)")] = "workflow_id",
    order: Annotated[Literal["asc", "desc"], Query(description="ascending or descending")] = "asc",
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")] = 0,
) -> WorkflowPage:
    """Every workflow of the tenant (configured, or enrolled into) with status and conversion."""
    rows, total = await queries.workflow_overview(
        pool, who.tenant_id, q=q, sort=sort, descending=order == "desc", limit=limit, offset=offset
    )
    return WorkflowPage(
        workflows=[WorkflowRow.model_validate(r) for r in rows],
        total=total,
        next_offset=offset + limit if offset + limit < total else None,
    )


@router.post("/activate", response_model=WorkflowStatus)
async def activate(workflow_id: WorkflowId, pool: PoolDep, who: Writer) -> WorkflowStatus:
    """Arm the workflow's goals; 422 lists every R13 violation."""
    await store.set_status(pool, actor(who), workflow_id, "active")
    return WorkflowStatus(workflow_id=workflow_id, status="active")


@router.post("/deactivate", response_model=WorkflowStatus)
async def deactivate(workflow_id: WorkflowId, pool: PoolDep, who: Writer) -> WorkflowStatus:
    await store.set_status(pool, actor(who), workflow_id, "inactive")
    return WorkflowStatus(workflow_id=workflow_id, status="inactive")


@router.get("/goals/achievements", response_model=AchievementPage)
async def goal_achievements(
    workflow_id: WorkflowId,
    pool: ReadPoolDep,
    cache: ReadCacheDep,
    who: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """The achievement log (R3-R8: what was achieved, when, and the event that did it), newest first."""
    after = decode_cursor(cursor)
    try:
        position = (datetime.fromisoformat(after[0]), str(uuid.UUID(after[1]))) if after else None
    except (ValueError, IndexError, TypeError):
        raise Unprocessable(["cursor: not a cursor this API returned"]) from None
    return json_response(await reads.achievements(pool, cache, who.tenant_id, workflow_id, limit, position))


@router.get("/enrollments/{enrollment_id}", response_model=EnrollmentOut)
async def get_enrollment(
    workflow_id: WorkflowId, enrollment_id: EnrollmentId, pool: PoolDep, who: Reader
) -> EnrollmentOut:
    row = await queries.enrollment(pool, who.tenant_id, enrollment_id)
    if row is None or row["workflow_id"] != workflow_id:
        raise NotFound("enrollment not found")
    return EnrollmentOut.model_validate(row)
