"""No listener leak (R9, R10; engine issue, point 5): once every enrollment has ended,
by a goal exit or by ``workflow.enrollment.ended``, the armed-listener gauge is 0, and the
worker's contact table holds nothing for them, neither in memory nor in its changelog
(a restarted worker recovers an empty table)."""

from __future__ import annotations

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

CONTACTS = 90


async def test_when_every_enrollment_has_ended_nothing_is_left(topics: Settings) -> None:
    settings = await isolated_deployment(
        topics,
        "leak",
        # Ended enrollments and kept goal events are forgotten after 2 s, swept every second.
        grace_seconds=2,
        ended_retention_seconds=2,
        sweep_interval_seconds=1,
        worker_session_timeout_seconds=6,
    )
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    main = TagWorkflow(tenant, "wf-main", "tag-main")
    second = TagWorkflow(tenant, "wf-second", "tag-second")  # a third of the contacts are in both
    everyone, in_both = range(CONTACTS), range(0, CONTACTS, 3)
    converted = range(CONTACTS // 2)  # exit on the goal; the others end without it
    strangers = range(CONTACTS, CONTACTS + 10)  # tagged, never enrolled: kept for the grace window

    worker = Worker(settings, "leak")
    async with Producer(settings) as producer:
        await producer.send([main.activated(datetime.now(UTC)), second.activated(datetime.now(UTC))])
        worker.start()
        try:
            await worker.wait_ready()
            started = [main.enrollment_started(i) for i in everyone]
            started += [second.enrollment_started(i) for i in in_both]
            await producer.send(started)
            armed = CONTACTS + len(in_both)  # one goal per workflow
            await eventually(
                worker.metrics,
                lambda m: (
                    m.get("goal_engine_armed_listeners") == armed
                    and m.get("goal_engine_active_enrollments") == armed
                ),
                what=f"{armed} armed listeners",
            )

            endings = [main.tag_added(i) for i in converted]
            endings += [main.enrollment_ended(i) for i in everyone if i not in converted]
            endings += [second.enrollment_ended(i) for i in in_both]
            endings += [main.tag_added(i) for i in strangers]
            await producer.send(endings)

            # Disarmed as each ending is processed ...
            metrics = await eventually(
                worker.metrics,
                lambda m: (
                    m.get("goal_engine_armed_listeners") == 0 and m.get("goal_engine_active_enrollments") == 0
                ),
                what="every listener disarmed",
            )
            assert metrics.get("goal_engine_contact_states", 0) > 0, "ended enrollments are kept a while"
            # ... and forgotten once their retention (and the strangers' grace) is over.
            await eventually(
                worker.metrics,
                lambda m: m.get("goal_engine_contact_states") == 0,
                timeout=30,
                what="an empty contact table",
            )
            exits = await Exits.read(settings)
            assert set(exits.ids_by_enrollment) == {main.enrollment(i) for i in converted}

            # Nothing left in the changelog either: a restarted worker recovers no contact.
            # Killed once the group has committed everything (Faust flushes the changelog
            # first), so nothing is redelivered: what it holds after the restart is what it
            # recovered. (One new enrollment, once processed, shows the recovery is over:
            # Faust feeds the agents only after it.)
            await eventually(
                lambda: uncommitted(settings),
                lambda lag: not any(lag.values()),
                what="the group to commit every record",
            )
            worker.kill()
            worker.start()
            await worker.wait_ready()
            await producer.send([main.enrollment_started(CONTACTS + 100)])
            metrics = await eventually(
                worker.metrics,
                lambda m: m.get("goal_engine_active_enrollments") == 1,
                what="the new enrollment after the restart",
            )
            assert metrics.get("goal_engine_contact_states") == 1
            assert metrics.get("goal_engine_armed_listeners") == 1
        finally:
            worker.stop()
