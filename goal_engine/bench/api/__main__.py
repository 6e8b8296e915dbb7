"""``python -m goal_engine.bench.api`` (``make bench-api``): see ``--help``."""

from __future__ import annotations

import argparse
import os
import sys

from goal_engine.bench.api.load import ENDPOINTS
from goal_engine.bench.cli import (
    add_log_level,
    add_progress_every,
    bench_parser,
    non_negative_float,
    positive_float,
    positive_int,
    start_logging,
)
from goal_engine.core.config import Settings

DEFAULT_MIX = "stats=1,stats-window=1,stats-now=1,tenant-stats=1,achievements=1"

DESCRIPTION = (
    """\
Benchmark the HTTP API's read side: goal stats with N achievements in the log.

Phases:
  1. database  PostgreSQL: the server of GOAL_ENGINE_DATABASE_URL (the bench creates a
               database of its own on it, so it needs CREATEDB), else the devstack's own
               on a free port (data in .local/bench-api-postgres); migrate.
  2. seed      (skipped with --reuse-seed when a kept database of the same seed exists)
               N achievements straight into the tables with SQL (generate_series): TENANTS x
               WORKFLOWS active workflows with 1-3 goals each, every converted enrollment
               with one achievement, spread over MONTHS months (the monthly partitions), the
               enrollments that did not convert (20-60 % conversion per workflow), then the
               aggregates the API reads (workflow_stats, the hourly and daily tables, the
               time-to-goal histograms and their all-time bins) derived from those rows with
               the projector's rules; the loaded tables' indexes are dropped first and
               built after, the statements run on --seed-connections connections at once,
               then VACUUM (ANALYZE) and CHECKPOINT. Progress lines show rows/s. Kafka, the
               worker and the projector are not started.
     prewarm   the tables and indexes the routes read into PostgreSQL's shared_buffers
               (pg_prewarm), smallest first, as far as they fit, then every workflow's
               last 32 days of the hourly rollups and enrollments (what a window up to
               now reads) by reading them (--no-prewarm: none of it); the bench's own
               PostgreSQL runs with --shared-buffers MiB of them.
  3. api       `goal-engine api` as a child process on a free port; wait for /healthz.
  4. check     the stats of one workflow (all time; the last 30 days by day; the last 24 h
               and some minutes up to now by hour, partial hours at both ends, every
               bucket zeros included) against a brute-force count over the log; a mismatch
               ends the run (exit 1).
  5. load      CLIENTS concurrent clients (keep-alive, closed loop) for WARMUP + DURATION s over
               the mix, each with a read token of the workflow's tenant:
"""
    + "\n".join(f"                 {e.name:<13} {e.what}" for e in ENDPOINTS.values())
    + """
  6. report    per endpoint: requests, req/s, p50/p90/p99/max latency, non-2xx count; the
               CPU of the API, PostgreSQL (when started here), the bench and the host. As a
               table on stdout and as JSON in .local/bench/api-report-<timestamp>.json;
               the last line: "bench-api: worst p99 X ms over N achievements".
The API is stopped and the database dropped at the end (unless --keep-database), on
failure and on Ctrl-C too.
"""
)

EPILOG = """\
exit codes: 0 the check passed and every request answered 2xx; 1 a check mismatch, a non-2xx
answer or failed request, or a phase failed; 2 PostgreSQL could not be started; 130 interrupted.

examples:
  python -m goal_engine.bench.api                           # 1,000,000 achievements, 8 clients, 20 s
  python -m goal_engine.bench.api --achievements 50000 --duration 5
  python -m goal_engine.bench.api --mix stats=1             # only GET /workflows/{id}/goals/stats
  python -m goal_engine.bench.api --tenants 1 --workflows-per-tenant 1   # all in one workflow
  python -m goal_engine.bench.api --achievements 10000000 --tenants 100 --workflows-per-tenant 10 \
      --months 13 --reuse-seed                              # seeded once, reused by the next runs
  GOAL_ENGINE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m goal_engine.bench.api
"""


def _mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        if name not in ENDPOINTS:
            raise argparse.ArgumentTypeError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")
        try:
            mix[name] = int(weight) if sep else 1
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name}: the weight must be a whole number, not {weight!r}"
            ) from None
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"{name}: the weight must not be negative")
    mix = {name: weight for name, weight in mix.items() if weight}
    if not mix:
        raise argparse.ArgumentTypeError("give at least one endpoint a weight above 0")
    return mix


