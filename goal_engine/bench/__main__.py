"""``python -m goal_engine.bench`` (``make bench``): see ``--help``."""

from __future__ import annotations

import argparse
import sys

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

DESCRIPTION = """\
Benchmark the stream worker: N active enrollments, then a steady stream of goal events.

Phases: start Kafka and PostgreSQL (or use GOAL_ENGINE_KAFKA_BOOTSTRAP /
GOAL_ENGINE_DATABASE_URL), create this run's topics (own GOAL_ENGINE_TOPIC_PREFIX),
migrate, start ONE worker (no projector, no API: the exit does not depend on them);
configure one active workflow with a tag goal per tenant; load: produce ENROLLMENTS
workflow.enrollment.started as fast as possible and wait until the worker holds them;
measure: produce contact.tag.added for distinct enrolled contacts at RATE events/s for
WARMUP + DURATION seconds (each exits exactly one enrollment), match every
workflow.exit.goal to its source event, and report on the DURATION part.

Reports the load rate, the exits per second, the latency from the source record's append
to the exit record's append (p50/p90/p99/p99.9/max; both Kafka CreateTime), the worker's
peak memory (VmHWM) and the CPU each process used; as a table on stdout and as JSON in
.local/bench/report-<timestamp>.json. Every process it started is stopped at the end,
on failure and on Ctrl-C.
"""

EPILOG = """\
exit codes: 0 every exit arrived; 1 an exit is missing after the drain, or a phase failed;
2 Kafka or PostgreSQL could not be started; 130 interrupted.

examples:
  python -m goal_engine.bench                                  # 100,000 enrollments, 500 ev/s, 30 s
  python -m goal_engine.bench --enrollments 20000 --rate 1000 --duration 10
  python -m goal_engine.bench --worker-env PRODUCER_LINGER=0.005   # a Faust setting, for the worker only
  python -m goal_engine.bench --burst 20000                    # the bulk tag: 20,000 contacts at once
  python -m goal_engine.bench --burst 50000 --profile          # and a py-spy flame graph of the worker
"""


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def build_parser(default_partitions: int) -> argparse.ArgumentParser:
    parser = bench_parser("python -m goal_engine.bench", DESCRIPTION, EPILOG)
    workload = parser.add_argument_group("workload")
    workload.add_argument(
        "--enrollments",
        type=positive_int,
        default=100_000,
        metavar="N",
        help="active enrollments loaded before measuring: N contacts, one enrollment each "
        "(default: %(default)s)",
    )
    workload.add_argument(
        "--rate",
        type=positive_float,
        default=500.0,
        metavar="EV_PER_S",
        help="contact.tag.added events per second during the measure phase, paced evenly "
        "(default: %(default)s)",
    )
    workload.add_argument(
        "--duration",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="length of the measure phase; RATE x (WARMUP + DURATION) must not exceed N, since "
        "every event goes to a distinct enrolled contact (default: %(default)s)",
    )
    workload.add_argument(
        "--warmup",
        type=non_negative_float,
        default=5.0,
        metavar="SECONDS",
        help="before the measure phase, send at RATE for this long and leave those events out "
        "of the figures (their exits must still arrive): the first seconds of a fresh worker "
        "are slower; 0 for none (default: %(default)s)",
    )
    workload.add_argument(
        "--burst",
        type=positive_int,
        metavar="N",
        help="instead of the paced measure: N enrolled contacts (sets --enrollments), then N "
        "contact.tag.added appended at once; reports first append -> last exit and last append -> "
        "last exit (the bulk tag of a CRM)",
    )
    workload.add_argument(
        "--baseline-events",
        type=int,
        default=50_000,
        metavar="N",
        help="after the engine, the raw aiokafka pipe (goal_engine/bench/baseline.py) drains N events "
        "on the same broker; the engine's throughput is printed as a ratio to it; 0 skips it "
        "(default: %(default)s)",
    )
    workload.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes in one consumer group, sharing the partitions (the figures are "
        "their sum; memory and the profile are the first one's) (default: %(default)s)",
    )
    workload.add_argument(
        "--tenants",
        type=positive_int,
        default=10,
        help="tenants, each with one active workflow and one tag goal; contact i belongs to "
        "tenant i mod TENANTS (default: %(default)s)",
    )
    workload.add_argument(
        "--partitions",
        type=positive_int,
        default=default_partitions,
        help="partitions of every topic this run creates (default: GOAL_ENGINE_PARTITIONS, %(default)s)",
    )
    limits = parser.add_argument_group("time limits")
    limits.add_argument(
        "--drain-timeout",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="after the last event is sent, how long to wait for the missing exits; any still "
        "missing then fail the run (default: %(default)s)",
    )
    limits.add_argument(
        "--load-timeout",
        type=positive_float,
        default=900.0,
        metavar="SECONDS",
        help="how long the worker may take to hold all N enrollments (default: %(default)s)",
    )
    limits.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=120.0,
        metavar="SECONDS",
        help="how long the worker may take to start and to load the workflows (default: %(default)s)",
    )
    other = parser.add_argument_group("other")
    add_progress_every(other, "the load and measure phases")
    other.add_argument(
        "--worker-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment variable for the worker process (repeatable), e.g. a Faust "
        "setting such as BROKER_COMMIT_INTERVAL=1 or PRODUCER_LINGER=0.005, to try a tuning "
        "without changing the code",
    )
    other.add_argument(
        "--save-samples",
        action="store_true",
        help="also write every measured event (source and exit timestamps, latency) as CSV to "
        ".local/bench/samples-<timestamp>.csv, e.g. to plot latency over time",
    )
    other.add_argument(
        "--profile",
        action="store_true",
        help="sample the worker with py-spy during the measure (or burst) phase and write a flame "
        "graph to .local/bench/profile-<timestamp>.svg",
    )
    other.add_argument(
        "--keep-topics",
        action="store_true",
        help="keep this run's topics on the broker afterwards (default: delete them)",
    )
    add_log_level(other)
    return parser


def main(argv: list[str] | None = None) -> int:
    base = Settings()
    parser = build_parser(base.partitions)
    args = parser.parse_args(argv)
    if args.burst:
        args.enrollments = args.burst
    measure_events = round(args.rate * args.duration)
    if measure_events < 1:
        parser.error("--rate x --duration must give at least one event")
    if not args.burst and (events := measure_events + round(args.rate * args.warmup)) > args.enrollments:
        parser.error(
            f"--rate x (--warmup + --duration) = {events:,} events, more than the {args.enrollments:,} "
            "enrolled contacts (each gets one): raise --enrollments or lower the others"
        )
    start_logging(args.log_level, "bench")

    from goal_engine.bench.run import Options, run

    options = Options(
        enrollments=args.enrollments,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        tenants=args.tenants,
        partitions=args.partitions,
        drain_timeout=args.drain_timeout,
        load_timeout=args.load_timeout,
        ready_timeout=args.ready_timeout,
        progress_every=args.progress_every,
        keep_topics=args.keep_topics,
        worker_env=dict(args.worker_env),
        save_samples=args.save_samples,
        burst=bool(args.burst),
        baseline_events=max(0, args.baseline_events),
        profile=args.profile,
        workers=args.workers,
    )
    return run(options, base)


if __name__ == "__main__":
    sys.exit(main())
