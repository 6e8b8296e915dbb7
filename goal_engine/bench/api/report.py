"""The API benchmark's results: per endpoint counts and percentiles, the table and the JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from goal_engine.bench.api.check import CheckResult
from goal_engine.bench.api.load import ENDPOINTS, Samples
from goal_engine.bench.api.seed import SeedResult
from goal_engine.bench.api.warm import WarmResult
from goal_engine.bench.report import (
    LatencyStats,
    aligned,
    columns,
    file_stamp,
    millis,
    number,
    origin,
    write_json,
)

API_BENCH_NOTES = (
    "latency = from the client's send to the last byte of the body, measured by the bench "
    "(one keep-alive connection per client, httptools); "
    "closed loop: each client sends its next request when the last one answered",
    "the clients, the API's processes (--api-workers) and PostgreSQL share this host's CPUs",
    "the seed writes the log and derives the aggregates with SQL (projections/views.py's rules); "
    "audit_log is not seeded (no benchmarked route reads it)",
)


@dataclass
class ApiSetup:
    database: str
    postgres_started_by_bench: bool
    database_kept: bool
    api_log: str
    clients: int
    warmup_seconds: float
    duration_seconds: float
    mix: dict[str, int]
    api_workers: int = 1
    shared_buffers_mib: int | None = None  # None: a server the bench did not start


@dataclass
class EndpointResult:
    name: str
    what: str
    weight: int
    requests: int  # sent in the measure window (errors from the warm-up too)
    rate: float  # requests per second of the measure window
    non_2xx: int  # non-2xx answers and failed requests
    statuses: dict[str, int]
    latency: LatencyStats | None
    first_error: str | None = None

    @classmethod
    def of(cls, name: str, weight: int, samples: Samples, seconds: float) -> EndpointResult:
        requests = sum(samples.statuses.values())
        return cls(
            name=name,
            what=ENDPOINTS[name].what,
            weight=weight,
            requests=requests,
            rate=round(requests / seconds, 1),
            non_2xx=samples.non_2xx,
            statuses=dict(samples.statuses),
            latency=LatencyStats.of(samples.latencies_ms),
            first_error=samples.first_error,
        )


@dataclass
class MeasureResult:
    clients: int
    seconds: float  # the measure window as it ran
    requests: int
    rate: float
    non_2xx: int
    endpoints: list[EndpointResult]
    overall: LatencyStats | None
    api_cpu_percent: float
    postgres_cpu_percent: float | None  # the server and its backends, when the bench started it
    bench_cpu_percent: float
    host_cpu_percent: float  # every process on the host (others' too); 100 % per core
    host_cores: int
    api_own_mean_ms: dict[str, float] = field(default_factory=dict)  # route -> its histogram's mean
    # cached read -> {hit, miss, uncached: answers}, the warm-up included
    read_cache: dict[str, dict[str, int]] = field(default_factory=dict)
    # this host's speed (stack.python_speed, M loop iterations/s) before and after the load
    python_speed_before: float | None = None
    python_speed_after: float | None = None


@dataclass
class ApiReport:
    run_id: str
    started_at: str
    ok: bool
    setup: ApiSetup
    seed: SeedResult | None = None
    check: CheckResult | None = None
    measure: MeasureResult | None = None
    warm: WarmResult | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, directory: Path) -> Path:
        return write_json(directory / f"api-report-{file_stamp(self.started_at)}.json", self.to_json())


def render(report: ApiReport) -> str:
    """The report as aligned sections, the load as one table row per endpoint."""
    rows: list[tuple[str, str]] = []
    s = report.setup
    rows.append((f"[setup (run {report.run_id}, {report.started_at})]", ""))
    rows += [
        ("postgresql", f"{s.database} ({origin(s.postgres_started_by_bench)})"),
        *(
            [("shared_buffers", f"{number(s.shared_buffers_mib)} MiB (--shared-buffers)")]
            if s.shared_buffers_mib is not None
            else []
        ),
        ("api", f"goal-engine api --workers {s.api_workers}, log {s.api_log}"),
    ]
    if (seed := report.seed) is not None:
        rows.append(("[seed]", ""))
        rows += [
            ("achievements", f"{number(seed.achievements)} over {seed.months} months"),
            (
                "enrollments",
                f"{number(seed.enrollments)} ({number(seed.enrollments - seed.achievements)} not converted)",
            ),
            ("workflows", f"{seed.workflows} in {seed.tenants} tenant(s)"),
            ("reused", "yes: a kept database of the same seed, figures of its seed" if seed.reused else "no"),
            (
                "log",
                f"{seed.log_seconds:.1f} s ({number(seed.rows_per_second)} rows/s, "
                f"{seed.connections} connection(s))",
            ),
            (
                "aggregates",
                f"{seed.aggregate_seconds:.1f} s, indexes {seed.index_seconds:.1f} s, "
                f"then VACUUM, CHECKPOINT {seed.analyze_seconds:.1f} s",
            ),
            ("database", f"{number(seed.database_mib)} MiB"),
        ]
    if (warm := report.warm) is not None:
        rows.append(("[prewarm: the routes' tables and indexes into shared_buffers (pg_prewarm)]", ""))
        if warm.skipped:
            rows.append(("skipped", warm.skipped))
        else:
            rows.append(
                ("loaded", f"{warm.relations} relations, {number(warm.mib)} MiB in {warm.seconds:.1f} s")
            )
            rows += [("left cold", name) for name in warm.left_cold or []]
            recent = f"{number(warm.recent_rows)} rows in {warm.recent_seconds:.1f} s"
            rows.append(("recent days", f"every workflow's hourly rollups and enrollments: {recent}"))
    if (check := report.check) is not None:
        rows.append(("[check: the API's stats against a brute-force count over the log]", ""))
        rows.append(("workflow", f"{check.tenant}/{check.workflow_id}: all time, and {check.window}"))
        verdict = "all equal" if check.ok else f"{len(check.mismatches)} MISMATCH(ES)"
        rows.append(("figures", f"{check.compared} compared, {verdict}"))
        rows += [("mismatch", m) for m in check.mismatches]
    parts = [aligned(rows)]
    tail: list[tuple[str, str]] = []
    if (m := report.measure) is not None:
        parts.append(
            f"[load: {m.clients} concurrent clients for {m.seconds:.1f} s after a {s.warmup_seconds:g} s "
            "warm-up (not counted)]"
        )
        parts.append(columns(_endpoint_table(m)))
        for e in m.endpoints:
            tail.append((e.name, e.what))
            if e.first_error:
                tail.append((f"{e.name}: first error", e.first_error))
        for route in sorted({ENDPOINTS[e.name].route for e in m.endpoints}):
            if route in m.api_own_mean_ms:
                tail.append(
                    ("api's own mean", f"{millis(m.api_own_mean_ms[route])}  {route} (warm-up included)")
                )
        for read, results in m.read_cache.items():
            answers = sum(results.values())
            hits = results.get("hit", 0)
            tail.append(
                (
                    "api's read cache",
                    f"{read}: {100 * hits / answers:.0f} % hits "
                    f"({number(hits)} of {number(answers)} answers, warm-up included)",
                )
            )
        cpu = f"api {m.api_cpu_percent:.0f} %, bench {m.bench_cpu_percent:.0f} %"
        if m.postgres_cpu_percent is not None:
            cpu += f", postgresql {m.postgres_cpu_percent:.0f} %"
        tail.append(("cpu (100 % = 1 core)", cpu))
        tail.append(("host cpu", f"{m.host_cpu_percent:.0f} % of {m.host_cores * 100} % (others included)"))
        if m.python_speed_before is not None and m.python_speed_after is not None:
            tail.append(
                (
                    "host speed",
                    f"{m.python_speed_before:.1f} / {m.python_speed_after:.1f} M Python loop iterations/s "
                    "before / after the load (the host's neighbours move it: compare runs at like speeds)",
                )
            )
    tail.append(("[result]", ""))
    tail.append(("status", "OK" if report.ok else "FAILED"))
    if report.error:
        tail.append(("error", report.error))
    parts.append(aligned(tail, report.notes))
    return "\n".join(parts)


def worst_p99_line(report: ApiReport) -> str:
    """The run in one line, the last one printed: the slowest endpoint's p99 (what the target is on)."""
    achievements = number(report.seed.achievements) if report.seed is not None else "?"
    m = report.measure
    p99s = [e.latency.p99_ms for e in m.endpoints if e.latency is not None] if m is not None else []
    worst = f"{max(p99s):.1f} ms" if p99s else "- (no measurement)"
    return f"bench-api: worst p99 {worst} over {achievements} achievements"


def _endpoint_table(m: MeasureResult) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = [("endpoint", "requests", "req/s", "p50", "p90", "p99", "max", "non-2xx")]
    lines = [(e.name, e.requests, e.rate, e.non_2xx, e.latency) for e in m.endpoints]
    for name, requests, rate, non_2xx, lat in [*lines, ("all", m.requests, m.rate, m.non_2xx, m.overall)]:
        figures = [lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.max_ms] if lat is not None else []
        table.append(
            (name, number(requests), number(rate, 1), *(millis(v) for v in figures), str(non_2xx))
            if figures
            else (name, number(requests), number(rate, 1), "-", "-", "-", "-", str(non_2xx))
        )
    return table
