"""Crash safety (engine issue, point 10): a worker SIGKILLed in the middle of a stream
and restarted recovers its contact table; no exit is lost, none is doubled under
another id, and a tag redelivered after the restart does not exit anyone again."""

from __future__ import annotations

import asyncio
import time
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

CONTACTS = 300
KILL_AFTER_EXITS = 60  # of 300: the worker dies with most of the tags still to process
REDELIVERED = 10


async def test_a_killed_worker_recovers_its_state_and_loses_no_exit(topics: Settings) -> None:
    settings = await isolated_deployment(
        topics,
        "crash",
        # Exited enrollments stay in the table for the whole test (no sweep), so a tag
        # redelivered after the restart meets the recovered "already exited" state.
        ended_retention_seconds=3600,
        sweep_interval_seconds=3600,
        # The broker's minimum: the restarted worker gets its partitions back soon.
        worker_session_timeout_seconds=6,
    )
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    goal = TagWorkflow(tenant, "wf-goal", "tag-goal")
    # Every contact is enrolled here too: its exit, on a tag sent after some other record
    # of the same contact (same partitions), shows that record has been processed.
    sentinel = TagWorkflow(tenant, "wf-sentinel", "tag-sentinel")
    everyone = range(CONTACTS)
    enrollments = {goal.enrollment(i) for i in everyone}

    worker = Worker(settings, "crash")
    async with Producer(settings) as producer:
        now = datetime.now(UTC)
        await producer.send([goal.activated(now), sentinel.activated(now)])
        worker.start()
        try:
            await worker.wait_ready()
            await producer.send([w.enrollment_started(i) for i in everyone for w in (goal, sentinel)])
            await eventually(
                worker.metrics,
                lambda m: m.get("goal_engine_active_enrollments") == 2 * CONTACTS,
                what="every enrollment in the contact table",
            )

            # One tag per contact (made now: a goal counts only events after the
            # enrollment), streamed over ~1.5 s; SIGKILL while the worker works through
            # them. Streaming keeps the kill mid-stream however fast the worker is: sent
            # all at once, a quiet machine exited all 300 before the kill arrived.
            tags = [goal.tag_added(i) for i in everyone]
            sending = asyncio.create_task(producer.stream(tags, per_second=200))
            await eventually(
                worker.metrics,
                lambda m: m.get("goal_engine_exits_total", 0) >= KILL_AFTER_EXITS,
                what=f"{KILL_AFTER_EXITS} exits before the kill",
            )
            worker.kill()
            killed_at = time.monotonic()
            await sending
            before = await Exits.read(settings)
            print(f"\nat the kill: {before.count(enrollments)}/{CONTACTS} enrollments had exited")
            assert 0 < before.count(enrollments) < CONTACTS, "the kill must land mid-stream"

            worker.start()
            await worker.wait_ready()
            ready_after = time.monotonic() - killed_at
            after = await eventually(
                lambda: Exits.read(settings),
                lambda exits: exits.count(enrollments) == CONTACTS,
                timeout=60,
                what="an exit for every enrollment after the restart",
            )
            print(
                f"restart: ready {ready_after:.1f} s and every exit out {time.monotonic() - killed_at:.1f} s "
                f"after the kill; {after.records} exit records for {CONTACTS} enrollments, "
                f"{after.duplicates} duplicate(s) (same id, re-published)"
            )
            # None lost, none exited under a second id, nothing for anyone else.
            assert set(after.ids_by_enrollment) == enrollments
            assert all(after.ids_by_enrollment[goal.enrollment(i)] == {goal.exit_id(i)} for i in everyone)
            assert after.duplicates == after.records - CONTACTS

            # Tags redelivered (same event id) for enrollments that exited before the kill:
            # the recovered state knows they exited, so no exit record appears.
            exited = [i for i in everyone if goal.enrollment(i) in before.ids_by_enrollment][:REDELIVERED]
            settled = await Exits.read(settings)
            await producer.send([tags[i] for i in exited])
            await producer.send([sentinel.tag_added(i) for i in exited])
            final = await eventually(
                lambda: Exits.read(settings),
                lambda exits: exits.count(sentinel.enrollment(i) for i in exited) == len(exited),
                what="the sentinel exits, which follow the redelivered tags",
            )
            for i in exited:
                assert final.records_by_id[goal.exit_id(i)] == settled.records_by_id[goal.exit_id(i)]

            # And the restarted worker commits all it consumed (faust-streaming#596 would
            # leave a hole it never commits past).
            await eventually(
                lambda: uncommitted(settings),
                lambda lag: not any(lag.values()),
                what="the group to commit every record",
            )
        finally:
            worker.stop()
