"""Goal evaluation for one contact (R3-R8, R11): pure, no I/O.

The stream worker keeps one :class:`ContactState` per (tenant, contact) and
hands it every contact-scoped event; the state answers with the achievements
and exits to publish. An event therefore costs O(that contact's enrollments).

Timing rules (contract section 2):
1. An event counts for an enrollment only if its ``time`` is not before the
   enrollment's time nor the workflow's activation (no retroactive goals).
2. Topics are not ordered against each other, so a goal event may be
   processed before the enrollment it belongs to. Source events are kept for
   ``grace`` (processing time) and replayed against an enrollment that starts
   later; rule 1 still applies to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from goal_engine.contract.events import CloudEvent
from goal_engine.contract.topics import GOAL_SOURCE_TOPICS, Topic
from goal_engine.domain import ids
from goal_engine.domain.enrollment import Enrollment
from goal_engine.domain.goals import GOAL_TYPES
from goal_engine.domain.workflow import Goal, WorkflowConfig

WorkflowLookup = Callable[[str], WorkflowConfig | None]

#: How long an ended enrollment is remembered, so a duplicated or late
#: ``enrollment.started`` cannot re-arm it.
TERMINAL_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Achievement:
    id: str
    workflow_id: str
    enrollment_id: str
    goal: Goal
    achieved_at: datetime
    trigger: CloudEvent


@dataclass(frozen=True)
class GoalExit:
    id: str
    workflow_id: str
    enrollment_id: str
    goal_ids: tuple[str, ...]
    exited_at: datetime
    enrolled_at: datetime | None


@dataclass
class Outcome:
    achievements: list[Achievement] = field(default_factory=list)
    exits: list[GoalExit] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.achievements += other.achievements
        self.exits += other.exits


@dataclass
class ContactState:
    tenant_id: str
    contact_id: str
    enrollments: dict[str, Enrollment] = field(default_factory=dict)
    # (processing time it arrived, the event), oldest first
    recent: list[tuple[datetime, CloudEvent]] = field(default_factory=list)

    # --- events ---------------------------------------------------------------

    def on_goal_event(
        self, event: CloudEvent, workflows: WorkflowLookup, now: datetime, grace: timedelta
    ) -> Outcome:
        self._forget_old(now, grace)
        if grace > timedelta(0) and all(e.id != event.id for _, e in self.recent):
            self.recent.append((now, event))
        outcome = Outcome()
        for enrollment in list(self.enrollments.values()):
            outcome.extend(self._evaluate(enrollment, workflows(enrollment.workflow_id), event))
        return outcome

    def on_enrollment_started(
        self,
        workflow_id: str,
        enrollment_id: str,
        at: datetime,
        workflows: WorkflowLookup,
        now: datetime,
        grace: timedelta,
    ) -> Outcome:
        self._forget_old(now, grace)
        if enrollment_id in self.enrollments:
            return Outcome()  # a duplicate, or it ended before its start reached us
        enrollment = Enrollment(workflow_id, enrollment_id, enrolled_at=at)
        self.enrollments[enrollment_id] = enrollment
        outcome = Outcome()
        workflow = workflows(workflow_id)
        for _, event in sorted(self.recent, key=lambda r: r[1].time):
            outcome.extend(self._evaluate(enrollment, workflow, event))
        return outcome

    def on_enrollment_ended(self, workflow_id: str, enrollment_id: str, reason: str, at: datetime) -> None:
        enrollment = self.enrollments.get(enrollment_id)
        if enrollment is None:
            # Ended before its start was processed: remember it so the late
            # start does not arm goals for an enrollment that is already over.
            enrollment = Enrollment(workflow_id, enrollment_id, enrolled_at=None)
            self.enrollments[enrollment_id] = enrollment
        if enrollment.is_active:
            enrollment.end(reason, at)

    def handle(
        self, event: CloudEvent, workflows: WorkflowLookup, now: datetime, grace: timedelta
    ) -> Outcome:
        """Apply one contact-scoped event of any type (the worker's single entry point)."""
        match Topic(event.type):
            case Topic.ENROLLMENT_STARTED:
                data = event.typed_data()
                return self.on_enrollment_started(
                    data.workflow_id, data.enrollment_id, event.time, workflows, now, grace
                )
            case Topic.ENROLLMENT_ENDED:
                data = event.typed_data()
                self.on_enrollment_ended(data.workflow_id, data.enrollment_id, data.reason, event.time)
                return Outcome()
            case t if t in GOAL_SOURCE_TOPICS:
                return self.on_goal_event(event, workflows, now, grace)
            case _:
                raise ValueError(f"not a contact-scoped event type: {event.type}")

    # --- queries --------------------------------------------------------------

    @property
    def active_enrollments(self) -> list[Enrollment]:
        return [e for e in self.enrollments.values() if e.is_active]

    @property
    def is_empty(self) -> bool:
        return not self.enrollments and not self.recent

    # --- internals ------------------------------------------------------------

    def _evaluate(
        self, enrollment: Enrollment, workflow: WorkflowConfig | None, event: CloudEvent
    ) -> Outcome:
        outcome = Outcome()
        if not enrollment.is_active or workflow is None or enrollment.enrolled_at is None:
            return outcome
        if event.time < enrollment.enrolled_at:
            return outcome  # rule 1: no retroactive goals
        if workflow.activated_at is not None and event.time < workflow.activated_at:
            return outcome
        data = event.typed_data()
        for goal in workflow.armed_goals:
            spec = GOAL_TYPES[goal.goal_type]
            if goal.id in enrollment.met_goals or spec.source != event.type:
                continue
            if not spec.matches(goal.criteria, data):
                continue
            enrollment.record_goal(goal.id, event.time)
            outcome.achievements.append(
                Achievement(
                    id=ids.achievement_id(self.tenant_id, enrollment.enrollment_id, goal.id),
                    workflow_id=enrollment.workflow_id,
                    enrollment_id=enrollment.enrollment_id,
                    goal=goal,
                    achieved_at=event.time,
                    trigger=event,
                )
            )
        if outcome.achievements and workflow.is_satisfied(enrollment.met_goals):
            armed = {g.id for g in workflow.armed_goals}
            enrollment.complete_goal(event.time)
            outcome.exits.append(
                GoalExit(
                    id=ids.exit_id(self.tenant_id, enrollment.enrollment_id),
                    workflow_id=enrollment.workflow_id,
                    enrollment_id=enrollment.enrollment_id,
                    goal_ids=tuple(g for g in enrollment.met_goals if g in armed),
                    exited_at=event.time,
                    enrolled_at=enrollment.enrolled_at,
                )
            )
        return outcome

    def _forget_old(self, now: datetime, grace: timedelta) -> None:
        self.recent = [(at, e) for at, e in self.recent if now - at <= grace]
        for key, enrollment in list(self.enrollments.items()):
            if enrollment.ended_at is not None and now - enrollment.ended_at > TERMINAL_RETENTION:
                del self.enrollments[key]

    # --- plain-JSON form for the worker's tables ---------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "enrollments": [e.to_json() for e in self.enrollments.values()],
            "recent": [[at.isoformat(), e.model_dump(mode="json")] for at, e in self.recent],
        }

    @classmethod
    def from_json(cls, tenant_id: str, contact_id: str, raw: dict[str, Any] | None) -> ContactState:
        state = cls(tenant_id, contact_id)
        if raw:
            for e in raw.get("enrollments", []):
                enrollment = Enrollment.from_json(e)
                state.enrollments[enrollment.enrollment_id] = enrollment
            state.recent = [
                (datetime.fromisoformat(at), CloudEvent.model_validate(e)) for at, e in raw.get("recent", [])
            ]
        return state
