"""The Faust stream worker: which agents, tasks and timers run which step.

Each decorated function here is one line into :class:`~.worker.Worker`, whose
docstring gives the order of the steps that at-least-once depends on. Where
each concern lives:

- :mod:`.topology`: the Faust app, topics and the contact table;
- :mod:`.steps`: per-record decisions (read, evaluate), no Kafka;
- :mod:`.routing`: which records are evaluated where they were read;
- :mod:`.batch`: one batch's evaluate / publish / write;
- :mod:`.worker`: the steps with their I/O;
- :mod:`.ownership`: what a worker keeps and indexes after a rebalance;
- :mod:`.transport`: corrections to faust-streaming's consumer.
"""

from __future__ import annotations

import faust

from goal_engine.core.config import Settings
from goal_engine.stream.intake import BulkIntake
from goal_engine.stream.topology import new_app
from goal_engine.stream.worker import Worker


def create_app(settings: Settings) -> faust.App:
    app = new_app(settings)
    worker = Worker(app, settings)
    topology = worker.topology

    @app.task
    async def follow_configs() -> None:
        await worker.configs.run()

    @app.timer(interval=settings.sweep_interval_seconds)
    async def sweep() -> None:
        await worker.sweep()

    @app.timer(interval=5.0)
    async def report_lag() -> None:
        await worker.report_lag()

    @app.agent(topology.inputs, name="evaluate")
    async def evaluate(stream: faust.StreamT) -> None:
        await worker.configs.ready.wait()
        worker.ready()
        intake = BulkIntake(stream, settings.evaluate_batch_size, settings.evaluate_batch_wait_seconds)
        while True:
            # The batch's records are acked once it is stored, in the background (worker.py).
            await worker.process(await intake.take(), done=intake.ack)

    return app
