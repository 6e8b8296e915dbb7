"""The API benchmark's phases, in order:

1. database: the PostgreSQL server (GOAL_ENGINE_DATABASE_URL's, else the devstack's own),
   a fresh database of this run on it, migrated (``projections/migrate.py``); with
   ``--reuse-seed`` the kept database of the same seed instead, if there is one (``kept.py``);
2. seed: N achievements and what the projector derives from them (``seed.py``), unless
   the database is a kept one;
3. api: ``goal-engine api`` as a child process on a free port, with a secret of this run;
   wait for ``/healthz``;
4. check: the stats of one workflow against a brute-force count over the log (``check.py``);
   a mismatch ends the run here;
5. load: C clients for WARMUP + DURATION s over the mix (``load.py``);
6. report: the table on stdout, the JSON under ``.local/bench``. The API is stopped, the
   database dropped (unless ``--keep-database``), PostgreSQL stopped if the bench started it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
from prometheus_client.samples import Sample

from goal_engine.bench.api.check import check_stats
from goal_engine.bench.api.kept import kept_name, read_mark, write_mark
from goal_engine.bench.api.load import Load, Samples, read_token
from goal_engine.bench.api.report import (
    API_BENCH_NOTES,
    ApiReport,
    ApiSetup,
    EndpointResult,
    MeasureResult,
    render,
    worst_p99_line,
)
from goal_engine.bench.api.seed import Seeder, SeedResult, SeedWorkflow, plan
from goal_engine.bench.api.warm import prewarm
from goal_engine.bench.lifecycle import cancel_on_sigterm, progress, run_guarded
from goal_engine.bench.report import LatencyStats
from goal_engine.bench.stack import (
    BENCH_DIR,
    LOCAL,
    cpu_seconds,
    describe_database,
    host_cpu_seconds,
    metric_samples,
    provide_postgres,
    python_speed,
    settings_env,
    tree_cpu_seconds,
)
from goal_engine.core.config import Settings
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.postgres import create_database, database_url_of, drop_database
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command
from projections.migrate import upgrade, upgrade_async

log = logging.getLogger("goal_engine.bench")


@dataclass(frozen=True)
class Options:
    achievements: int
    tenants: int
    workflows_per_tenant: int
    months: int
    clients: int
    duration: float
    warmup: float
    mix: dict[str, int]
    ready_timeout: float
    progress_every: float
    keep_database: bool
    reuse_seed: bool = False
    seed_connections: int = 2
    api_workers: int = 1
    shared_buffers_mib: int = 128  # of the PostgreSQL the bench starts
    prewarm: bool = True


def run(options: Options, base: Settings) -> int:
    """Run every phase, print and save the report; the exit code says how it went."""
    run_id = uuid.uuid4().hex[:8]
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    resources = ExitStack()
    report: ApiReport | None = None

    def phases() -> bool:
        nonlocal report
        progress(f"run {run_id}: PostgreSQL and a database of this run…")
        buffers = {"shared_buffers": f"{options.shared_buffers_mib}MB"}
        postgres = provide_postgres(resources, base, LOCAL / "bench-api-postgres", buffers)
        if options.reuse_seed:
            database_url = asyncio.run(_kept_database(postgres.url, options))
        else:
            database_url = _fresh_database(resources, postgres.url, f"goal_engine_apibench_{run_id}", options)
        settings = base.model_copy(
            update={
                "database_url": database_url,
                "api_host": "127.0.0.1",
                "api_port": free_port(),
                "jwt_secret": secrets.token_urlsafe(32),
                "ready_check_peers": False,  # no worker or projector here; /healthz is waited for
                "log_format": "text",
            }
        )
        api = ManagedProcess(
            "api",
            goal_engine_command("api", "--workers", str(options.api_workers)),
            child_env(settings_env(settings)),
            BENCH_DIR / "logs" / f"{run_id}-api.log",
        )
        report = ApiReport(
            run_id=run_id,
            started_at=started_at,
            ok=False,
            setup=ApiSetup(
                database=describe_database(database_url),
                postgres_started_by_bench=postgres.started,
                shared_buffers_mib=options.shared_buffers_mib if postgres.started else None,
                database_kept=options.keep_database or options.reuse_seed,
                api_log=str(api.log_path),
                clients=options.clients,
                api_workers=options.api_workers,
                warmup_seconds=options.warmup,
                duration_seconds=options.duration,
                mix=dict(options.mix),
            ),
            notes=list(API_BENCH_NOTES),
        )
        asyncio.run(_phases(resources, options, settings, api, report))
        report.ok = (
            report.check is not None
            and report.check.ok
            and report.measure is not None
            and report.measure.non_2xx == 0
        )
        return report.ok

    def on_error(message: str) -> None:
        if report is not None:
            report.error = message

    code = run_guarded(phases, resources, on_error)
    if report is not None:
        print("\n" + render(report), flush=True)
        path = report.write(BENCH_DIR)
        print(f"\nreport: {path}", flush=True)
        print(worst_p99_line(report), flush=True)
    return code


def _fresh_database(resources: ExitStack, server_url: str, name: str, options: Options) -> str:
    url = asyncio.run(create_database(server_url, name))
    if options.keep_database:
        resources.callback(progress, f"kept the seeded database: {url}")
    else:
        resources.callback(lambda: asyncio.run(drop_database(server_url, name)))
    log.info("applying migrations to %s", describe_database(url))
    upgrade(url)
    return url


async def _kept_database(server_url: str, options: Options) -> str:
    """The kept database of this seed, created and migrated if there is none complete."""
    name = kept_name(options.achievements, options.tenants, options.workflows_per_tenant, options.months)
    url = database_url_of(server_url, name)
    try:
        await create_database(server_url, name)
    except asyncpg.DuplicateDatabaseError:
        conn = await asyncpg.connect(url)
        try:
            complete = await read_mark(conn) is not None
        finally:
            await conn.close()
        if complete:
            progress(f"database: reusing the kept seed {name}")
            return url
        progress(f"database: {name} holds an unfinished seed; dropping it")
        await drop_database(server_url, name)
        await create_database(server_url, name)
    progress(f"database: {name} (kept afterwards for the next run of this seed)")
    await upgrade_async(url)
    return url


async def _seed(
    conn: asyncpg.Connection, options: Options, workflows: list[SeedWorkflow], database_url: str
) -> tuple[Seeder, SeedResult]:
    """The seeded database's seeder (its span) and result: a kept one's, else seeded now."""
    if options.reuse_seed and (kept := await read_mark(conn)) is not None:
        return Seeder(conn, workflows, options.months, kept.end), kept.result
    progress(
        f"seed: {options.achievements:,} achievements in {len(workflows)} workflows of "
        f"{options.tenants} tenant(s), over {options.months} months, "
        f"{options.seed_connections} connection(s)…"
    )
    end = datetime.now(UTC).replace(microsecond=0)
    lanes = [await asyncpg.connect(database_url) for _ in range(options.seed_connections - 1)]
    try:
        seeder = Seeder(conn, workflows, options.months, end, lanes)
        result = await seeder.run(progress, options.progress_every)
    finally:
        for lane in lanes:
            await lane.close()
    if options.reuse_seed:
        await write_mark(conn, result, seeder.start, seeder.end)
    return seeder, result


async def _phases(
    resources: ExitStack,
    options: Options,
    settings: Settings,
    api: ManagedProcess,
    report: ApiReport,
) -> None:
    cancel_on_sigterm()
    workflows = plan(options.achievements, options.tenants, options.workflows_per_tenant)
    conn = await asyncpg.connect(settings.database_url_asyncpg)
    try:
        seeder, report.seed = await _seed(conn, options, workflows, settings.database_url_asyncpg)
        end, seed = seeder.end, report.seed
        progress(
            f"seed: {'reused, seeded' if seed.reused else 'done'} in {seed.seconds:.1f} s: "
            f"{seed.achievements:,} achievements, {seed.enrollments:,} enrollments "
            f"({seed.rows_per_second:,.0f} rows/s), aggregates {seed.aggregate_seconds:.1f} s, "
            f"indexes {seed.index_seconds:.1f} s; database {seed.database_mib:,.0f} MiB"
        )
        if options.prewarm:
            report.warm = await prewarm(conn, end, progress)
        resources.callback(api.stop)  # unwinds first: the API stops before its database goes
        api.start()
        base_url = f"http://127.0.0.1:{settings.api_port}"
        await _wait_healthy(api, base_url, options.ready_timeout)
        first = workflows[0]
        token = read_token(settings.jwt_secret, first.tenant)
        async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
            report.check = await check_stats(conn, http, first.tenant, first.workflow_id, end)
    finally:
        await conn.close()
    check = report.check
    progress(
        f"check: {check.compared} figures of {first.tenant}/{first.workflow_id}: "
        f"{len(check.mismatches)} mismatch(es)"
    )
    if not check.ok:
        for mismatch in check.mismatches:
            progress(f"check: {mismatch}")
        return
    report.measure = await _measure(options, settings, api, workflows, seeder)


async def _wait_healthy(api: ManagedProcess, base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as http:
        while True:
            if (code := api.exit_code) is not None:
                raise RuntimeError(f"the API exited with code {code}; see {api.log_path}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the API did not answer /healthz within {timeout:.0f} s; see {api.log_path}"
                )
            await asyncio.sleep(0.1)


async def _measure(
    options: Options,
    settings: Settings,
    api: ManagedProcess,
    workflows: list[SeedWorkflow],
    seeder: Seeder,
) -> MeasureResult:
    assert api.proc is not None
    api_pid = api.proc.pid
    backends = _Backends(settings.database_url_asyncpg)
    load = Load(
        f"http://127.0.0.1:{settings.api_port}",
        settings.jwt_secret,
        workflows,
        options.mix,
        (seeder.start, seeder.end),
    )
    progress(
        f"load: {options.clients} clients for {options.duration:g} s after a {options.warmup:g} s warm-up, "
        "mix " + ", ".join(f"{name}={weight}" for name, weight in options.mix.items()) + "…"
    )
    # CPU seconds so far of each party, read when the warm-up ends and when the load is over.
    probes: dict[str, Callable[[], float | None]] = {
        "api": lambda: tree_cpu_seconds(api_pid),  # with --api-workers, the workers' too
        "postgresql": backends.cpu,
        "bench": time.process_time,
        "host": host_cpu_seconds,
    }
    before: dict[str, float | None] = {}

    def measure_starts() -> None:
        before.update({name: probe() for name, probe in probes.items()})

    started = time.monotonic()
    next_report = started + options.progress_every

    def tick(samples: dict[str, Samples]) -> None:
        nonlocal next_report
        if (code := api.exit_code) is not None:
            raise RuntimeError(f"the API exited with code {code}; see {api.log_path}")
        if (now := time.monotonic()) < next_report:
            return
        next_report = now + options.progress_every
        latencies = [v for s in samples.values() for v in s.latencies_ms]
        errors = sum(s.non_2xx for s in samples.values())
        stats = LatencyStats.of(latencies)
        so_far = f"p50 {stats.p50_ms:.1f} ms, p99 {stats.p99_ms:.1f} ms so far" if stats else "warming up"
        progress(
            f"load: {now - started:.0f} s, {len(latencies):,} measured requests, {so_far}, {errors} error(s)"
        )

    speed_before = python_speed()  # the API idle: this host's own speed now
    await backends.start()
    async with httpx.AsyncClient() as http:
        metrics_url = f"http://127.0.0.1:{settings.api_port}/metrics"
        own_before = await metric_samples(http, metrics_url)
        try:
            samples, seconds = await load.run(
                options.clients, options.warmup, options.duration, tick, measure_starts
            )
            await backends.refresh()
        finally:
            await backends.stop()
        own_after = await metric_samples(http, metrics_url)
    cpu: dict[str, float | None] = {}
    for name, probe in probes.items():
        was, now = before.get(name), probe()
        cpu[name] = None if was is None or now is None else round(100 * (now - was) / seconds, 1)

    endpoints = [EndpointResult.of(name, options.mix[name], s, seconds) for name, s in samples.items()]
    requests = sum(e.requests for e in endpoints)
    return MeasureResult(
        clients=options.clients,
        seconds=round(seconds, 2),
        requests=requests,
        rate=round(requests / seconds, 1),
        non_2xx=sum(e.non_2xx for e in endpoints),
        endpoints=endpoints,
        overall=LatencyStats.of([v for s in samples.values() for v in s.latencies_ms]),
        api_cpu_percent=cpu["api"] or 0.0,
        postgres_cpu_percent=cpu["postgresql"],
        bench_cpu_percent=cpu["bench"] or 0.0,
        host_cpu_percent=cpu["host"] or 0.0,
        host_cores=os.cpu_count() or 1,
        api_own_mean_ms=_own_means(own_before or [], own_after or []),
        read_cache=_cache_lookups(own_before or [], own_after or []),
        python_speed_before=speed_before,
        python_speed_after=python_speed(),
    )


def _growth(
    before: list[Sample], after: list[Sample], keep: Callable[[Sample], tuple[str, str] | None]
) -> dict[tuple[str, str], float]:
    """How much each counter grew over the load, by the key ``keep`` gives a sample (None: not
    counted)."""
    totals: dict[tuple[str, str], float] = {}
    for sign, samples in ((-1, before), (1, after)):
        for sample in samples:
            if (key := keep(sample)) is not None:
                totals[key] = totals.get(key, 0.0) + sign * sample.value
    return totals


def _own_means(before: list[Sample], after: list[Sample]) -> dict[str, float]:
    """Per route, the mean of the API's own request histogram over the load (warm-up included):
    the time spent inside the API, without the client's or the network's."""

    def route_and_kind(sample: Sample) -> tuple[str, str] | None:  # kind: sum or count
        if sample.name.startswith("goal_engine_api_request_seconds_") and "route" in sample.labels:
            return sample.labels["route"], sample.name.rsplit("_", 1)[1]
        return None

    totals = _growth(before, after, route_and_kind)
    return {
        route: round(1000 * total / count, 1)
        for (route, kind), total in totals.items()
        if kind == "sum" and (count := totals.get((route, "count"), 0.0)) > 0
    }


def _cache_lookups(before: list[Sample], after: list[Sample]) -> dict[str, dict[str, int]]:
    """Per cached read, its answers over the load (warm-up included) by where they came from:
    hit, miss or uncached (the API's ``goal_engine_api_read_cache_total``)."""

    def route_and_result(sample: Sample) -> tuple[str, str] | None:
        if sample.name == "goal_engine_api_read_cache_total":
            return sample.labels["route"], sample.labels["result"]
        return None

    lookups: dict[str, dict[str, int]] = {}
    for (route, result), n in sorted(_growth(before, after, route_and_result).items()):
        if n > 0:
            lookups.setdefault(route, {})[result] = round(n)
    return lookups


class _Backends:
    """The PostgreSQL backends serving this run's database (the API's pool), for their CPU.

    Listed before the load and again after it (a connection the pool opened meanwhile then
    counts whole); none is visible when the server runs on another host.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.conn: asyncpg.Connection | None = None
        self.pids: set[int] = set()

    async def start(self) -> None:
        self.conn = await asyncpg.connect(self.database_url)
        await self.refresh()

    async def refresh(self) -> None:
        assert self.conn is not None
        rows = await self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        self.pids |= {r["pid"] for r in rows}

    def cpu(self) -> float | None:
        """Their CPU seconds so far; None when none of them is visible here."""
        seconds = [s for pid in self.pids if (s := cpu_seconds(pid)) is not None]
        return sum(seconds) if seconds else None

    async def stop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
