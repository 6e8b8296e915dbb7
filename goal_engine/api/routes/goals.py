"""Goals of a workflow and its goal settings (R1, R2, R11)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from goal_engine.api.deps import GoalId, PoolDep, Reader, WorkflowId, Writer, actor
from goal_engine.api.errors import ERROR_RESPONSES, NOT_FOUND, error_responses
from goal_engine.api.schemas import (
    GOAL_CREATE_EXAMPLES,
    GoalCreate,
    GoalList,
    GoalOut,
    GoalSettings,
    GoalSettingsOut,
    GoalSettingsState,
    GoalUpdate,
)
from goal_engine.configuration import store
from goal_engine.configuration.store import NotFound
from projections import queries

router = APIRouter(prefix="/workflows/{workflow_id}", tags=["goals"], responses=ERROR_RESPONSES | NOT_FOUND)


@router.post(
    "/goals",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalOut,
    responses=error_responses(409),
)
async def create_goal(
    workflow_id: WorkflowId,
    body: Annotated[GoalCreate, Body(openapi_examples=GOAL_CREATE_EXAMPLES)],
    pool: PoolDep,
    who: Writer,
) -> GoalOut:
    goal = await store.create_goal(pool, actor(who), workflow_id, body.goal_type.value, body.criteria)
    return GoalOut.model_validate(goal.model_dump())


@router.get("/goals", response_model=GoalList)
async def list_goals(workflow_id: WorkflowId, pool: PoolDep, who: Reader) -> GoalList:
    goals = await store.list_goals(pool, who.tenant_id, workflow_id)
    return GoalList(goals=[GoalOut.model_validate(g.model_dump()) for g in goals], total=len(goals))


@router.patch("/goals/{goal_id:uuid}", response_model=GoalOut, responses=error_responses(409))
async def update_goal(
    workflow_id: WorkflowId, goal_id: GoalId, body: GoalUpdate, pool: PoolDep, who: Writer
) -> GoalOut:
    goal = await store.update_goal(
        pool,
        actor(who),
        workflow_id,
        str(goal_id),
        goal_type=body.goal_type.value if body.goal_type else None,
        criteria=body.criteria,
        is_active=body.is_active,
    )
    return GoalOut.model_validate(goal.model_dump())


@router.delete("/goals/{goal_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_goal(workflow_id: WorkflowId, goal_id: GoalId, pool: PoolDep, who: Writer) -> Response:
    await store.delete_goal(pool, actor(who), workflow_id, str(goal_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/goal-settings", response_model=GoalSettingsOut)
async def put_goal_settings(
    workflow_id: WorkflowId, body: GoalSettings, pool: PoolDep, who: Writer
) -> GoalSettingsOut:
    snapshot = await store.set_logic(pool, actor(who), workflow_id, body.logic)
    return GoalSettingsOut(workflow_id=workflow_id, logic=snapshot.logic)


@router.get("/goal-settings", response_model=GoalSettingsState)
async def get_goal_settings(workflow_id: WorkflowId, pool: PoolDep, who: Reader) -> GoalSettingsState:
    """The settings and status, and whether the engine has the latest change yet (``live``)."""
    state = await queries.workflow_publication(pool, who.tenant_id, workflow_id)
    if state is None:
        raise NotFound("workflow not found")
    return GoalSettingsState.model_validate(state)
