"""What the worker writes: goal events and dead letters, as (topic, key, value)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from goal_engine.contract.events import (
    CloudEvent,
    DeadLetter,
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
    records = [
        Record(Topic.GOAL_ACHIEVED, key, _encode(_achieved(tenant_id, contact_id, a)))
        for a in outcome.achievements
    ]
    records += [Record(Topic.EXIT_GOAL, key, _encode(_exit(tenant_id, contact_id, x))) for x in outcome.exits]
    return records


# Why plain dicts and orjson, not the contract's pydantic models: building and
# dumping the models cost ~60 us per goal event, a tenth of the worker's CPU at
# saturation, to re-check fields that were validated when the trigger was read.
# The documents are the models' JSON byte for byte (tests/unit/test_records.py
# compares them), so the models stay the contract and its schema.


def _envelope(
    topic: Topic, event_id: str, tenant_id: str, at: datetime, subject: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": topic.value,
        "time": at,
        "tenantid": tenant_id,
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


def _achieved(tenant_id: str, contact_id: str, a: Achievement) -> dict[str, Any]:
    trigger = a.trigger
    data = {
        "id": a.id,
        "workflow_id": a.workflow_id,
        "workflow_enrollment_id": a.enrollment_id,
        "contact_id": contact_id,
        "goal_config_id": a.goal.id,
        "goal_type": a.goal.goal_type.value,
        "achieved_at": a.achieved_at,
        "trigger_event": {"id": trigger.id, "type": trigger.type, "time": trigger.time, "data": trigger.data},
        "metadata": {"source": trigger.source},
        "enrolled_at": a.enrolled_at,
    }
    return _envelope(Topic.GOAL_ACHIEVED, a.id, tenant_id, a.achieved_at, contact_id, data)


def _exit(tenant_id: str, contact_id: str, x: GoalExit) -> dict[str, Any]:
    data = {
        "workflow_id": x.workflow_id,
        "workflow_enrollment_id": x.enrollment_id,
        "contact_id": contact_id,
        "status": "completed_goal",
        "goal_config_ids": list(x.goal_ids),
        "exited_at": x.exited_at,
        "enrolled_at": x.enrolled_at,
    }
    return _envelope(Topic.EXIT_GOAL, x.id, tenant_id, x.exited_at, contact_id, data)


def _encode(document: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(document, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:
        # What orjson cannot write and pydantic can: an integer past 64 bits in a
        # producer's trigger data (json.loads read it). Rare; the models' path.
        return encode_event(CloudEvent.model_validate(_json_ready(document)))


def _json_ready(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its datetimes as the models' JSON mode writes them."""

    def ready(value: Any) -> Any:
        if isinstance(value, datetime):  # as the models write it: UTC as Z
            return value.isoformat().removesuffix("+00:00") + (
                "Z" if value.utcoffset() == timedelta(0) else ""
            )
        return _json_ready(value) if isinstance(value, dict) else value

    return {k: ready(v) for k, v in document.items()}


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
