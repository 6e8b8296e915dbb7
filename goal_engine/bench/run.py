"""The benchmark's phases, in order:

1. stack: Kafka, PostgreSQL, this run's topics, migrations, one worker (``stack.py``);
2. configure: one active workflow with a tag goal per tenant, produced straight to
   ``workflow.activated`` (as the outbox relay would); wait until the worker holds them;
3. load: N ``workflow.enrollment.started`` as fast as aiokafka goes; wait until the
   worker's ``goal_engine_active_enrollments`` reaches N, then until it is idle;
4. measure: ``contact.tag.added`` for distinct enrolled contacts at ``rate``, each one
   exiting exactly one enrollment: ``warmup`` seconds that are left out of the figures,
   then ``duration`` seconds that count; every ``workflow.exit.goal`` is matched to its
   source record by enrollment id, then a drain waits for the stragglers;
5. report: the worker's VmHWM/VmRSS, the table on stdout, the JSON under ``.local/bench``.

Latency is the exit record's Kafka timestamp minus the source record's: both are
CreateTime, stamped by producers on this machine (the bench's and the worker's), so one
clock and millisecond resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from goal_engine.bench.events import Population, utcnow
from goal_engine.bench.lifecycle import cancel_on_sigterm, progress, run_guarded
from goal_engine.bench.report import (
    BENCH_NOTES,
    BaselineResult,
    BurstResult,
    LatencyStats,
    LoadResult,
    MeasureResult,
    Report,
    Setup,
    WorkerMemory,
    file_stamp,
    render,
    write_samples,
)
from goal_engine.bench.stack import (
    BENCH_DIR,
    Stack,
    cpu_seconds,
    describe_database,
    host_cpu_seconds,
    memory_mib,
    start_stack,
    worker_metrics,
)
from goal_engine.contract.topics import Topic
from goal_engine.core.config import Settings
from goal_engine.devstack.kafka import jvm_options
from goal_engine.kafka.admin import topic_partitions
from goal_engine.kafka.producer import make_producer

log = logging.getLogger("goal_engine.bench")

TICK = 0.005  # seconds: the measure phase's pacing granularity


@dataclass(frozen=True)
class Options:
    enrollments: int
    rate: float
    duration: float
    warmup: float
    tenants: int
    partitions: int
    drain_timeout: float
    load_timeout: float
    ready_timeout: float
    progress_every: float
    keep_topics: bool
    worker_env: dict[str, str] = field(default_factory=dict)
    save_samples: bool = False  # also write every (source, exit) pair as CSV
    burst: bool = False  # instead of the paced measure: every enrolled contact tagged at once
    baseline_events: int = 50_000  # the raw aiokafka pipe's backlog (0: not run)
    profile: bool = False  # py-spy flame graph of the worker during the measure or burst phase
    workers: int = 1  # worker processes of one group

    @property
    def measure_events(self) -> int:
        return round(self.rate * self.duration)

    @property
    def warmup_events(self) -> int:
        return round(self.rate * self.warmup)


def run(options: Options, base: Settings) -> int:
    """Run every phase, print and save the report; the exit code says how it went."""
    run_id = uuid.uuid4().hex[:8]
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    samples = BENCH_DIR / f"samples-{file_stamp(started_at)}.csv" if options.save_samples else None
    resources = ExitStack()
    stack: Stack | None = None
    report: Report | None = None

    def phases() -> bool:
        nonlocal stack, report
        progress(f"run {run_id}: starting Kafka, PostgreSQL and one worker…")
        stack = start_stack(
            resources,
            base,
            run_id,
            options.partitions,
            options.worker_env,
            options.keep_topics,
            options.workers,
        )
        report = Report(
            run_id=run_id,
            started_at=started_at,
            ok=False,
            setup=_setup(stack, options),
            notes=list(BENCH_NOTES),
        )
        asyncio.run(_phases(stack, options, report, samples))
        result = report.burst if options.burst else report.measure
        report.ok = result is not None and result.missing == 0
        return report.ok

    def on_error(message: str) -> None:
        if report is not None:
            report.error = message

    def before_teardown() -> None:
        if stack is not None and report is not None and stack.worker.exit_code is None:
            report.memory = WorkerMemory(stack.worker_pid, *memory_mib(stack.worker_pid))

    code = run_guarded(phases, resources, on_error, before_teardown)
    if report is not None:
        print("\n" + render(report), flush=True)
        path = report.write(BENCH_DIR)
        print(f"\nreport: {path}", flush=True)
    return code


def _setup(stack: Stack, options: Options) -> Setup:
    s = stack.settings
    return Setup(
        kafka_bootstrap=s.kafka_bootstrap,
        kafka_started_by_bench=stack.kafka_started,
        database=describe_database(s.database_url_asyncpg),
        postgres_started_by_bench=stack.postgres_started,
        topic_prefix=s.topic_prefix,
        partitions=s.partitions,
        worker_id=s.worker_id,
        worker_log=str(stack.worker.log_path),
        tenants=options.tenants,
        worker_env=dict(options.worker_env),
        workers=options.workers,
        # The broker's JVM changes its CPU share by a factor of 2-5
        # (docs/performance/worker.md, "The broker's JVM").
        kafka_jvm_options=" ".join(jvm_options()) if stack.kafka_started else None,
    )


async def _phases(stack: Stack, options: Options, report: Report, samples: Path | None) -> None:
    cancel_on_sigterm()
    async with httpx.AsyncClient() as http:
        worker = WorkerProbe(stack, http)
        await worker.wait_for("goal_engine_ready", lambda v: v >= 1, options.ready_timeout, "the worker")
        progress(f"worker ready (pid {stack.worker_pid}); configuring {options.tenants} workflow(s)…")
        await _configure(stack.settings, options)
        await worker.wait_for(
            "goal_engine_workflow_configs",
            lambda v: v >= options.tenants,
            options.ready_timeout,
            "the worker to hold every workflow configuration",
        )
        report.load = await _load(stack, options, worker)
        with profiled(stack.worker_pid, options.profile, report):
            if options.burst:
                report.burst = await _burst(stack, options)
            else:
                report.measure = await _measure(stack, options, samples)
        final = await worker.metrics()
        report.worker_metrics = {k: v for k, v in (final or {}).items() if k.startswith("goal_engine_")}
    if options.baseline_events:
        engine = (
            report.burst.throughput if report.burst else report.measure.throughput if report.measure else None
        )
        report.baseline = await run_baseline(stack.settings, options, engine)


@contextlib.contextmanager
def profiled(pid: int, enabled: bool, report: Report) -> Iterator[None]:
    """py-spy samples the worker while the block runs; its flame graph goes into the report."""
    if not enabled:
        yield
        return
    path = BENCH_DIR / f"profile-{file_stamp(report.started_at)}.svg"
    path.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--format",
            "flamegraph",
            "--output",
            str(path),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    progress(f"profile: py-spy samples the worker (pid {pid}) into {path}")
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes the flame graph when interrupted
        try:
            _, err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            err = b"timed out"
        if path.exists():
            report.profile = str(path)
        else:
            progress(f"profile: py-spy wrote nothing ({err.decode(errors='replace').strip()[-300:]})")


async def run_baseline(settings: Settings, options: Options, engine: float | None) -> BaselineResult:
    """The raw aiokafka pipe (``baseline.py``) in a process of its own, on the same broker."""
    n = options.baseline_events
    progress(f"baseline: the raw aiokafka pipe drains {n:,} events…")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "goal_engine.bench.baseline",
        "--bootstrap",
        settings.kafka_bootstrap,
        "--prefix",
        settings.topic_prefix,
        "--events",
        str(n),
        "--partitions",
        str(options.partitions),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the baseline exited with {proc.returncode}")
    result = BaselineResult(**json.loads(out.decode().strip().splitlines()[-1]))
    if engine is not None:
        result.engine_ratio = round(engine / result.events_per_second, 3)
    progress(
        f"baseline: {result.events_per_second:,.0f} events/s ({result.cpu_ms_per_event:.3f} ms cpu/event)"
    )
    return result


async def _burst(stack: Stack, options: Options) -> BurstResult:
    """Every enrolled contact tagged at once: first append -> last exit, and last append -> last exit."""
    settings, n = stack.settings, options.enrollments
    population = Population(options.tenants)
    topic = settings.topic(Topic.TAG_ADDED)
    now = utcnow()
    records = [population.tag_added(i, now) for i in range(n)]
    collector = ExitCollector(settings)
    await collector.start()
    consuming = asyncio.create_task(collector.run())
    producer = _load_producer(settings)
    await producer.start()
    cpu_before = stack.worker_cpu_seconds()
    appended: dict[str, float] = {}
    progress(f"burst: appending {n:,} contact.tag.added at once…")
    try:
        started = time.monotonic()
        futures = [await producer.send(topic, r.value, key=r.key) for r in records]
        for i, metadata in enumerate(await asyncio.gather(*futures)):
            appended[population.enrollment(i)] = float(metadata.timestamp)
        append_seconds = time.monotonic() - started
        progress(f"burst: appended in {append_seconds:.2f} s; waiting for the exits…")
        deadline = time.monotonic() + options.drain_timeout
        while len(collector.first_seen) < n and time.monotonic() < deadline:
            stack.check_worker()
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        await collector.stop(consuming)
        await producer.stop()
    exits = collector.first_seen
    latencies = _latencies(appended, exits, list(appended))
    first, last_append = min(appended.values()), max(appended.values())
    last_exit = max((exits[e] for e in appended if e in exits), default=first)
    seconds = max(0.001, (last_exit - first) / 1000)
    return BurstResult(
        events=n,
        append_seconds=round(append_seconds, 2),
        seconds=round(seconds, 2),
        after_last_append_seconds=round((last_exit - last_append) / 1000, 2),
        throughput=round(len(latencies) / seconds, 1),
        exits=len(latencies),
        missing=sum(1 for e in appended if e not in exits),
        duplicates=collector.duplicates,
        worker_cpu_percent=_percent(cpu_before, stack.worker_cpu_seconds(), elapsed),
        latency=LatencyStats.of(latencies),
    )


class WorkerProbe:
    """Reads the worker's metrics endpoint, and fails fast if the worker is gone."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http

    async def metrics(self) -> dict[str, float] | None:
        """Every worker's samples, summed; readiness and configurations: the least of them."""
        self.stack.check_worker()
        each = [await worker_metrics(self.http, port) for port in self.stack.metrics_ports]
        if any(m is None for m in each):
            return None
        values: dict[str, float] = {}
        for m in each:
            for name, value in (m or {}).items():
                values[name] = values.get(name, 0.0) + value
        for least in ("goal_engine_ready", "goal_engine_workflow_configs"):
            values[least] = min((m or {}).get(least, 0.0) for m in each)
        return values

    async def value(self, name: str) -> float | None:
        values = await self.metrics()
        return None if values is None else values.get(name)

    async def wait_for(
        self,
        name: str,
        check: Callable[[float], bool],
        timeout: float,
        what: str,
        report: Callable[[float], None] | None = None,
        every: float = 5.0,
    ) -> float:
        """Poll metric ``name`` until ``check`` holds; ``report`` gets it every ``every`` s."""
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + every
        while True:
            value = await self.value(name)
            if value is not None and check(value):
                return value
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} ({name} = {value})")
            if report is not None and value is not None and now >= next_report:
                report(value)
                next_report = now + every
            await asyncio.sleep(0.2)


