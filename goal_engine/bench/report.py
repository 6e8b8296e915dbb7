"""The benchmark's results: percentiles, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH_NOTES = (
    "projector and API not started: the worker alone publishes the exit (they only read it)",
    "PostgreSQL is started and migrated as `make run` does, but the stream worker never uses it",
    "latency = exit record's CreateTime - source record's CreateTime (producers on this host, 1 ms "
    "resolution); records keyed by their contact take one hop through the worker",
    "the bench's producer and consumer share this host's CPUs with the worker and Kafka",
)


def file_stamp(started_at: str) -> str:
    """The run's start as it appears in file names: 20260102T030405Z."""
    return datetime.fromisoformat(started_at).strftime("%Y%m%dT%H%M%SZ")


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def write_samples(path: Path, sent_ms: dict[str, float], exits_ms: dict[str, int]) -> None:
    """One line per source event, oldest first: for plotting latency over the measure phase."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        out.write("enrollment_id,source_ms,exit_ms,latency_ms\n")
        for enrollment_id, source in sorted(sent_ms.items(), key=lambda item: item[1]):
            exit_ms = exits_ms.get(enrollment_id)
            latency = "" if exit_ms is None else f"{exit_ms - source:.0f}"
            out.write(f"{enrollment_id},{source:.0f},{'' if exit_ms is None else exit_ms},{latency}\n")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an ascending, non-empty sequence."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class LatencyStats:
    count: int
    min_ms: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> LatencyStats | None:
        if not samples_ms:
            return None
        s = sorted(samples_ms)
        return cls(
            count=len(s),
            min_ms=s[0],
            mean_ms=round(sum(s) / len(s), 1),
            p50_ms=percentile(s, 50),
            p90_ms=percentile(s, 90),
            p99_ms=percentile(s, 99),
            p999_ms=percentile(s, 99.9),
            max_ms=s[-1],
        )


@dataclass
class Setup:
    kafka_bootstrap: str
    kafka_started_by_bench: bool
    database: str
    postgres_started_by_bench: bool
    topic_prefix: str
    partitions: int
    worker_id: str
    worker_log: str
    tenants: int
    worker_env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    kafka_jvm_options: str | None = None  # the broker's, when the bench started it


@dataclass
class LoadResult:
    enrollments: int
    produce_seconds: float
    produce_rate: float  # enrollment events/s appended to Kafka by the bench
    worker_seconds: float  # from the first enrollment sent until the worker holds all of them
    worker_rate: float  # enrollment events/s the worker got through (ingest + evaluate)
    worker_cpu_percent: float
    settle_seconds: float  # then, until the worker was idle (the load's tail: changelog, commits)


@dataclass
class MeasureResult:
    target_rate: float
    duration_seconds: float
    warmup_seconds: float  # before the measure window, at the same rate; not in the figures
    warmup_events: int
    sent: int  # in the measure window
    send_seconds: float
    send_rate: float
    exits: int  # distinct exits matched to a source event
    missing: int  # of every event sent, the warm-up's included
    duplicates: int  # exits seen more than once (at-least-once redelivery)
    unexpected: int  # exits for enrollments the measure phase did not target
    throughput: float  # matched exits / (last exit's append - first source append)
    drain_seconds: float  # after the last send, until the last exit arrived (or the timeout)
    latency: LatencyStats | None
    source_ack: LatencyStats | None  # send -> broker ack of the source events (warm-up included)
    worker_cpu_percent: float
    broker_cpu_percent: float | None
    bench_cpu_percent: float
    host_cpu_percent: float  # every process on the host (others' too); 100 % per core
    host_cores: int


@dataclass
class BurstResult:
    events: int  # N goal events appended at once, one per enrolled contact
    append_seconds: float  # first append -> last append (the bench's producer)
    seconds: float  # first append -> last exit (both CreateTime)
    after_last_append_seconds: float  # last append -> last exit: "everyone out within"
    throughput: float  # exits / seconds
    exits: int
    missing: int
    duplicates: int
    worker_cpu_percent: float
    latency: LatencyStats | None  # per event: its append -> its exit


@dataclass
class BaselineResult:
    """The raw aiokafka pipe (``baseline.py``) on the same broker, right after the engine."""

    events: int
    seconds: float
    events_per_second: float
    cpu_ms_per_event: float
    engine_ratio: float | None = None  # the engine's throughput / this one's


@dataclass
class WorkerMemory:
    pid: int
    vm_hwm_mib: float | None  # peak resident set size
    vm_rss_mib: float | None  # resident set size at the end


@dataclass
class Report:
    run_id: str
    started_at: str
    ok: bool
    setup: Setup
    load: LoadResult | None = None
    measure: MeasureResult | None = None
    burst: BurstResult | None = None
    baseline: BaselineResult | None = None
    profile: str | None = None  # the py-spy flame graph (svg) of the worker
    memory: WorkerMemory | None = None
    worker_metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, directory: Path) -> Path:
        return write_json(directory / f"report-{file_stamp(self.started_at)}.json", self.to_json())


def number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def millis(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def origin(started_by_bench: bool) -> str:
    return "started by the bench" if started_by_bench else "reused"


def aligned(rows: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> str:
    """``(label, value)`` rows with the values aligned; a ``[section]`` label stands alone; notes last."""
    width = max((len(label) for label, _ in rows if not label.startswith("[")), default=0)
    lines = [label if label.startswith("[") else f"  {label:<{width}}  {value}" for label, value in rows]
    if notes:
        lines += ["[notes]", *(f"  - {note}" for note in notes)]
    return "\n".join(lines)


def columns(table: Sequence[Sequence[str]]) -> str:
    """A table, its first row the header: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  "
        + "  ".join(
            [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        )
        for row in table
    )


