"""``python -m goal_engine.bench.steps``: the worker's own CPU per event, without Kafka.

Runs the worker's steps 1 and 3 (``stream.steps.evaluate_events`` and
``ContactBatch.write``, :mod:`goal_engine.stream.worker`) in this process on the
records ``make bench`` produces: N enrollments, then one tag per contact, each
exiting its enrollment. No broker, no Faust: what is left of the worker's CPU
per event once Kafka and Faust are taken away, so one change to the evaluation
can be measured on its own (``make bench`` mixes it with Faust, aiokafka and the
broker on the same cores). On this shared machine one invocation still differs
from the next by up to ~15 % (2026-12-03): it prints the least of ``--repeat``
rounds, and a change is compared over alternated invocations.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import cast

from faust.types import EventT

from goal_engine.bench.events import KafkaRecord, Population, utcnow
from goal_engine.cli import collect_garbage_less_often
from goal_engine.core.config import Settings
from goal_engine.domain.evaluation import Clock
from goal_engine.stream.batch import ContactBatch
from goal_engine.stream.listeners import ListenerIndex
from goal_engine.stream.steps import PlainEvent, PlainRecord, evaluate_events
from goal_engine.stream.workflow_configs import WorkflowConfigs


def _events(records: Sequence[KafkaRecord]) -> list[PlainEvent]:
    return [
        PlainEvent(PlainRecord(r.value, str(r.topic), offset=i, key=r.key)) for i, r in enumerate(records)
    ]


def run(contacts: int, tenants: int, batch_size: int) -> dict[str, float]:
    """Microseconds of CPU per enrollment and per tag, steps 1 and 3 of each batch."""
    settings = Settings()
    collect_garbage_less_often(settings)  # as the worker does: the collector is part of its CPU
    population, now = Population(tenants), utcnow()
    configs = WorkflowConfigs(settings)
    for t in range(tenants):
        configs.apply_record(population.workflow_activated(t, now).value)
    table: dict[str, bytes] = {}
    index = ListenerIndex()

    def clock() -> Clock:
        return Clock(now=utcnow(), max_kept_events=settings.max_kept_events)

    def cpu_per_event(events: list[PlainEvent]) -> float:
        started = time.process_time()
        for i in range(0, len(events), batch_size):
            batch = ContactBatch(table, index)
            evaluate_events(
                batch,
                cast(list[EventT], events[i : i + batch_size]),  # the parts of an EventT the steps read
                lambda t: t,
                lambda r, k: True,
                configs.get,
                clock(),
            )
            batch.write(clock())
        elapsed = time.process_time() - started
        return elapsed / len(events) * 1e6

    enrolled = cpu_per_event(_events([population.enrollment_started(i, now) for i in range(contacts)]))
    tagged = cpu_per_event(_events([population.tag_added(i, utcnow()) for i in range(contacts)]))
    if index.active_enrollments():
        raise SystemExit(f"{index.active_enrollments()} enrollments did not exit: the bench is broken")
    return {"enrollment_us": enrolled, "tag_us": tagged}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m goal_engine.bench.steps",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--contacts", type=int, default=20_000, help="enrolled contacts, each tagged once")
    parser.add_argument("--tenants", type=int, default=10, help="tenants, one tag-goal workflow each")
    parser.add_argument("--batch", type=int, default=500, help="events per evaluated batch, as the worker's")
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="rounds, each on a fresh population; the least CPU of each figure is printed "
        "(as timeit does: noise on a shared machine only ever adds)",
    )
    args = parser.parse_args(argv)
    rounds = [run(args.contacts, args.tenants, args.batch) for _ in range(max(1, args.repeat))]
    enrollment_us, tag_us = (min(r[name] for r in rounds) for name in ("enrollment_us", "tag_us"))
    print(
        f"steps: {enrollment_us:.0f} us of CPU per enrollment, "
        f"{tag_us:.0f} us per tag (each an exit), steps 1 and 3, no Kafka, least of {len(rounds)} rounds"
    )


if __name__ == "__main__":
    main()
