"""What the benchmark runs against: Kafka, PostgreSQL, its own topics and ONE stream worker.

Kafka and PostgreSQL are the ones named by GOAL_ENGINE_KAFKA_BOOTSTRAP /
GOAL_ENGINE_DATABASE_URL, else the devstack's own, started on free ports with their
data under ``.local/bench-kafka`` and ``.local/bench-postgres`` (kept between runs, so
the second run starts in seconds). Every run has its own topic prefix, consumer group
(Faust app id) and worker state, so it never sees another run's data; its topics are
deleted at the end unless asked to keep them.

Everything started here is registered on the caller's ``ExitStack``; closing it stops
the worker, then PostgreSQL and Kafka. Children are also tied to our life
(``die_with_parent``), so even a SIGKILLed benchmark leaves no orphan.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.devstack.kafka import KafkaBroker
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.postgres import LocalPostgres
from goal_engine.devstack.processes import ManagedProcess, child_env, worker_processes

log = logging.getLogger("goal_engine.bench")

LOCAL = REPO_ROOT / ".local"
BENCH_DIR = LOCAL / "bench"


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process use exactly these settings."""
    return {
        f"GOAL_ENGINE_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }


def describe_database(url: str) -> str:
    """host:port/db, without credentials (the URL goes into the printed report)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}{parts.path}"


@dataclass
class Stack:
    settings: Settings
    kafka_started: bool
    postgres_started: bool
    broker_pid: int | None
    worker: ManagedProcess  # the first worker
    others: list[tuple[ManagedProcess, int]] = field(default_factory=list)  # more, with their metrics ports

    @property
    def worker_pid(self) -> int:
        assert self.worker.proc is not None
        return self.worker.proc.pid

    @property
    def metrics_ports(self) -> list[int]:
        return [self.settings.worker_metrics_port, *(port for _, port in self.others)]

    def worker_cpu_seconds(self) -> float | None:
        """CPU time of every worker process so far (None if one is gone)."""
        times = [
            cpu_seconds(w.proc.pid if w.proc else None) for w in (self.worker, *(w for w, _ in self.others))
        ]
        return None if None in times else sum(t for t in times if t is not None)

    def check_worker(self) -> None:
        """Raise if a worker has exited (its log says why)."""
        for worker in (self.worker, *(w for w, _ in self.others)):
            if (code := worker.exit_code) is not None:
                raise RuntimeError(f"a worker exited with code {code}; see {worker.log_path}")


def start_stack(
    resources: ExitStack,
    base: Settings,
    run_id: str,
    partitions: int,
    worker_env: dict[str, str],
    keep_topics: bool,
    workers: int = 1,
) -> Stack:
    """Provide Kafka and PostgreSQL, create this run's topics, migrate, start the worker."""
    overrides: dict[str, str] = {}
    broker: KafkaBroker | None = None
    if "GOAL_ENGINE_KAFKA_BOOTSTRAP" in os.environ:
        log.info("using the Kafka broker at %s (GOAL_ENGINE_KAFKA_BOOTSTRAP)", base.kafka_bootstrap)
    else:
        log.info("starting Kafka (data in %s)…", LOCAL / "bench-kafka")
        broker = KafkaBroker(LOCAL / "bench-kafka", port=free_port())
        resources.callback(broker.stop)  # before start(): an interrupted start is stopped too
        broker.start()
        overrides["kafka_bootstrap"] = broker.bootstrap
    postgres = provide_postgres(resources, base, LOCAL / "bench-postgres")
    overrides["database_url"] = postgres.url

    state_dir = LOCAL / "bench-worker-state" / run_id
    settings = base.model_copy(
        update={
            **overrides,
            "topic_prefix": f"{base.topic_prefix}bench-{run_id}.",
            "partitions": partitions,
            "worker_id": f"goal-engine-bench-{run_id}",
            "state_dir": state_dir,
            "worker_metrics_port": free_port(),
            "log_format": "text",
        }
    )

    from goal_engine.kafka.admin import create_topics
    from projections.migrate import upgrade

    asyncio.run(create_topics(settings))
    if not keep_topics:
        resources.callback(_delete_topics, settings)
    log.info("applying migrations to %s", describe_database(settings.database_url_asyncpg))
    upgrade(settings.database_url_asyncpg)

    state_dir.mkdir(parents=True, exist_ok=True)
    resources.callback(shutil.rmtree, state_dir, ignore_errors=True)
    env = child_env({**settings_env(settings), **worker_env})
    ports = [settings.worker_metrics_port, *(free_port() for _ in range(workers - 1))]
    processes = worker_processes(workers, env, ports, state_dir, BENCH_DIR / "logs" / run_id / "worker.log")
    for process in processes:
        resources.callback(process.stop)  # unwinds first: workers stop before topics, PostgreSQL, Kafka
        process.start()
    worker, others = processes[0], list(zip(processes[1:], ports[1:], strict=True))
    return Stack(
        settings=settings,
        kafka_started=broker is not None,
        postgres_started=postgres.started,
        broker_pid=broker.pid if broker is not None else None,
        worker=worker,
        others=others,
    )


@dataclass(frozen=True)
class Postgres:
    url: str  # GOAL_ENGINE_DATABASE_URL, or the started server's own database
    started: bool  # by the bench (else the server of GOAL_ENGINE_DATABASE_URL)


def provide_postgres(
    resources: ExitStack, base: Settings, data_dir: Path, server_settings: dict[str, str] | None = None
) -> Postgres:
    """The server of GOAL_ENGINE_DATABASE_URL, else the devstack's own on a free port, its
    data kept in ``data_dir`` between runs, started with ``server_settings``; stopped when
    ``resources`` closes."""
    if base.database_url:
        log.info("using the PostgreSQL server of GOAL_ENGINE_DATABASE_URL")
        return Postgres(base.database_url_asyncpg, started=False)
    log.info("starting PostgreSQL (data in %s)…", data_dir)
    pg = LocalPostgres(data_dir, port=free_port(), settings=server_settings)
    resources.callback(pg.stop)  # before start(): an interrupted start is stopped too
    pg.start()
    return Postgres(pg.url, started=True)


def _delete_topics(settings: Settings) -> None:
    """Drop this run's topics: ours (the prefix) and Faust's (changelog, assignor: the app id)."""

    async def delete() -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="goal-engine-bench")
        await admin.start()
        try:
            names = [
                t
                for t in await admin.list_topics()
                if t.startswith(settings.topic_prefix) or t.startswith(f"{settings.worker_id}-")
            ]
            if names:
                await admin.delete_topics(names)
            return names
        finally:
            await admin.close()

    try:
        names = asyncio.run(delete())
        log.info("deleted this run's %d topics", len(names))
    except Exception as exc:  # cleanup must not hide the run's own outcome
        log.warning("could not delete this run's topics (prefix %s): %s", settings.topic_prefix, exc)


