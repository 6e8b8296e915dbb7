"""Small builders of contract events and workflow configs for the unit tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from goal_engine.contract.events import CloudEvent
from goal_engine.domain.goals import GoalType, parse_criteria
from goal_engine.domain.workflow import Goal, WorkflowConfig

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(
    type_: str,
    data: dict[str, Any],
    *,
    time: datetime = T0,
    subject: str = "c1",
    tenant: str = "t1",
    event_id: str | None = None,
) -> CloudEvent:
    return CloudEvent(
        specversion="1.0",
        id=event_id or f"e{next(_ids)}",
        source="tests",
        type=type_,
        time=time,
        tenantid=tenant,
        subject=subject,
        data=data,
    )


def tag(name: str = "Purchased", tag_id: str = "tag-1", **kw: Any) -> CloudEvent:
    return event("contact.tag.added", {"tag_id": tag_id, "tag_name": name}, **kw)


def payment(
    amount: str = "49.99", products: tuple[str, ...] = ("p1",), currency: str = "USD", **kw: Any
) -> CloudEvent:
    data = {"transaction_id": "tx", "amount": amount, "currency": currency, "product_ids": list(products)}
    return event("payment.completed", data, **kw)


def started(workflow_id: str = "wf1", enrollment_id: str = "en1", **kw: Any) -> CloudEvent:
    return event(
        "workflow.enrollment.started", {"workflow_id": workflow_id, "enrollment_id": enrollment_id}, **kw
    )


def ended(
    reason: str = "completed", workflow_id: str = "wf1", enrollment_id: str = "en1", **kw: Any
) -> CloudEvent:
    data = {"workflow_id": workflow_id, "enrollment_id": enrollment_id, "reason": reason}
    return event("workflow.enrollment.ended", data, **kw)


def goal(
    goal_type: str,
    criteria: dict[str, Any],
    goal_id: str | None = None,
    active: bool = True,
    changed_at: datetime | None = None,
) -> Goal:
    criteria_model = parse_criteria(goal_type, criteria)
    return Goal(goal_id or f"g-{goal_type}", GoalType(goal_type), criteria_model, active, changed_at)


def workflow(
    *goals: Goal,
    logic: str = "any",
    active: bool = True,
    workflow_id: str = "wf1",
    activated_at: datetime | None = None,
    version: int = 1,
) -> WorkflowConfig:
    return WorkflowConfig(workflow_id, version, active, logic, activated_at, tuple(goals))  # type: ignore[arg-type]
