"""Request and response bodies of the HTTP API (section 3 of the contract).

Every model carries an example (``examples`` in its JSON Schema): the OpenAPI
document shows what a real body looks like, and ``tests/unit/test_openapi.py``
checks each example against its own schema. Composite examples are built from
the smaller ones, so an example can only drift from its model in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goal_engine.domain.goals import GOAL_TYPES, GoalType, criteria_json_schema


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    # No null in an example: FastAPI drops None values when it writes the OpenAPI document,
    # which would leave the example without a required field (test_openapi.py notices).
    return ConfigDict(json_schema_extra={"examples": list(examples)})


#: One criteria example per goal type.
CRITERIA_EXAMPLES: dict[GoalType, dict[str, Any]] = {
    GoalType.TAG_ADDED: {"tag_id": "tag-123", "tag_name": "Purchased"},
    GoalType.PURCHASE_MADE: {"product_id": "prod-7", "min_amount": "49.99", "currency": "USD"},
    GoalType.APPOINTMENT_BOOKED: {"calendar_id": "cal-1"},
    GoalType.FORM_SUBMITTED: {"form_id": "form-9"},
    GoalType.PIPELINE_STAGE_REACHED: {"pipeline_id": "pl-sales", "stage_id": "st-won"},
}
#: The request examples of POST goals in the OpenAPI document, one per goal type.
GOAL_CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    goal_type.value: {
        "summary": GOAL_TYPES[goal_type].title,
        "value": {"goal_type": goal_type.value, "criteria": criteria},
    }
    for goal_type, criteria in CRITERIA_EXAMPLES.items()
}
_WF = "wf-onboarding"
_GOAL = {
    "id": "3f1c9a52-8d7e-4b0a-9c6f-2e5d4a1b7c80",
    "workflow_id": _WF,
    "goal_type": "tag_added",
    "criteria": CRITERIA_EXAMPLES[GoalType.TAG_ADDED],
    "is_active": True,
    "created_at": "2026-03-01T09:00:00Z",
    "updated_at": "2026-03-01T09:00:00Z",
}
_TIME_TO_GOAL = {"p50": 18.5, "p90": 52.0, "p99": 70.25, "relative_error": 0.022}
_GOAL_TYPE_STATS = {
    "achieved": 212,
    "conversion_rate": 17.0,
    "avg_time_to_goal_hours": 22.9,
    "time_to_goal_hours": _TIME_TO_GOAL,
}
_BUCKET = {
    "start": "2026-03-01T00:00:00Z",
    "enrolled": 40,
    "achieved": 9,
    "conversion_rate": 22.5,
    "by_goal_type": {"tag_added": 9},
}
_SUMMARY = {
    "workflow_id": _WF,
    "total_enrolled": 1250,
    "goals_achieved": 289,
    "conversion_rate": 23.1,
    "avg_time_to_goal_hours": 26.4,
}
_ACHIEVEMENT = {
    "id": "9b2e4f10-6c3a-5d8e-b1f7-0a4c2e6d8f13",
    "workflow_id": _WF,
    "workflow_enrollment_id": "en-123",
    "contact_id": "c-42",
    "goal_config_id": _GOAL["id"],
    "goal_type": "tag_added",
    "achieved_at": "2026-03-01T11:00:00Z",
    "trigger_event": {
        "id": "evt-981",
        "type": "contact.tag.added",
        "time": "2026-03-01T11:00:00Z",
        "data": {"tag_id": "tag-123", "tag_name": "Purchased"},
    },
    "metadata": {},
}
_AUDIT = {
    "id": 812,
    "at": "2026-03-01T09:00:00Z",
    "actor": "alice@example.com",
    "action": "goal.updated",
    "entity_type": "goal",
    "entity_id": _GOAL["id"],
    "before": {**_GOAL, "is_active": True},
    "after": {**_GOAL, "is_active": False, "updated_at": "2026-03-02T10:15:00Z"},
}
_GOAL_TYPE = {
    "goal_type": "form_submitted",
    "title": GOAL_TYPES[GoalType.FORM_SUBMITTED].title,
    "source_event": str(GOAL_TYPES[GoalType.FORM_SUBMITTED].source),
    "criteria_schema": criteria_json_schema(GoalType.FORM_SUBMITTED),
}
_NEXT_CURSOR = "WzgxMl0="


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GoalCreate(_Body):
    model_config = _examples({"goal_type": "tag_added", "criteria": CRITERIA_EXAMPLES[GoalType.TAG_ADDED]})

    goal_type: GoalType
    criteria: dict[str, Any] = Field(description="type-specific criteria: see GET /goal-types")


class GoalUpdate(_Body):
    model_config = _examples({"is_active": False}, {"criteria": {"tag_id": "tag-456"}})

    goal_type: GoalType | None = None
    criteria: dict[str, Any] | None = None
    is_active: bool | None = None


class GoalOut(BaseModel):
    model_config = _examples(_GOAL)

    id: str
    workflow_id: str
    goal_type: GoalType
    criteria: dict[str, Any]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class GoalList(BaseModel):
    model_config = _examples({"goals": [_GOAL], "total": 1})

    goals: list[GoalOut]
    total: int


class GoalSettings(_Body):
    model_config = _examples({"logic": "all"})

    logic: Literal["any", "all"] = Field(description="any: the first goal met exits; all: every goal")


class GoalSettingsOut(BaseModel):
    model_config = _examples({"workflow_id": _WF, "logic": "all"})

    workflow_id: str
    logic: Literal["any", "all"]


class GoalSettingsState(BaseModel):
    model_config = _examples(
        {
            "workflow_id": _WF,
            "logic": "all",
            "status": "active",
            "version": 7,
            "published_version": 6,
            "published_at": "2026-03-01T09:00:00Z",
            "live": False,
        }
    )

    workflow_id: str
    logic: Literal["any", "all"]
    status: Literal["active", "inactive"]
    version: int = Field(description="grows with every configuration change (goals, settings, status)")
    published_version: int | None = Field(
        description="the newest version the engine's configuration topics carry; null before the first"
    )
    published_at: datetime | None = Field(description="when that version was changed")
    live: bool = Field(description="whether the engine has the latest change: version == published_version")


class WorkflowStatus(BaseModel):
    model_config = _examples({"workflow_id": _WF, "status": "active"})

    workflow_id: str
    status: Literal["active", "inactive"]


class TimeToGoal(BaseModel):
    model_config = _examples(_TIME_TO_GOAL)

    p50: float | None
    p90: float | None
    p99: float | None
    relative_error: float = Field(description="each percentile is within this fraction of the exact value")


class GoalTypeStats(BaseModel):
    model_config = _examples(_GOAL_TYPE_STATS)

    achieved: int = Field(description="achievements of goals of this type")
    conversion_rate: float = Field(description="achievements per enrollment, percent, one decimal")
    avg_time_to_goal_hours: float | None = Field(
        description="mean time from enrollment to the achievement, exact; null when none"
    )
    time_to_goal_hours: TimeToGoal


class StatsBucket(BaseModel):
    model_config = _examples(_BUCKET)

    start: datetime
    enrolled: int
    achieved: int
    conversion_rate: float
    by_goal_type: dict[str, int] = Field(description="achievements per goal type in the bucket")


class Stats(BaseModel):
    model_config = _examples(
        {
            **_SUMMARY,
            "time_to_goal_hours": _TIME_TO_GOAL,
            "by_goal_type": {
                "tag_added": _GOAL_TYPE_STATS,
                "form_submitted": {
                    "achieved": 77,
                    "conversion_rate": 6.2,
                    "avg_time_to_goal_hours": 40.1,
                    "time_to_goal_hours": {"p50": 30.0, "p90": 61.5, "p99": 90.2, "relative_error": 0.022},
                },
            },
            "series": [_BUCKET],
        }
    )

    workflow_id: str
    total_enrolled: int
    goals_achieved: int = Field(description="enrollments exited on a goal")
    conversion_rate: float = Field(description="percent, one decimal")
    avg_time_to_goal_hours: float | None
    time_to_goal_hours: TimeToGoal
    by_goal_type: dict[str, GoalTypeStats]
    series: list[StatsBucket] = Field(description="per interval bucket, when ?interval= is given")


class WorkflowSummary(BaseModel):
    model_config = _examples(_SUMMARY)

    workflow_id: str
    total_enrolled: int
    goals_achieved: int
    conversion_rate: float
    avg_time_to_goal_hours: float | None


class TenantStats(BaseModel):
    model_config = _examples({"workflows": [_SUMMARY], "total": 1})

    workflows: list[WorkflowSummary] = Field(description="best converting first")
    total: int


class EnrollmentOut(BaseModel):
    model_config = _examples(
        {
            "enrollment_id": "en-123",
            "workflow_id": _WF,
            "contact_id": "c-42",
            "status": "completed_goal",
            "enrolled_at": "2026-03-01T09:00:00Z",
            "ended_at": "2026-03-01T11:00:00Z",
            "goal_config_ids": [_GOAL["id"]],
        }
    )

    enrollment_id: str
    workflow_id: str
    contact_id: str
    status: Literal["active", "completed", "exited", "removed", "completed_goal"]
    enrolled_at: datetime | None
    ended_at: datetime | None
    goal_config_ids: list[str] | None


class GoalTypeOut(BaseModel):
    model_config = _examples(_GOAL_TYPE)

    goal_type: GoalType
    title: str
    source_event: str
    criteria_schema: dict[str, Any]


class GoalTypeList(BaseModel):
    model_config = _examples({"goal_types": [_GOAL_TYPE]})

    goal_types: list[GoalTypeOut]


class AchievementOut(BaseModel):
    model_config = _examples(_ACHIEVEMENT)

    id: str
    workflow_id: str
    workflow_enrollment_id: str
    contact_id: str
    goal_config_id: str
    goal_type: GoalType
    achieved_at: datetime
    trigger_event: dict[str, Any] = Field(description="the source event: id, type, time, data")
    metadata: dict[str, Any]


class AchievementPage(BaseModel):
    model_config = _examples({"achievements": [_ACHIEVEMENT], "next_cursor": _NEXT_CURSOR})

    achievements: list[AchievementOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null at the end")


class AuditEntry(BaseModel):
    model_config = _examples(_AUDIT)

    id: int
    at: datetime
    actor: str = Field(description="the token's sub, or goal-engine for achievements")
    action: str
    entity_type: str
    entity_id: str
    before: Any | None
    after: Any | None


class AuditPage(BaseModel):
    model_config = _examples({"entries": [_AUDIT], "next_cursor": _NEXT_CURSOR})

    entries: list[AuditEntry]
    next_cursor: str | None


_CATALOG_ENTITY = {
    "kind": "tag",
    "entity_id": "tag-123",
    "name": "Purchased",
    "changed_at": "2026-03-01T09:00:00Z",
}


class CatalogEntity(BaseModel):
    model_config = _examples(_CATALOG_ENTITY)

    kind: Literal["tag", "form", "pipeline", "pipeline_stage", "product", "calendar", "service"]
    entity_id: str
    name: str
    parent_id: str | None = Field(default=None, description="the pipeline of a stage, else null")
    changed_at: datetime = Field(description="when catalog.entity.changed last named it")


class CatalogPage(BaseModel):
    model_config = _examples({"entities": [_CATALOG_ENTITY], "next_cursor": _NEXT_CURSOR})

    entities: list[CatalogEntity] = Field(description="by name, then kind and id")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


_WORKFLOW_ROW = {**_SUMMARY, "status": "active", "logic": "any", "goals": 2}


class WorkflowRow(WorkflowSummary):
    model_config = _examples(_WORKFLOW_ROW)

    status: Literal["active", "inactive"]
    logic: Literal["any", "all"]
    goals: int = Field(description="goals configured (at most 3)")


class WorkflowPage(BaseModel):
    model_config = _examples({"workflows": [_WORKFLOW_ROW], "total": 1, "next_offset": 50})

    workflows: list[WorkflowRow]
    total: int = Field(description="workflows matching q, on every page")
    next_offset: int | None = Field(description="pass as ?offset= for the next page; null at the end")
