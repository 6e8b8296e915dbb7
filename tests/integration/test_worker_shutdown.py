"""A worker asked to stop (SIGTERM: `make run`'s Ctrl-C, a Kubernetes pod deletion) stops by
itself, in seconds, having committed what it processed, so its successor starts where it
ended instead of re-reading (faust-streaming left it hanging in its tables' shutdown until
it was killed: ``goal_engine/stream/transport.py``, ``App._stop_consumer``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest

from goal_engine.core.config import Settings
from tests.integration.worker_harness import Producer, TagWorkflow, Worker, isolated_deployment, uncommitted

pytestmark = pytest.mark.integration

CONTACTS = 50
#: Faust's own wait for the tables (5 s, bounded by us), its 2 s gather of futures, and slack for
#: a busy machine; the supervisor would SIGKILL only after 20 s.
STOP_WITHIN_SECONDS = 15


async def test_sigterm_stops_the_worker_cleanly_and_commits(topics: Settings) -> None:
    settings = await isolated_deployment(topics, "shutdown", worker_session_timeout_seconds=6)
    workflow = TagWorkflow(f"t-{uuid.uuid4().hex[:6]}", "wf-stop", "tag-stop")
    worker = Worker(settings, "shutdown")
    async with Producer(settings) as producer:
        await producer.send([workflow.activated(datetime.now(UTC))])
        worker.start()
        try:
            await worker.hold_enrollments(producer, workflow, CONTACTS)
            started = time.monotonic()
            assert worker.process.proc is not None
            worker.process.proc.terminate()
            code = await asyncio.to_thread(worker.process.proc.wait, STOP_WITHIN_SECONDS + 5)
            took = time.monotonic() - started
            print(f"\nSIGTERM: the worker exited with {code} after {took:.1f} s")
            assert code == 0, f"see {worker.process.log_path}"
            assert took < STOP_WITHIN_SECONDS
            assert not any((await uncommitted(settings)).values()), "it commits before it exits"
        finally:
            worker.stop()
