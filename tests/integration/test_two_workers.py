"""Two workers of one group share the partitions (engine issue, point 11): the second
joins in the middle of a stream, the contact table moves with its partitions, and every
enrollment exits exactly once (by id); none is lost."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from goal_engine.core.config import Settings
from tests.integration.helpers import eventually
from tests.integration.worker_harness import (
    Exits,
    Producer,
    TagWorkflow,
    Worker,
    isolated_deployment,
    uncommitted,
)

pytestmark = pytest.mark.integration

FIRST_WAVE = 300  # enrolled while one worker runs; their tags span the second one's arrival
SECOND_WAVE = 100  # enrolled and tagged once both run
TAGS_PER_SECOND = 60  # the first wave's tags take 5 s


async def test_a_second_worker_joining_mid_stream_loses_no_exit(topics: Settings) -> None:
    settings = await isolated_deployment(
        topics,
        "pair",
        # Exited enrollments stay in the tables, so both can be counted at the end.
        ended_retention_seconds=3600,
        sweep_interval_seconds=3600,
        worker_session_timeout_seconds=6,
        # Commits by count too, mid-fetch and during the handover (transport.py, correction 5).
        worker_commit_every=50,
    )
    workflow = TagWorkflow(f"t-{uuid.uuid4().hex[:6]}", "wf-goal", "tag-goal")
    first, second = range(FIRST_WAVE), range(FIRST_WAVE, FIRST_WAVE + SECOND_WAVE)
    everyone = [*first, *second]
    enrollments = {workflow.enrollment(i) for i in everyone}

    one, two = Worker(settings, "one"), Worker(settings, "two")
    async with Producer(settings) as producer:
        await producer.send([workflow.activated(datetime.now(UTC))])
        one.start()
        try:
            await one.wait_ready()
            await producer.send([workflow.enrollment_started(i) for i in first])
            await eventually(
                one.metrics,
                lambda m: m.get("goal_engine_active_enrollments") == FIRST_WAVE,
                what="the first wave in worker one's table",
            )

            tags = asyncio.create_task(
                producer.stream([workflow.tag_added(i) for i in first], TAGS_PER_SECOND)
            )
            await eventually(
                one.metrics,
                lambda m: m.get("goal_engine_exits_total", 0) >= 30,
                what="worker one to exit the first enrollments",
            )
            two.start()  # the group rebalances while the tags flow
            await two.wait_ready()
            await tags
            await eventually(
                two.metrics,
                lambda m: m.get("goal_engine_contact_states", 0) > 0,
                what="worker two to take over part of the contact table",
            )

            # Both run: a second wave, each tag right behind its enrollment.
            await producer.send(
                [r for i in second for r in (workflow.enrollment_started(i), workflow.tag_added(i))]
            )
            exits = await eventually(
                lambda: Exits.read(settings),
                lambda e: e.count(enrollments) == len(enrollments),
                timeout=60,
                what="an exit for every enrollment",
            )
            by_worker = {w.name: await w.metrics() for w in (one, two)}
            print(
                f"\n{exits.records} exit records for {len(enrollments)} enrollments, "
                f"{exits.duplicates} duplicate(s); exits published by worker: "
                + ", ".join(f"{n} {m.get('goal_engine_exits_total', 0):.0f}" for n, m in by_worker.items())
            )

            assert set(exits.ids_by_enrollment) == enrollments
            assert all(
                exits.ids_by_enrollment[workflow.enrollment(i)] == {workflow.exit_id(i)} for i in everyone
            )
            assert by_worker["two"].get("goal_engine_exits_total", 0) > 0, "worker two took part"
            # Each contact's state is held by exactly one worker: the partitions were split,
            # and worker one forgot the contacts that moved.
            held = sum(m.get("goal_engine_contact_states", 0) for m in by_worker.values())
            assert held == len(enrollments)
            await eventually(
                lambda: uncommitted(settings),
                lambda lag: not any(lag.values()),
                what="the group to commit every record",
            )
        finally:
            two.stop()
            one.stop()
