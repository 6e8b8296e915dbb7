"""The worker's goal events are the contract models' JSON, byte for byte.

:mod:`goal_engine.stream.records` writes them from plain dicts with orjson (the
models cost a tenth of the worker's CPU); the oracle here is the models' own
encoding, as the worker wrote it before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from goal_engine.contract.events import (
    CloudEvent,
    ExitGoal,
    GoalAchieved,
    TriggerEvent,
    encode_event,
    make_event,
    parse_event,
)
from goal_engine.contract.topics import Topic
from goal_engine.domain.evaluation import Achievement, GoalExit, Outcome
from goal_engine.stream.records import SOURCE, outcome_records
from tests.unit import factories as f

ids = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: ":" not in s
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
times = st.builds(
    lambda seconds, micros, tz: (
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micros)
    ).astimezone(tz),
    st.integers(0, 10**8),
    st.sampled_from([0, 1, 123456, 999999]),
    offsets,
)
# What a producer may put in a trigger's data: any JSON json.loads reads.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | ids,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ids, inner, max_size=3),
    max_leaves=8,
)


def _trigger(data: dict[str, Any], time: datetime) -> CloudEvent:
    return f.event("contact.tag.added", data, time=time, subject="c1", tenant="t1")


def _achievement(trigger: CloudEvent, achieved_at: datetime, enrolled_at: datetime) -> Achievement:
    goal = f.goal("tag_added", {"tag_id": "tag-1"})
    return Achievement("ach-1", "wf-1", "en-1", goal, achieved_at, trigger, enrolled_at)


def _as_the_models_wrote_it(tenant_id: str, contact_id: str, a: Achievement, x: GoalExit) -> list[bytes]:
    trigger = a.trigger
    achieved = GoalAchieved(
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
    exited = ExitGoal(
        workflow_id=x.workflow_id,
        workflow_enrollment_id=x.enrollment_id,
        contact_id=contact_id,
        goal_config_ids=list(x.goal_ids),
        exited_at=x.exited_at,
        enrolled_at=x.enrolled_at,
    )
    common = {"tenant_id": tenant_id, "subject": contact_id, "source": SOURCE}
    return [
        encode_event(
            make_event(Topic.GOAL_ACHIEVED, event_id=a.id, time=a.achieved_at, data=achieved, **common)
        ),
        encode_event(make_event(Topic.EXIT_GOAL, event_id=x.id, time=x.exited_at, data=exited, **common)),
    ]


@given(
    tenant_id=ids,
    contact_id=ids,
    data=st.dictionaries(ids, json_values, max_size=4),
    trigger_time=times,
    achieved_at=times,
    enrolled_at=st.none() | times,
)
def test_goal_events_are_the_models_json_byte_for_byte(
    tenant_id: str,
    contact_id: str,
    data: dict[str, Any],
    trigger_time: datetime,
    achieved_at: datetime,
    enrolled_at: datetime | None,
) -> None:
    trigger = _trigger(data, trigger_time)
    a = _achievement(trigger, achieved_at, enrolled_at or achieved_at)
    x = GoalExit("exit-1", "wf-1", "en-1", ("g-1", "g-2"), achieved_at, enrolled_at)
    records = outcome_records(tenant_id, contact_id, Outcome([a], [x]))
    assert [r.value for r in records] == _as_the_models_wrote_it(tenant_id, contact_id, a, x)
    assert [r.topic for r in records] == [Topic.GOAL_ACHIEVED, Topic.EXIT_GOAL]
    assert {r.key for r in records} == {f"{tenant_id}:{contact_id}".encode()}


def test_an_integer_past_64_bits_in_the_trigger_still_encodes_as_the_models_do() -> None:
    # json.loads reads it and orjson cannot write it: the records take the models' path.
    big = 2**70
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    a = _achievement(_trigger({"tag_id": "tag-1", "n": big, "nested": [{"m": -big}]}, now), now, now)
    x = GoalExit("exit-1", "wf-1", "en-1", ("g-1",), now, now)
    records = outcome_records("t1", "c1", Outcome([a], [x]))
    assert [r.value for r in records] == _as_the_models_wrote_it("t1", "c1", a, x)
    assert json.loads(records[0].value)["data"]["trigger_event"]["data"]["n"] == big
    parse_event(records[0].value, "workflow.goal.achieved")  # still a valid contract event