def render(report: Report) -> str:
    """The report as an aligned, human-readable table."""
    rows: list[tuple[str, str]] = []

    def section(title: str) -> None:
        rows.append((f"[{title}]", ""))

    s = report.setup
    section(f"setup (run {report.run_id}, {report.started_at})")
    rows += [
        ("kafka", f"{s.kafka_bootstrap} ({origin(s.kafka_started_by_bench)})"),
        *([("kafka jvm", s.kafka_jvm_options)] if s.kafka_jvm_options is not None else []),
        ("postgresql", f"{s.database} ({origin(s.postgres_started_by_bench)})"),
        ("topics", f"prefix {s.topic_prefix!r}, {s.partitions} partitions"),
        ("worker", f"{s.workers} process(es), group {s.worker_id}, log {s.worker_log}"),
        ("tenants", f"{s.tenants} (one active workflow with one tag goal each)"),
    ]
    if s.worker_env:
        rows.append(("worker env", " ".join(f"{k}={v}" for k, v in s.worker_env.items())))
    if (load := report.load) is not None:
        section("load: workflow.enrollment.started, one per contact")
        rows += [
            ("enrollments", number(load.enrollments)),
            ("produced", f"{number(load.produce_rate)} ev/s ({load.produce_seconds:.1f} s, acks=all)"),
            ("worker caught up", f"{number(load.worker_rate)} ev/s ({load.worker_seconds:.1f} s)"),
            ("worker cpu", f"{load.worker_cpu_percent:.0f} % of one core"),
            ("worker idle", f"{load.settle_seconds:.0f} s later"),
        ]
    if (m := report.measure) is not None:
        section("measure: contact.tag.added -> workflow.exit.goal")
        rows += [
            (
                "target rate",
                f"{number(m.target_rate)} ev/s for {m.duration_seconds:.0f} s, after a "
                f"{m.warmup_seconds:.0f} s warm-up ({number(m.warmup_events)} events, not counted)",
            ),
            ("sent", f"{number(m.sent)} ({number(m.send_rate, 1)} ev/s over {m.send_seconds:.1f} s)"),
            ("exits", f"{number(m.exits)} matched, {m.missing} missing, {m.duplicates} duplicate(s)"),
            ("throughput", f"{number(m.throughput, 1)} exits/s"),
            ("drain", f"{m.drain_seconds:.1f} s after the last send"),
        ]
        if m.unexpected:
            rows.append(("unexpected exits", number(m.unexpected)))
        if (lat := m.latency) is not None:
            rows += [
                ("latency p50", millis(lat.p50_ms)),
                ("latency p90", millis(lat.p90_ms)),
                ("latency p99", millis(lat.p99_ms)),
                ("latency p99.9", millis(lat.p999_ms)),
                ("latency max", millis(lat.max_ms)),
                ("latency mean", millis(lat.mean_ms)),
            ]
        own = report.worker_metrics
        if own.get("goal_engine_exit_latency_seconds_count"):
            mean = (
                1000
                * own["goal_engine_exit_latency_seconds_sum"]
                / own["goal_engine_exit_latency_seconds_count"]
            )
            rows.append(
                ("worker's own mean", f"{millis(mean)} (its exit latency histogram, warm-up included)")
            )
        if (ack := m.source_ack) is not None:
            rows.append(
                (
                    "source acks",
                    f"p50 {millis(ack.p50_ms)}, p99 {millis(ack.p99_ms)} (send->ack, in the latency)",
                )
            )
        cpu = f"worker {m.worker_cpu_percent:.0f} %, bench {m.bench_cpu_percent:.0f} %"
        if m.broker_cpu_percent is not None:
            cpu += f", kafka {m.broker_cpu_percent:.0f} %"
        rows.append(("cpu (100 % = 1 core)", cpu))
        ours = m.worker_cpu_percent + m.bench_cpu_percent + (m.broker_cpu_percent or 0.0)
        rows.append(
            (
                "host cpu",
                f"{m.host_cpu_percent:.0f} % of {m.host_cores * 100} %, of which "
                f"{max(0.0, m.host_cpu_percent - ours):.0f} % other processes"
                + ("" if m.broker_cpu_percent is not None else " (Kafka included)"),
            )
        )
    if (b := report.burst) is not None:
        section("burst: N contact.tag.added appended at once -> workflow.exit.goal")
        rows += [
            ("events", f"{number(b.events)} (appended in {b.append_seconds:.2f} s)"),
            ("exits", f"{number(b.exits)} matched, {b.missing} missing, {b.duplicates} duplicate(s)"),
            ("first append -> last exit", f"{b.seconds:.2f} s"),
            ("last append -> last exit", f"{b.after_last_append_seconds:.2f} s"),
            ("throughput", f"{number(b.throughput, 1)} exits/s"),
            ("worker cpu", f"{b.worker_cpu_percent:.0f} % of one core"),
        ]
        if (lat := b.latency) is not None:
            rows.append(
                ("latency", f"p50 {millis(lat.p50_ms)}, p99 {millis(lat.p99_ms)}, max {millis(lat.max_ms)}")
            )
    if (base := report.baseline) is not None:
        section("raw aiokafka baseline (baseline.py), same broker, same run")
        rows += [
            ("drained", f"{number(base.events)} events in {base.seconds:.2f} s"),
            (
                "throughput",
                f"{number(base.events_per_second, 1)} events/s, {base.cpu_ms_per_event:.3f} ms cpu/event",
            ),
        ]
        if base.engine_ratio is not None:
            rows.append(("engine / baseline", f"{base.engine_ratio:.2f}"))
    if report.profile:
        section("profile")
        rows.append(("flame graph", report.profile))
    if (mem := report.memory) is not None:
        section(f"worker memory (pid {mem.pid})")
        rows += [
            ("peak (VmHWM)", f"{mem.vm_hwm_mib:,.0f} MiB" if mem.vm_hwm_mib is not None else "n/a"),
            ("at the end (VmRSS)", f"{mem.vm_rss_mib:,.0f} MiB" if mem.vm_rss_mib is not None else "n/a"),
        ]
    section("result")
    rows.append(("status", "OK" if report.ok else "FAILED"))
    if report.error:
        rows.append(("error", report.error))

    return aligned(rows, report.notes)
