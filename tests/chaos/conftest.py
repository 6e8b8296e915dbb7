"""`make chaos`: the fault suite. Collected only with GOAL_ENGINE_CHAOS=1 (make chaos sets
it), so `make test` stays on local processes and never needs Docker.

One cluster (tests/chaos/cluster.py) and one steady load for the whole session; each test
is one fault, checked end to end. At the end: a table of the faults and the line
``chaos: N faults, L lost, D duplicated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

if not os.environ.get("GOAL_ENGINE_CHAOS"):
    collect_ignore_glob = ["test_*.py"]

# No Ryuk reaper: its image would come from a registry. The session removes its own
# containers, and the next session removes what a killed one left (by label).
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from tests.chaos.cluster import Cluster, remove_leftovers
from tests.chaos.load import Chaos, ExitWatcher, GoalLoad
from tests.chaos.report import RESULTS, render

LOGS = Path(__file__).resolve().parents[2] / ".local" / "chaos-logs"


@pytest.fixture(scope="session")
async def chaos() -> AsyncIterator[Chaos]:
    await asyncio.to_thread(remove_leftovers)
    cluster = Cluster()
    tasks: list[asyncio.Task[None]] = []
    load = GoalLoad(cluster.settings, cluster.run, rate=float(os.environ.get("GOAL_ENGINE_CHAOS_RATE", "20")))
    try:
        await cluster.start()
        await load.start()
        exits = ExitWatcher(cluster.settings)
        tasks = [asyncio.create_task(load.run_forever()), asyncio.create_task(exits.run_forever())]
        yield Chaos(cluster, load, exits)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await load.stop()
        LOGS.mkdir(parents=True, exist_ok=True)
        (LOGS / f"{cluster.run}.log").write_text("\n".join(cluster.dump_logs()))
        await asyncio.to_thread(cluster.remove)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RESULTS:
        terminalreporter.write_line("")
        for line in render(RESULTS):
            terminalreporter.write_line(line)
