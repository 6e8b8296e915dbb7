"""``python -m goal_engine.bench.projector`` (``make bench-projector``): see ``--help``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from goal_engine.bench.cli import add_log_level, bench_parser, positive_int, start_logging
from goal_engine.bench.stack import (
    BENCH_DIR,
    LOCAL,
    cpu_seconds,
    metric_samples,
    provide_postgres,
    python_speed,
    settings_env,
)
from goal_engine.contract.events import ExitGoal, GoalAchieved, TriggerEvent, encode_event, make_event
from goal_engine.contract.topics import Topic, contact_key
from goal_engine.core.config import Settings
from goal_engine.devstack.kafka import KafkaBroker
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.postgres import create_database, drop_database
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command
from goal_engine.domain import ids

log = logging.getLogger("goal_engine.bench")

DESCRIPTION = """\
Benchmark the projector: fold N achievements and their exits from Kafka into PostgreSQL.

Phases:
  1. stack     Kafka (GOAL_ENGINE_KAFKA_BOOTSTRAP, else the devstack's own, data in
               .local/bench-kafka) and PostgreSQL (GOAL_ENGINE_DATABASE_URL, else the
               devstack's own, data in .local/bench-projector-postgres), a fresh database
               and topic prefix for this run; migrate.
  2. produce   N workflow.goal.achieved and N workflow.exit.goal records, built with the
               contract models as the worker publishes them (deterministic ids), over
               TENANTS x WORKFLOWS workflows and the last 30 days.
  3. fold      `goal-engine projector` as a child process; the rate is measured on the
               tracking rows (every record committed), from its first committed batch to
               the last; then its lag metric must be 0 on every partition, nothing
               parked, and the read models must count exactly N achievements and N exits.
  4. anchor    a plain COPY of the same N achievement rows into an empty table shaped as
               workflow_goal_achievements (same indexes): the physical floor per row.
  5. report    events/s, achievements/s, COPY rows/s and the ratio; the projector's CPU.
               As a table on stdout and as JSON in .local/bench/projector-report-<time>.json.
Everything started here is stopped at the end, on failure and on Ctrl-C too.
"""

EPILOG = """\
exit codes: 0 folded, checked and reported; 1 a check failed or a phase failed; 130 interrupted.

examples:
  python -m goal_engine.bench.projector                          # 50,000 achievements (100,000 events)
  python -m goal_engine.bench.projector --achievements 200000 --batch-size 2000
"""

GOAL_TYPES = ("tag_added", "purchase_made", "form_submitted")


def build_parser() -> argparse.ArgumentParser:
    parser = bench_parser("python -m goal_engine.bench.projector", DESCRIPTION, EPILOG)
    workload = parser.add_argument_group("workload")
    workload.add_argument(
        "--achievements",
        type=positive_int,
        default=50_000,
        metavar="N",
        help="achievements to fold, each with its exit (default: %(default)s)",
    )
    workload.add_argument("--tenants", type=positive_int, default=10, help="(default: %(default)s)")
    workload.add_argument(
        "--workflows",
        type=positive_int,
        default=20,
        metavar="PER_TENANT",
        help="workflows per tenant (default: %(default)s)",
    )
    workload.add_argument(
        "--partitions", type=positive_int, default=3, help="partitions per topic (default: %(default)s)"
    )
    workload.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="RECORDS",
        help="the projector's GOAL_ENGINE_PROJECTOR_BATCH_SIZE (default: its own)",
    )
    workload.add_argument(
        "--timeout",
        type=positive_int,
        default=600,
        metavar="SECONDS",
        help="give up folding after this long (default: %(default)s)",
    )
    add_log_level(parser.add_argument_group("output"))
    return parser  # fmt: skip


@dataclass(frozen=True)
class Achievement:
    """One achievement row as the projector writes it, and the two records that carry it."""

    row: tuple[object, ...]
    records: tuple[tuple[Topic, bytes, bytes], tuple[Topic, bytes, bytes]]


def achievements(n: int, tenants: int, workflows: int, now: datetime) -> list[Achievement]:
    """N achievements over ``tenants`` x ``workflows`` and the 30 days before ``now`` (seeded)."""
    rng = random.Random(7)
    return [
        achievement(i, f"bench-t{i % tenants}", f"wf-{rng.randrange(workflows)}", rng, now) for i in range(n)
    ]


def achievement(i: int, tenant: str, workflow: str, rng: random.Random, now: datetime) -> Achievement:
    enrollment, contact = f"en-{i}", f"c-{i}"
    goal_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{tenant}/{workflow}"))
    at = now - timedelta(seconds=rng.randrange(30 * 86400))
    enrolled_at = at - timedelta(seconds=rng.randrange(1, 7 * 86400))
    trigger = TriggerEvent(id=f"src-{i}", type="contact.tag.added", time=at, data={"tag_id": "vip"})
    achieved = GoalAchieved(
        id=ids.achievement_id(tenant, enrollment, goal_id), workflow_id=workflow,
        workflow_enrollment_id=enrollment, contact_id=contact, goal_config_id=goal_id,
        goal_type=GOAL_TYPES[i % len(GOAL_TYPES)], achieved_at=at, trigger_event=trigger,
        enrolled_at=enrolled_at,
    )  # fmt: skip
    exited = ExitGoal(
        workflow_id=workflow, workflow_enrollment_id=enrollment, contact_id=contact,
        goal_config_ids=[goal_id], exited_at=at, enrolled_at=enrolled_at,
    )  # fmt: skip
    key = contact_key(tenant, contact).encode()
    events = (
        make_event(Topic.GOAL_ACHIEVED, event_id=achieved.id, tenant_id=tenant, time=at, subject=contact,
                   data=achieved),
        make_event(Topic.EXIT_GOAL, event_id=ids.exit_id(tenant, enrollment), tenant_id=tenant, time=at,
                   subject=contact, data=exited),
    )  # fmt: skip
    row = (
        tenant, uuid.UUID(achieved.id), workflow, enrollment, contact, goal_id, achieved.goal_type, at,
        trigger.model_dump_json(), json.dumps(achieved.metadata),
    )  # fmt: skip
    first, second = ((Topic(e.type), key, encode_event(e)) for e in events)
    return Achievement(row, (first, second))


async def produce(settings: Settings, items: list[Achievement]) -> float:
    """Produce every record (acks=all); returns the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for item in items:
            for topic, key, value in item.records:
                pending.append(await producer.send(settings.topic(topic), value=value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


@dataclass
class Fold:
    seconds: float  # from the first committed batch to the last
    records: int  # committed within those seconds
    cpu_seconds: float | None
    lag: float
    parked: float


async def tracked(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projector_tracking"))


async def fold(settings: Settings, pool: asyncpg.Pool, total: int, timeout: float) -> Fold:
    env = child_env(settings_env(settings))
    name = f"projector-{settings.topic_prefix.rstrip('.')}"
    projector = ManagedProcess(
        "projector", goal_engine_command("projector"), env, BENCH_DIR / "logs" / f"{name}.log"
    )
    projector.start()
    try:
        deadline = time.monotonic() + timeout
        first: tuple[float, int] | None = None
        done = 0
        while done < total:
            if projector.exit_code is not None:
                raise RuntimeError(
                    f"the projector exited with {projector.exit_code}; see {projector.log_path}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"folded {done} of {total} records in {timeout} s")
            await asyncio.sleep(0.05)
            done = await tracked(pool)
            if first is None and done:
                first = (time.perf_counter(), done)
        assert first is not None
        seconds = time.perf_counter() - first[0]
        assert projector.proc is not None
        cpu = cpu_seconds(projector.proc.pid)
        url = f"http://127.0.0.1:{settings.projector_metrics_port}/metrics"
        async with httpx.AsyncClient() as client:
            samples = await metric_samples(client, url) or []
        lag = sum(s.value for s in samples if s.name == "goal_engine_consumer_lag_records")
        parked = sum(s.value for s in samples if s.name == "goal_engine_projector_parked_records_total")
        return Fold(seconds, total - first[1], cpu, lag, parked)
    finally:
        projector.stop()


async def check_read_models(pool: asyncpg.Pool, n: int) -> None:
    found = await pool.fetchval("SELECT count(*) FROM workflow_goal_achievements")
    exits = await pool.fetchval("SELECT coalesce(sum(goals_achieved), 0) FROM workflow_stats")
    by_type = await pool.fetchval("SELECT coalesce(sum(achieved), 0) FROM workflow_goal_type_stats")
    if not found == exits == by_type == n:
        raise RuntimeError(
            f"expected {n} achievements and exits; log {found}, exits {exits}, by type {by_type}"
        )


async def copy_anchor(pool: asyncpg.Pool, items: list[Achievement]) -> float:
    """Seconds to COPY the same achievement rows into an empty table shaped as the log."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE bench_copy_anchor (LIKE workflow_goal_achievements INCLUDING ALL)")
        columns = ["tenant_id", "id", "workflow_id", "workflow_enrollment_id", "contact_id",
                   "goal_config_id", "goal_type", "achieved_at", "trigger_event", "metadata"]  # fmt: skip
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy_anchor", records=[i.row for i in items], columns=columns)
        return time.perf_counter() - started


async def measure(settings: Settings, args: argparse.Namespace) -> dict[str, object]:
    speed_before = python_speed()
    now = datetime.now(UTC)
    log.info("building %d achievements and their exits", args.achievements)
    items = achievements(args.achievements, args.tenants, args.workflows, now)
    total = 2 * len(items)
    produce_s = await produce(settings, items)
    log.info("produced %d records in %.1f s (%.0f/s)", total, produce_s, total / produce_s)
    pool = await asyncpg.create_pool(settings.database_url_asyncpg, min_size=1, max_size=2)
    try:
        result = await fold(settings, pool, total, args.timeout)
        await check_read_models(pool, len(items))
        copy_s = await copy_anchor(pool, items)
    finally:
        await pool.close()
    events_per_s = result.records / result.seconds
    copy_rows_per_s = len(items) / copy_s
    return {
        "achievements": len(items),
        "events": total,
        "produce_seconds": round(produce_s, 2),
        "fold_seconds": round(result.seconds, 2),
        "events_per_s": round(events_per_s),
        "achievements_per_s": round(events_per_s / 2),
        "copy_rows_per_s": round(copy_rows_per_s),
        "ratio_to_copy": round(events_per_s / 2 / copy_rows_per_s, 4),
        "projector_cpu_seconds": result.cpu_seconds,
        "lag_after": result.lag,
        "parked": result.parked,
        "batch_size": settings.projector_batch_size,
        # this host's speed (M Python loop iterations/s) before and after: its neighbours move it
        "python_speed_before": speed_before,
        "python_speed_after": python_speed(),
    }


def run(args: argparse.Namespace) -> int:
    base = Settings()
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as resources:
        overrides: dict[str, object] = {}
        if "GOAL_ENGINE_KAFKA_BOOTSTRAP" not in os.environ:
            broker = KafkaBroker(LOCAL / "bench-kafka", port=free_port())
            resources.callback(broker.stop)
            broker.start()
            overrides["kafka_bootstrap"] = broker.bootstrap
        server = provide_postgres(resources, base, LOCAL / "bench-projector-postgres")
        name = f"bench_projector_{run_id}"
        url = asyncio.run(create_database(server.url, name))
        resources.callback(lambda: asyncio.run(drop_database(server.url, name)))
        settings = base.model_copy(
            update={
                **overrides,
                "database_url": url,
                "topic_prefix": f"{base.topic_prefix}bench-projector-{run_id}.",
                "projector_group": f"goal-engine-bench-projector-{run_id}",
                "projector_metrics_port": free_port(),
                "partitions": args.partitions,
                "log_format": "text",
                **({"projector_batch_size": args.batch_size} if args.batch_size else {}),
            }
        )
        from goal_engine.kafka.admin import create_topics
        from projections.migrate import upgrade

        asyncio.run(create_topics(settings))
        upgrade(url)
        report = asyncio.run(measure(settings, args))
    failures = [f"{k} is {report[k]}, not 0" for k in ("lag_after", "parked") if report[k]]
    print_report(report)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"projector-report-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    for failure in failures:
        print(f"bench-projector: FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def print_report(report: dict[str, object]) -> None:
    for key, value in report.items():
        print(f"  {key:<22} {value}")
    print(
        f"bench-projector: {report['events_per_s']} events/s ({report['achievements_per_s']} achievements/s)"
        f" = {report['ratio_to_copy']} x COPY ({report['copy_rows_per_s']} rows/s)"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start_logging(args.log_level, "bench-projector")
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.error("bench-projector failed: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