async def _configure(settings: Settings, options: Options) -> None:
    population = Population(options.tenants)
    producer = make_producer(settings, client_id="goal-engine-bench-config")
    await producer.start()
    try:
        now = utcnow()
        topic = settings.topic(Topic.WORKFLOW_ACTIVATED)
        for t in range(options.tenants):
            record = population.workflow_activated(t, now)
            await producer.send_and_wait(topic, record.value, key=record.key)
    finally:
        await producer.stop()


def _load_producer(settings: Settings) -> AIOKafkaProducer:
    # As fast as aiokafka goes: big batches, a short linger; durable like the engine's own.
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="goal-engine-bench-load",
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )


async def _load(stack: Stack, options: Options, worker: WorkerProbe) -> LoadResult:
    settings, n = stack.settings, options.enrollments
    population = Population(options.tenants)
    topic = settings.topic(Topic.ENROLLMENT_STARTED)
    progress(f"load: producing {n:,} workflow.enrollment.started…")
    cpu_before = stack.worker_cpu_seconds()
    started = time.monotonic()
    next_report = started + options.progress_every
    producer = _load_producer(settings)
    await producer.start()
    try:
        pending: list[asyncio.Future[object]] = []
        for i in range(n):
            record = population.enrollment_started(i, utcnow())
            pending.append(await producer.send(topic, record.value, key=record.key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
                if (now := time.monotonic()) >= next_report:
                    progress(f"load: produced {i + 1:,}/{n:,} ({(i + 1) / (now - started):,.0f} ev/s)")
                    next_report = now + options.progress_every
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    produce_seconds = time.monotonic() - started
    progress(f"load: produced {n:,} in {produce_seconds:.1f} s ({n / produce_seconds:,.0f} ev/s, acks=all)")

    def report(value: float) -> None:
        elapsed = time.monotonic() - started
        progress(f"load: worker holds {value:,.0f}/{n:,} enrollments ({value / elapsed:,.0f} ev/s so far)")

    await worker.wait_for(
        "goal_engine_active_enrollments",
        lambda v: v >= n,
        options.load_timeout,
        f"the worker to hold {n:,} active enrollments",
        report=report,
        every=options.progress_every,
    )
    worker_seconds = time.monotonic() - started
    cpu = _percent(cpu_before, stack.worker_cpu_seconds(), worker_seconds)
    progress(f"load: the worker holds all {n:,} enrollments after {worker_seconds:.1f} s")
    settle_seconds = await _settle(stack)
    return LoadResult(
        enrollments=n,
        produce_seconds=round(produce_seconds, 2),
        produce_rate=round(n / produce_seconds, 1),
        worker_seconds=round(worker_seconds, 2),
        worker_rate=round(n / worker_seconds, 1),
        worker_cpu_percent=cpu,
        settle_seconds=round(settle_seconds, 1),
    )


async def _settle(stack: Stack, idle_percent: float = 15.0, timeout: float = 60.0) -> float:
    """Wait until the worker is idle: done with the load's tail (changelog writes, commits),
    so the measure phase does not start behind. Returns how long that took."""
    started = time.monotonic()
    before = cpu_seconds(stack.worker_pid)
    while time.monotonic() - started < timeout:
        await asyncio.sleep(1.0)
        stack.check_worker()
        after = cpu_seconds(stack.worker_pid)
        if before is None or after is None or 100 * (after - before) < idle_percent:
            break
        before = after
    seconds = time.monotonic() - started
    progress(f"load: the worker is idle after {seconds:.0f} more s; measuring next")
    return seconds


def _percent(before: float | None, after: float | None, seconds: float) -> float:
    if before is None or after is None or seconds <= 0:
        return 0.0
    return round(100 * (after - before) / seconds, 1)


class ExitCollector:
    """Reads ``workflow.exit.goal`` (every partition, from the start: the topic is this run's)
    and keeps, per enrollment, the Kafka timestamp of its first exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.first_seen: dict[str, int] = {}  # enrollment id -> exit record timestamp (ms)
        self.duplicates = 0
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="goal-engine-bench-exits",
            group_id=None,
            enable_auto_commit=False,
            # Latency comes from the records' timestamps, not from when we read them: let the
            # broker gather exits for up to 200 ms, so this process wakes (and competes for
            # the CPUs) a few times a second instead of once per exit.
            fetch_min_bytes=256 * 1024,
            fetch_max_wait_ms=200,
        )

    async def start(self) -> None:
        await self._consumer.start()
        partitions = await topic_partitions(self.settings, [self.settings.topic(Topic.EXIT_GOAL)])
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)

    async def run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batch.values():
                for record in records:
                    # Plain json, not the contract models: this process shares the CPUs.
                    enrollment_id = json.loads(record.value)["data"]["workflow_enrollment_id"]
                    if enrollment_id in self.first_seen:
                        self.duplicates += 1
                    else:
                        self.first_seen[enrollment_id] = record.timestamp

    async def stop(self, running: asyncio.Task[None]) -> None:
        """Cancel ``running`` (its :meth:`run`) and close the consumer."""
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await self._consumer.stop()


def _record_ack(
    sent_ms: dict[str, float], acks_ms: list[float], enrollment_id: str, future: asyncio.Future[object]
) -> None:
    """Prefer the record's own timestamp (RecordMetadata.timestamp) to our send time.

    Also keeps how long the broker took to acknowledge it: the latency counts from the
    record's CreateTime, which our producer stamps when we call ``send``, so a slow
    source append (our producer or the broker, not the worker) shows here.
    """
    if future.cancelled() or future.exception() is not None:
        return
    acks_ms.append(time.time() * 1000 - sent_ms[enrollment_id])
    timestamp = getattr(future.result(), "timestamp", -1)
    if isinstance(timestamp, int) and timestamp >= 0:
        sent_ms[enrollment_id] = float(timestamp)


def _latencies(sent_ms: dict[str, float], exits: dict[str, int], measured: list[str]) -> list[float]:
    return [exits[e] - sent_ms[e] for e in measured if e in exits]


async def _measure(stack: Stack, options: Options, samples: Path | None) -> MeasureResult:
    settings, rate = stack.settings, options.rate
    warm, total = options.warmup_events, options.warmup_events + options.measure_events
    population = Population(options.tenants)
    topic = settings.topic(Topic.TAG_ADDED)
    # Encoded up front, so the paced loop only sends. Contacts 0..total-1 each get the tag
    # once, after their enrollment (the event time must not precede it). The first `warm`
    # are the warm-up: their exits must arrive too, but they are not in the figures.
    now = utcnow()
    records = [population.tag_added(i, now) for i in range(total)]
    collector = ExitCollector(settings)
    await collector.start()
    consuming = asyncio.create_task(collector.run())
    producer = make_producer(settings, client_id="goal-engine-bench-measure")
    await producer.start()
    sent_ms: dict[str, float] = {}  # every source event sent -> its append time (ms)
    acks_ms: list[float] = []  # every source event: send -> the broker's ack (ms)
    measured: list[str] = []  # the enrollments of the events after the warm-up
    pids = {"worker": stack.worker_pid, "broker": stack.broker_pid}
    cpu: dict[str, float | None] = {}
    bench_cpu_before = host_cpu_before = 0.0
    if warm:
        progress(f"measure: warming up at {rate:,.0f} contact.tag.added/s for {options.warmup:.0f} s…")
    try:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[object]] = []
        started = measure_started = loop.time()
        next_report = started + options.progress_every
        last_report, last_exits, last_host = started, 0, host_cpu_seconds()
        i = 0
        while i < total:
            due = min(total, int((loop.time() - started) * rate) + 1)
            while i < due:
                if i == warm:  # the measure window opens
                    measure_started = loop.time()
                    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    bench_cpu_before, host_cpu_before = time.process_time(), host_cpu_seconds()
                    progress(
                        f"measure: {rate:,.0f} contact.tag.added/s for {options.duration:.0f} s "
                        f"({total - warm:,} events)…"
                    )
                enrollment_id = population.enrollment(i)
                sent_ms[enrollment_id] = time.time() * 1000
                if i >= warm:
                    measured.append(enrollment_id)
                future = await producer.send(topic, records[i].value, key=records[i].key)
                future.add_done_callback(partial(_record_ack, sent_ms, acks_ms, enrollment_id))
                futures.append(future)
                i += 1
            if (now_t := loop.time()) >= next_report:
                next_report = now_t + options.progress_every
                stack.check_worker()
                lat = LatencyStats.of(_latencies(sent_ms, collector.first_seen, measured))
                p99 = f", p99 so far {lat.p99_ms:,.0f} ms" if lat else ""
                exits_now = len(collector.first_seen)
                exit_rate = (exits_now - last_exits) / (now_t - last_report)
                host_now = host_cpu_seconds()
                host = 100 * (host_now - last_host) / (now_t - last_report)
                last_report, last_exits, last_host = now_t, exits_now, host_now
                phase = "warm-up" if i <= warm else f"{now_t - measure_started:.0f} s"
                progress(
                    f"measure: {phase}, sent {i:,} ({exit_rate:,.0f} exits/s lately, {exits_now:,} in all)"
                    f"{p99}; host cpu {host:.0f} %"
                )
            # At most one wake-up per TICK (fewer, busier sends on a shared CPU); whatever fell
            # due meanwhile goes out together, so the rate holds at any --rate.
            await asyncio.sleep(max(TICK, started + i / rate - loop.time()))
        send_seconds = loop.time() - measure_started
        await asyncio.gather(*futures)
        progress(f"measure: sent {total - warm:,} in {send_seconds:.1f} s; waiting for the last exits…")

        drain_started = loop.time()
        while loop.time() - drain_started < options.drain_timeout:
            if all(e in collector.first_seen for e in sent_ms):
                break
            stack.check_worker()
            await asyncio.sleep(0.05)
        drain_seconds = loop.time() - drain_started
        elapsed = loop.time() - measure_started
    finally:
        await collector.stop(consuming)
        await producer.stop()

    exits = collector.first_seen
    if samples is not None:
        write_samples(samples, sent_ms, exits)
        progress(f"measure: every source event and its exit in {samples}")
    latencies = _latencies(sent_ms, exits, measured)
    first_source = min(sent_ms[e] for e in measured)
    last_exit = max((exits[e] for e in measured if e in exits), default=first_source)
    window = max(0.001, (last_exit - first_source) / 1000)
    result = MeasureResult(
        target_rate=rate,
        duration_seconds=options.duration,
        warmup_seconds=options.warmup,
        warmup_events=warm,
        sent=len(measured),
        send_seconds=round(send_seconds, 2),
        send_rate=round(len(measured) / send_seconds, 1),
        exits=len(latencies),
        missing=sum(1 for e in sent_ms if e not in exits),
        duplicates=collector.duplicates,
        unexpected=len(exits.keys() - sent_ms.keys()),
        throughput=round(len(latencies) / window, 1),
        drain_seconds=round(drain_seconds, 2),
        latency=LatencyStats.of(latencies),
        source_ack=LatencyStats.of(acks_ms),
        worker_cpu_percent=_percent(cpu.get("worker"), cpu_seconds(pids["worker"]), elapsed),
        broker_cpu_percent=(
            _percent(cpu.get("broker"), cpu_seconds(pids["broker"]), elapsed) if pids["broker"] else None
        ),
        bench_cpu_percent=_percent(bench_cpu_before, time.process_time(), elapsed),
        host_cpu_percent=_percent(host_cpu_before, host_cpu_seconds(), elapsed),
        host_cores=os.cpu_count() or 1,
    )
    if result.missing:
        progress(f"measure: {result.missing:,} exit(s) missing after the {options.drain_timeout:.0f} s drain")
    return result