# --- observing the worker -------------------------------------------------------------


async def metric_samples(client: httpx.AsyncClient, url: str) -> list[Sample] | None:
    """A process's Prometheus samples (buckets and _created left out); None while it does not answer."""
    try:
        response = await client.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.name.endswith(("_bucket", "_created"))
    ]


async def worker_metrics(client: httpx.AsyncClient, port: int) -> dict[str, float] | None:
    """The worker's Prometheus samples, summed over labels; None while it does not answer."""
    samples = await metric_samples(client, f"http://127.0.0.1:{port}/metrics")
    if samples is None:
        return None
    values: dict[str, float] = {}
    for sample in samples:
        values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (None if it is gone)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def tree_cpu_seconds(pid: int | None) -> float | None:
    """``cpu_seconds`` of a process and of every descendant it has now (None if it is gone)."""
    own = cpu_seconds(pid)
    if pid is None or own is None:
        return None
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = own, list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        total += cpu_seconds(child) or 0.0
        todo += parents.get(child, [])
    return total


def host_cpu_seconds() -> float:
    """CPU time every process on this host has used since boot, all cores together."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def python_speed(iterations: int = 1_000_000, rounds: int = 7) -> float:
    """How fast this host runs Python now: millions of iterations per second of a plain loop,
    the median of ``rounds`` (~0.5 s in all).

    Why: this VM's speed moves with its neighbours on the physical host, and nothing inside
    it shows that (no steal time). On 2026-12-06 the same loop ran at 14 to 26 M/s from one
    second to the next, the VM idle. The reports give it before and after their load, so
    two runs are compared only at like speeds.
    """
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        for i in range(iterations):
            total += i
        seconds.append(time.perf_counter() - started)
    return round(iterations / statistics.median(seconds) / 1e6, 1)


def memory_mib(pid: int) -> tuple[float | None, float | None]:
    """(VmHWM, VmRSS) of a process in MiB: its peak and current resident set size."""
    found: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                found[name] = round(int(rest.split()[0]) / 1024, 1)  # kB
    except OSError:
        pass
    return found.get("VmHWM"), found.get("VmRSS")
