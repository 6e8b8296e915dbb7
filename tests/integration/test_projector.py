"""The projector on real PostgreSQL: idempotent views, tracking in the same transaction (R8, R12)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from goal_engine.contract.events import ExitGoal, GoalAchieved, TriggerEvent, encode_event, make_event
from goal_engine.contract.topics import Topic
from goal_engine.domain import ids
from projections.projector import Projector, TrackingConflict
from tests.integration.helpers import ProjectorTopics as Topics
from tests.integration.helpers import cloud_event

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def journey(tenant: str, workflow: str, enrollment: str, goal_id: str) -> list[tuple[Topic, bytes]]:
    """One contact's enrollment, achievement and exit, as the topics carry them."""
    started = cloud_event(
        "workflow.enrollment.started",
        tenant,
        {"workflow_id": workflow, "enrollment_id": enrollment},
        "c1",
        T0,
    )
    at = T0 + timedelta(hours=2)
    achieved = GoalAchieved(
        id=ids.achievement_id(tenant, enrollment, goal_id),
        workflow_id=workflow,
        workflow_enrollment_id=enrollment,
        contact_id="c1",
        goal_config_id=goal_id,
        goal_type="tag_added",
        achieved_at=at,
        trigger_event=TriggerEvent(id="src-1", type="contact.tag.added", time=at, data={"tag_id": "t"}),
    )
    exited = ExitGoal(
        workflow_id=workflow,
        workflow_enrollment_id=enrollment,
        contact_id="c1",
        goal_config_ids=[goal_id],
        exited_at=at,
        enrolled_at=T0,
    )

    def encoded(topic: Topic, event_id: str, data: GoalAchieved | ExitGoal) -> bytes:
        return encode_event(
            make_event(topic, event_id=event_id, tenant_id=tenant, time=at, subject="c1", data=data)
        )

    return [
        (Topic.ENROLLMENT_STARTED, json.dumps(started).encode()),
        (Topic.GOAL_ACHIEVED, encoded(Topic.GOAL_ACHIEVED, achieved.id, achieved)),
        (Topic.EXIT_GOAL, encoded(Topic.EXIT_GOAL, ids.exit_id(tenant, enrollment), exited)),
    ]


async def stats(pool: asyncpg.Pool, tenant: str, workflow: str) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT total_enrolled, goals_achieved FROM workflow_stats WHERE tenant_id = $1 AND workflow_id = $2",
        tenant,
        workflow,
    )
    achievements = await pool.fetchval(
        "SELECT count(*) FROM workflow_goal_achievements WHERE tenant_id = $1 AND workflow_id = $2",
        tenant,
        workflow,
    )
    return row["total_enrolled"], row["goals_achieved"], achievements


async def test_replays_and_reordering_never_double_count(pool: asyncpg.Pool) -> None:
    tenant, workflow, topics = f"t-{uuid.uuid4().hex[:6]}", "wf", Topics()
    projector = Projector(pool, topics.prefix)
    events = journey(tenant, workflow, "en1", str(uuid.uuid4()))
    # The exit first (cross-topic reordering), then everything, then everything again (redelivery).
    for topic, value in [events[2], *events, *events]:
        await projector.process_batch([topics.record(topic, value)])
    assert await stats(pool, tenant, workflow) == (1, 1, 1)
    partition = await pool.fetchval(
        "SELECT tableoid::regclass::text FROM workflow_goal_achievements WHERE tenant_id = $1", tenant
    )
    assert partition == "workflow_goal_achievements_2026_03"  # the log is partitioned by month
    row = await pool.fetchrow(
        "SELECT * FROM enrollments WHERE tenant_id = $1 AND enrollment_id = 'en1'", tenant
    )
    assert row["status"] == "completed_goal" and row["enrolled_at"] == T0
    hours = await pool.fetchval(
        "SELECT time_to_goal_seconds / timed_exits / 3600 FROM workflow_stats WHERE tenant_id = $1", tenant
    )
    assert hours == 2.0
    assert await goal_type_timing(pool, tenant) == [("tag_added", 1, 7200.0)]
    # Another tenant with the same workflow and enrollment ids is counted apart.
    other = f"o-{uuid.uuid4().hex[:6]}"
    await projector.process_batch(
        [topics.record(t, v, partition=1) for t, v in journey(other, workflow, "en1", "g")]
    )
    assert await stats(pool, tenant, workflow) == (1, 1, 1)
    assert await stats(pool, other, workflow) == (1, 1, 1)


