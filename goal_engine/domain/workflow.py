"""A workflow's goal configuration as the evaluator sees it (R9, R11)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from goal_engine.contract.events import WorkflowSnapshot
from goal_engine.domain.goals import GoalType, parse_criteria

Logic = Literal["any", "all"]


@dataclass(frozen=True)
class Goal:
    id: str
    goal_type: GoalType
    criteria: Any  # the goal type's criteria model, already validated
    is_active: bool = True
    changed_at: datetime | None = None  # the goal's last change: it counts events from then on


@dataclass(frozen=True)
class WorkflowConfig:
    workflow_id: str
    version: int
    active: bool
    logic: Logic
    activated_at: datetime | None
    goals: tuple[Goal, ...]

    @cached_property  # a config never changes (a new version is a new config); asked per event
    def armed_goals(self) -> tuple[Goal, ...]:
        """Goals that listen for events: only while the workflow is active (R9)."""
        if not self.active:
            return ()
        return tuple(g for g in self.goals if g.is_active)

    def armed_since(self, goal: Goal) -> datetime:
        """The earliest event time that counts for ``goal``: its activation or last change."""
        times = [t for t in (self.activated_at, goal.changed_at) if t is not None]
        return max(times, default=datetime.min.replace(tzinfo=UTC))

    def is_satisfied(self, met: Mapping[str, datetime]) -> bool:
        """Whether the goals met so far exit the enrollment under the workflow's logic."""
        armed = [g.id for g in self.armed_goals]
        if not armed:
            return False
        if self.logic == "all":
            return all(g in met for g in armed)
        return any(g in met for g in armed)

    @classmethod
    def from_snapshot(cls, snapshot: WorkflowSnapshot) -> WorkflowConfig:
        return cls(
            workflow_id=snapshot.workflow_id,
            version=snapshot.version,
            active=snapshot.status == "active",
            logic=snapshot.logic,
            activated_at=snapshot.activated_at,
            goals=tuple(
                Goal(
                    g.id,
                    GoalType(g.goal_type),
                    parse_criteria(g.goal_type, g.criteria),
                    g.is_active,
                    g.updated_at,
                )
                for g in snapshot.goals
            ),
        )