def default_shared_buffers_mib() -> int:
    """A quarter of the machine's memory, at most 8 GiB (and at least PostgreSQL's 128 MB)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(128, min(8192, memory // 4 // 2**20))


def build_parser() -> argparse.ArgumentParser:
    parser = bench_parser("python -m goal_engine.bench.api", DESCRIPTION, EPILOG)
    seed = parser.add_argument_group("seed")
    seed.add_argument(
        "--achievements",
        type=positive_int,
        default=1_000_000,
        metavar="N",
        help="achievements in the log, split evenly over the workflows (default: %(default)s)",
    )
    seed.add_argument("--tenants", type=positive_int, default=10, help="tenants (default: %(default)s)")
    seed.add_argument(
        "--workflows-per-tenant",
        type=positive_int,
        default=5,
        metavar="WORKFLOWS",
        help="active workflows of each tenant (default: %(default)s)",
    )
    seed.add_argument(
        "--months",
        type=positive_int,
        default=12,
        help="the achievements are spread over this many months up to now (default: %(default)s)",
    )
    seed.add_argument(
        "--reuse-seed",
        action="store_true",
        help="seed into a database named by the seed (its parameters, and a digest of the seed's "
        "code and the migrations), keep it, and on a later run of the same seed reuse it instead "
        "of seeding again; the check still runs. Drop kept ones by hand: "
        "DROP DATABASE goal_engine_apibench_kept_... (default: a fresh database, seeded now)",
    )
    seed.add_argument(
        "--seed-connections",
        type=positive_int,
        default=2,
        metavar="N",
        help="connections the seed runs its statements on at once (default: %(default)s)",
    )
    load = parser.add_argument_group("load")
    load.add_argument(
        "--clients", type=positive_int, default=8, help="concurrent clients (default: %(default)s)"
    )
    load.add_argument(
        "--duration",
        type=positive_float,
        default=20.0,
        metavar="SECONDS",
        help="length of the measure window (default: %(default)s)",
    )
    load.add_argument(
        "--warmup",
        type=non_negative_float,
        default=2.0,
        metavar="SECONDS",
        help="load before the measure window, left out of the figures (errors count); 0 for none "
        "(default: %(default)s)",
    )
    load.add_argument(
        "--mix",
        type=_mix,
        default=_mix(DEFAULT_MIX),
        metavar="NAME=WEIGHT,...",
        help="endpoints and their relative weights; each request picks one at random "
        f"(default: {DEFAULT_MIX})",
    )
    load.add_argument(
        "--api-workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="API processes: goal-engine api --workers N (default: %(default)s)",
    )
    server = parser.add_argument_group("postgresql")
    server.add_argument(
        "--shared-buffers",
        type=positive_int,
        default=default_shared_buffers_mib(),
        metavar="MIB",
        help="shared_buffers of the PostgreSQL the bench starts (not of GOAL_ENGINE_DATABASE_URL's "
        "server): a quarter of this machine's memory, at most 8 GiB, as PostgreSQL's docs advise for "
        "a dedicated server (default here: %(default)s)",
    )
    server.add_argument(
        "--no-prewarm",
        dest="prewarm",
        action="store_false",
        help="do not load the routes' tables and indexes into shared_buffers (pg_prewarm) before the "
        "load: measure whatever the caches hold (default: load them, as far as they fit)",
    )
    other = parser.add_argument_group("other")
    other.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="how long the API may take to answer /healthz (default: %(default)s)",
    )
    add_progress_every(other, "the seed and the load")
    other.add_argument(
        "--keep-database",
        action="store_true",
        help="keep the seeded database afterwards and print its URL (default: drop it)",
    )
    add_log_level(other)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.achievements < args.tenants * args.workflows_per_tenant:
        parser.error("--achievements must give every workflow at least one achievement")
    start_logging(args.log_level, "bench-api")

    from goal_engine.bench.api.run import Options, run

    options = Options(
        achievements=args.achievements,
        tenants=args.tenants,
        workflows_per_tenant=args.workflows_per_tenant,
        months=args.months,
        clients=args.clients,
        duration=args.duration,
        warmup=args.warmup,
        mix=args.mix,
        ready_timeout=args.ready_timeout,
        progress_every=args.progress_every,
        keep_database=args.keep_database,
        reuse_seed=args.reuse_seed,
        api_workers=args.api_workers,
        seed_connections=args.seed_connections,
        shared_buffers_mib=args.shared_buffers,
        prewarm=args.prewarm,
    )
    return run(options, Settings())


if __name__ == "__main__":
    sys.exit(main())