async def goal_type_timing(pool: asyncpg.Pool, tenant: str) -> list[tuple[str, int, float]]:
    """(goal type, timed achievements, their seconds) from the per-goal-type histogram."""
    rows = await pool.fetch(
        """
        SELECT goal_type, sum(achievements) AS n, sum(seconds) AS s
        FROM workflow_goal_type_time_to_goal_histogram WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1
        """,
        tenant,
    )
    return [(r["goal_type"], int(r["n"]), float(r["s"])) for r in rows]


async def test_an_achievement_is_timed_from_its_own_enrolled_at_or_else_the_start(pool: asyncpg.Pool) -> None:
    """Without enrolled_at (as older workers published) and before its start, it is counted, not timed."""
    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    (_, started), (_, bare), _ = journey(tenant, "wf", "en1", "g1")
    await projector.process_batch([topics.record(Topic.GOAL_ACHIEVED, bare)])
    await projector.process_batch([topics.record(Topic.ENROLLMENT_STARTED, started)])
    assert await goal_type_timing(pool, tenant) == []
    # The same achievement carrying enrolled_at is timed whatever the order.
    other = f"o-{uuid.uuid4().hex[:6]}"
    event = json.loads(journey(other, "wf", "en1", "g1")[1][1])
    event["data"]["enrolled_at"] = (T0 - timedelta(hours=1)).isoformat()
    await projector.process_batch([topics.record(Topic.GOAL_ACHIEVED, json.dumps(event).encode())])
    assert await goal_type_timing(pool, other) == [("tag_added", 1, 3 * 3600.0)]
    achieved = await pool.fetchval(
        "SELECT sum(achieved) FROM workflow_goal_type_hourly WHERE tenant_id = $1", tenant
    )
    assert achieved == 1


async def test_tracking_only_moves_forward_and_rolls_back_the_batch(pool: asyncpg.Pool) -> None:
    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    (topic, started), *_ = journey(tenant, "wf", "en1", "g")
    first = topics.record(topic, started, offset=10)
    await projector.process_batch([first])
    assert (await projector.positions())[(first.topic, 0)] == 11
    second = cloud_event(
        "workflow.enrollment.started", tenant, {"workflow_id": "wf", "enrollment_id": "en2"}, "c2"
    )
    with pytest.raises(TrackingConflict):  # a zombie re-applying offset 10
        await projector.process_batch([topics.record(topic, json.dumps(second).encode(), offset=10)])
    count = await pool.fetchval("SELECT count(*) FROM enrollments WHERE tenant_id = $1", tenant)
    assert count == 1, "the conflicting batch must roll back whole"


async def test_one_partition_behind_rolls_back_the_batch_of_every_partition(pool: asyncpg.Pool) -> None:
    """The tracking rows of a batch move in one statement: one that cannot move forward is
    a conflict, named, and nothing of the batch stays (the other partition's row neither)."""
    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    (topic, started), *_ = journey(tenant, "wf", "en1", "g")
    await projector.process_batch([topics.record(topic, started, partition=1, offset=10)])
    other = cloud_event(
        "workflow.enrollment.started", tenant, {"workflow_id": "wf", "enrollment_id": "en2"}, "c2"
    )
    batch = [
        topics.record(topic, json.dumps(other).encode(), partition=0, offset=5),  # ahead: would move
        topics.record(topic, started, partition=1, offset=10),  # a zombie's redelivery
    ]
    with pytest.raises(TrackingConflict, match=r"\[1\] is already past offset 10"):
        await projector.process_batch(batch)
    positions = await projector.positions()
    assert (topics.prefix + topic, 0) not in positions
    assert positions[(topics.prefix + topic, 1)] == 11
    count = await pool.fetchval("SELECT count(*) FROM enrollments WHERE tenant_id = $1", tenant)
    assert count == 1, "the conflicting batch must roll back whole"


