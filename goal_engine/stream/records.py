"""What the worker writes: goal events and dead letters, as (topic, key, value)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from goal_engine.contract.events import (
    CloudEvent,
    DeadLetter,
    ExitGoal,
    GoalAchieved,
    TriggerEvent,
    encode_event,
    make_event,
)
from goal_engine.contract.topics import Topic, contact_key
from goal_engine.domain.evaluation import Achievement, GoalExit, Outcome

SOURCE = "goal-engine/worker"


@dataclass(frozen=True)
class Record:
    topic: Topic
    key: bytes
    value: bytes


def outcome_records(tenant_id: str, contact_id: str, outcome: Outcome) -> list[Record]:
    """Achievements first, then exits: a consumer that sees the exit has seen why."""
    key = contact_key(tenant_id, contact_id).encode()
    events = [_achieved(tenant_id, contact_id, a) for a in outcome.achievements]
    events += [_exit(tenant_id, contact_id, x) for x in outcome.exits]
    return [Record(Topic(e.type), key, encode_event(e)) for e in events]


def _achieved(tenant_id: str, contact_id: str, a: Achievement) -> CloudEvent:
    trigger = a.trigger
    data = GoalAchieved(
        id=a.id,
        workflow_id=a.workflow_id,
        workflow_enrollment_id=a.enrollment_id,
        contact_id=contact_id,
        goal_config_id=a.goal.id,
        goal_type=a.goal.goal_type.value,
        achieved_at=a.achieved_at,
        trigger_event=TriggerEvent(id=trigger.id, type=trigger.type, time=trigger.time, data=trigger.data),
        metadata={"source": trigger.source},
        enrolled_at=a.enrolled_at,
    )
    return make_event(
        Topic.GOAL_ACHIEVED,
        event_id=a.id,
        tenant_id=tenant_id,
        time=a.achieved_at,
        subject=contact_id,
        data=data,
        source=SOURCE,
    )


def _exit(tenant_id: str, contact_id: str, x: GoalExit) -> CloudEvent:
    data = ExitGoal(
        workflow_id=x.workflow_id,
        workflow_enrollment_id=x.enrollment_id,
        contact_id=contact_id,
        goal_config_ids=list(x.goal_ids),
        exited_at=x.exited_at,
        enrolled_at=x.enrolled_at,
    )
    return make_event(
        Topic.EXIT_GOAL,
        event_id=x.id,
        tenant_id=tenant_id,
        time=x.exited_at,
        subject=contact_id,
        data=data,
        source=SOURCE,
    )


#: Largest record (key and value) a dead letter copies. Base64 adds a third, and
#: the producer refuses requests over 1 MB: a larger record is referred to instead.
MAX_COPIED_BYTES = 700 * 1024


def dead_letter_record(
    reason: str, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
) -> Record:
    """A dead letter keeps the original bytes, so nothing is lost and it can be replayed.

    A record too large to copy is kept by reference: it stays in its topic until
    retention, at the topic, partition and offset the letter names.
    """
    size = len(key or b"") + len(value or b"")
    copied = size <= MAX_COPIED_BYTES
    if not copied:
        reason = f"{reason}; too large to copy ({size} bytes), see {topic}[{partition}]@{offset}"
    data = DeadLetter(
        reason=reason,
        source_topic=topic,
        partition=partition,
        offset=offset,
        size=size,
        key_b64=base64.b64encode(key).decode() if key is not None and copied else None,
        value_b64=base64.b64encode(value or b"").decode() if copied else None,
    )
    event = make_event(
        Topic.DEAD_LETTER,
        event_id=f"{topic}/{partition}/{offset}",  # the same record always gives the same id
        tenant_id="goal-engine",
        time=datetime.now(UTC),
        data=data,
        source=SOURCE,
    )
    return Record(Topic.DEAD_LETTER, (key or b"") if copied else b"", encode_event(event))
