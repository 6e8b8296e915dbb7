"""The goal types a workflow editor offers, with the JSON Schema of each one's criteria (R1, R2)."""

from __future__ import annotations

from fastapi import APIRouter

from goal_engine.api.deps import Reader
from goal_engine.api.errors import ERROR_RESPONSES
from goal_engine.api.schemas import GoalTypeList, GoalTypeOut
from goal_engine.domain.goals import GOAL_TYPES, criteria_json_schema

router = APIRouter(tags=["goal types"], responses=ERROR_RESPONSES)


@router.get("/goal-types", response_model=GoalTypeList)
async def goal_types(_: Reader) -> GoalTypeList:
    return GoalTypeList(
        goal_types=[
            GoalTypeOut(
                goal_type=spec.goal_type,
                title=spec.title,
                source_event=str(spec.source),
                criteria_schema=criteria_json_schema(spec.goal_type),
            )
            for spec in GOAL_TYPES.values()
        ]
    )
