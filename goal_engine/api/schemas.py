"""Request and response bodies of the HTTP API (section 3 of the contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from goal_engine.domain.goals import GoalType


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GoalCreate(_Body):
    goal_type: GoalType
    criteria: dict[str, Any] = Field(
        description="type-specific criteria: see GET /goal-types",
        examples=[{"tag_id": "tag-123", "tag_name": "Purchased"}],
    )


class GoalUpdate(_Body):
    goal_type: GoalType | None = None
    criteria: dict[str, Any] | None = None
    is_active: bool | None = None


class GoalOut(BaseModel):
    id: str
    workflow_id: str
    goal_type: GoalType
    criteria: dict[str, Any]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class GoalList(BaseModel):
    goals: list[GoalOut]
    total: int


class GoalSettings(_Body):
    logic: Literal["any", "all"] = Field(description="any: the first goal met exits; all: every goal")


class GoalSettingsOut(BaseModel):
    workflow_id: str
    logic: Literal["any", "all"]


class WorkflowStatus(BaseModel):
    workflow_id: str
    status: Literal["active", "inactive"]


class TimeToGoal(BaseModel):
    p50: float | None
    p90: float | None
    p99: float | None
    relative_error: float = Field(description="each percentile is within this fraction of the exact value")


class GoalTypeStats(BaseModel):
    achieved: int = Field(description="achievements of goals of this type")
    conversion_rate: float = Field(description="achievements per enrollment, percent, one decimal")
    avg_time_to_goal_hours: float | None = Field(
        description="mean time from enrollment to the achievement, exact; null when none"
    )
    time_to_goal_hours: TimeToGoal


class StatsBucket(BaseModel):
    start: datetime
    enrolled: int
    achieved: int
    conversion_rate: float
    by_goal_type: dict[str, int] = Field(description="achievements per goal type in the bucket")


_TIME_TO_GOAL_EXAMPLE: JsonDict = {"p50": 5.1, "p90": 30.2, "p99": 70.4, "relative_error": 0.022}


class Stats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "workflow_id": "wf-1",
                    "total_enrolled": 400,
                    "goals_achieved": 150,
                    "conversion_rate": 37.5,
                    "avg_time_to_goal_hours": 12.4,
                    "time_to_goal_hours": _TIME_TO_GOAL_EXAMPLE,
                    "by_goal_type": {
                        "tag_added": {
                            "achieved": 90,
                            "conversion_rate": 22.5,
                            "avg_time_to_goal_hours": 9.8,
                            "time_to_goal_hours": _TIME_TO_GOAL_EXAMPLE,
                        },
                        "form_submitted": {
                            "achieved": 60,
                            "conversion_rate": 15.0,
                            "avg_time_to_goal_hours": 16.3,
                            "time_to_goal_hours": {
                                "p50": 8.0,
                                "p90": 41.7,
                                "p99": 88.1,
                                "relative_error": 0.022,
                            },
                        },
                    },
                    "series": [],
                }
            ]
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
    workflow_id: str
    total_enrolled: int
    goals_achieved: int
    conversion_rate: float
    avg_time_to_goal_hours: float | None


class TenantStats(BaseModel):
    workflows: list[WorkflowSummary] = Field(description="best converting first")
    total: int


class EnrollmentOut(BaseModel):
    enrollment_id: str
    workflow_id: str
    contact_id: str
    status: Literal["active", "completed", "exited", "removed", "completed_goal"]
    enrolled_at: datetime | None
    ended_at: datetime | None
    goal_config_ids: list[str] | None


class GoalTypeOut(BaseModel):
    goal_type: GoalType
    title: str
    source_event: str
    criteria_schema: dict[str, Any]


class GoalTypeList(BaseModel):
    goal_types: list[GoalTypeOut]


class AchievementOut(BaseModel):
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
    achievements: list[AchievementOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null at the end")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="the token's sub, or goal-engine for achievements")
    action: str
    entity_type: str
    entity_id: str
    before: Any | None
    after: Any | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None