async def test_invalid_records_are_skipped_not_fatal(pool: asyncpg.Pool) -> None:
    topics = Topics()
    projector = Projector(pool, topics.prefix)
    batch = [topics.record(Topic.ENROLLMENT_STARTED, b"{oops"), topics.record(Topic.ENROLLMENT_STARTED, None)]
    assert await projector.process_batch(batch) == 0
    assert (await projector.positions())[(batch[0].topic, 0)] == 2


@pytest.mark.parametrize(
    ("ended_after_hours", "status", "exits"), [(1, "exited", 0), (3, "completed_goal", 1)]
)
async def test_whichever_happened_first_of_end_and_goal_wins(
    pool: asyncpg.Pool, ended_after_hours: int, status: str, exits: int
) -> None:
    """The goal exit is at T0 + 2 h; an end before it stands, an end after it does not."""
    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    (_, started), _, (_, exit_) = journey(tenant, "wf", "en1", "g")
    ended = cloud_event(
        "workflow.enrollment.ended",
        tenant,
        {"workflow_id": "wf", "enrollment_id": "en1", "reason": "exited"},
        "c1",
        T0 + timedelta(hours=ended_after_hours),
    )
    # The end is projected before the exit, as when the topics arrive in that order.
    for topic, value in (
        (Topic.ENROLLMENT_STARTED, started),
        (Topic.ENROLLMENT_ENDED, json.dumps(ended).encode()),
        (Topic.EXIT_GOAL, exit_),
    ):
        await projector.process_batch([topics.record(topic, value)])
    row = await pool.fetchrow("SELECT status FROM enrollments WHERE tenant_id = $1", tenant)
    assert row["status"] == status
    assert (
        await pool.fetchval("SELECT goals_achieved FROM workflow_stats WHERE tenant_id = $1", tenant) == exits
    )


async def test_an_achievement_re_emitted_at_another_time_counts_once(pool: asyncpg.Pool) -> None:
    """Its id alone identifies it: the same id with another achieved_at (here in another month,
    so another partition of the log) is a redelivery, not a second achievement."""
    tenant, topics = f"t-{uuid.uuid4().hex[:6]}", Topics()
    projector = Projector(pool, topics.prefix)
    _, (_, first), _ = journey(tenant, "wf", "en1", "g1")
    again = json.loads(first)
    later = T0 + timedelta(days=40)
    again["time"] = again["data"]["achieved_at"] = later.isoformat()
    for value in (first, json.dumps(again).encode()):
        await projector.process_batch([topics.record(Topic.GOAL_ACHIEVED, value)])
    logged = await pool.fetch(
        "SELECT achieved_at FROM workflow_goal_achievements WHERE tenant_id = $1", tenant
    )
    assert [r["achieved_at"] for r in logged] == [T0 + timedelta(hours=2)]
    counted = await pool.fetchval(
        """
        SELECT (SELECT sum(achieved) FROM workflow_goal_type_stats WHERE tenant_id = $1)
             + (SELECT sum(achieved) FROM workflow_goal_type_hourly WHERE tenant_id = $1)
             + (SELECT sum(achieved) FROM workflow_goal_type_daily WHERE tenant_id = $1)
        """,
        tenant,
    )
    assert counted == 3, "one achievement in each of the all-time, hourly and daily rollups"
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'goal.achieved'", tenant
    )
    assert audited == 1
