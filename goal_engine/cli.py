"""``goal-engine``: one command, a subcommand per process and per chore.

Every setting comes from ``GOAL_ENGINE_*`` environment variables (see the
README's configuration table); flags only choose what to run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from goal_engine.core.config import Settings, get_settings
from goal_engine.core.logging import configure_logging

log = logging.getLogger("goal_engine")


def collect_garbage_less_often(settings: Settings) -> None:
    """Python's cyclic collector, run every ``gc_threshold`` allocations instead of 700.

    Why: each batch allocates tens of thousands of short-lived objects (records,
    events, outcomes), and at the default threshold the collector ran a thousand
    times in a 20,000-tag burst, with a full collection every second (~100 ms each,
    none of which found garbage): ~17 % of the worker's CPU by ``gc.callbacks``.
    At 50,000 the worker spent ~190 us of CPU per exit instead of ~270
    (docs/performance/worker.md, "The worker's throughput"). Reference counting still
    frees everything not in a cycle at once; only cycles wait a little longer.
    """
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(settings.gc_threshold, older, oldest)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop
    from faust import Worker
    from prometheus_client import start_http_server

    from goal_engine.stream.app import create_app

    start_http_server(settings.worker_metrics_port, addr="127.0.0.1")
    collect_garbage_less_often(settings)
    # Faust creates only the last level of its data directory: on a fresh machine a second
    # worker's (.local/worker-state/worker-2) failed while the first was creating its parent.
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    # uvloop: the worker's loop (and Faust's consumer thread's) runs a few callbacks per
    # record; uvloop's cost a fraction of asyncio's (faust-streaming supports it).
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = create_app(settings)
    worker = Worker(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False, override_logging=False
    )
    worker.execute_from_commandline()  # handles SIGINT/SIGTERM: stops agents, commits, exits
    return 0


def _projector(settings: Settings, args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from projections.runner import run_projector

    start_http_server(settings.projector_metrics_port, addr="127.0.0.1")
    collect_garbage_less_often(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_projector(settings, stop)

    asyncio.run(main())
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from goal_engine.api.main import create_app

    host, port = settings.api_host, settings.api_port
    if args.workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
        return 0
    from goal_engine.api.workers import metrics_directory
    from goal_engine.core.security import require_strong_secret

    require_strong_secret(settings.jwt_secret)  # refused here, not once per worker
    with metrics_directory():
        app = "goal_engine.api.workers:app"
        uvicorn.run(app, factory=True, workers=args.workers, host=host, port=port, log_config=None)
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from goal_engine.kafka.admin import ensure_topics, wanted_topics

    changes = asyncio.run(ensure_topics(settings, dry_run=args.check))
    would = "would be " if args.check else ""
    for change in changes:
        if change.created:
            print(f"{change.topic}: {would}created")
        for key, (was, now) in change.altered.items():
            print(f"{change.topic}: {key} {was or '(broker default)'} -> {now} ({would}altered)")
    total = len(wanted_topics(settings))
    print(f"{total - len(changes)} of {total} topic(s) already as specified")
    return 1 if args.check and changes else 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from projections.migrate import upgrade

    upgrade(settings.database_url_asyncpg)
    print("database schema is up to date")
    return 0


def _retention(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    import asyncpg

    from projections.retention import apply_retention

    async def run() -> None:
        conn = await asyncpg.connect(settings.database_url_asyncpg)
        try:
            days = args.days if args.days is not None else settings.retention_days
            result = await apply_retention(conn, timedelta(days=days))
        finally:
            await conn.close()
        print(f"created {result.created} monthly partition(s) ahead; kept {result.kept}")
        print("dropped: " + (", ".join(result.dropped) if result.dropped else "nothing"))

    asyncio.run(run())
    return 0


def _projections(settings: Settings, args: argparse.Namespace) -> int:
    from projections.rebuild import run

    target = args.database_url or settings.database_url_asyncpg
    records = run(settings, target)
    print(f"rebuilt the read models from {records:,} records")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from goal_engine.core.security import WeakSecret, mint_token, require_strong_secret, tenant_id_problem
    from goal_engine.devstack.secret import read_development_secret

    if problem := tenant_id_problem(args.tenant):
        print(f"goal-engine token: --tenant: {problem}", file=sys.stderr)
        return 2
    # Unset: the secret of the local stack (`make run`), so its API accepts the token.
    secret = settings.jwt_secret or read_development_secret()
    if not secret:
        raise WeakSecret("GOAL_ENGINE_JWT_SECRET is not set, and `make run` has created no development one")
    token = mint_token(
        require_strong_secret(secret),
        tenant_id=args.tenant,
        subject=args.sub,
        scopes=args.scope or ["workflows:read", "workflows:write"],
        ttl_seconds=args.ttl,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    # In the fragment, which the browser never sends: the console moves it to the tab's session.
    print(f"http://127.0.0.1:{settings.api_port}/console/#token={token}" if args.console else token)
    return 0


def _send(settings: Settings, args: argparse.Namespace) -> int:
    import json
    import uuid
    from datetime import UTC, datetime

    from goal_engine.contract.events import CloudEvent, InvalidEvent, encode_event, parse_event
    from goal_engine.contract.topics import contact_key
    from goal_engine.kafka.producer import make_producer

    event = CloudEvent(
        specversion="1.0",
        id=args.id or str(uuid.uuid4()),
        source="goal-engine/cli",
        type=args.type,
        time=datetime.fromisoformat(args.time) if args.time else datetime.now(UTC),
        tenantid=args.tenant,
        subject=args.subject,
        data=json.loads(args.data),
    )
    value = encode_event(event)
    try:
        parse_event(value, args.type)
    except InvalidEvent as exc:
        print(f"not sent: {exc.reason}")
        return 1
    key = contact_key(args.tenant, args.subject).encode() if args.subject else args.tenant.encode()

    async def produce() -> None:
        producer = make_producer(settings, client_id="goal-engine-cli")
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic(args.type), value=value, key=key)
        finally:
            await producer.stop()

    asyncio.run(produce())
    print(f"sent {args.type} {event.id} to {settings.topic(args.type)}")
    return 0


def _schemas(settings: Settings, args: argparse.Namespace) -> int:
    from goal_engine import schemas_gen

    if args.check:
        stale = schemas_gen.drift()
        if stale:
            print("schemas/ differs from the models: " + ", ".join(stale) + " (run: goal-engine schemas)")
            return 1
        print("schemas/ matches the models")
        return 0
    for path in schemas_gen.write():
        print(path)
    return 0


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from goal_engine.devstack.stack import run_dev_stack

    return run_dev_stack(settings, workers=args.workers)


COMMANDS = {
    "worker": (_worker, "run the stream worker (Faust): evaluates goals, emits achievements and exits"),
    "projector": (_projector, "run the projector: folds goal events into the PostgreSQL read models"),
    "api": (_api, "serve the HTTP API on GOAL_ENGINE_API_HOST:GOAL_ENGINE_API_PORT"),
    "topics": (
        _topics,
        "create the missing Kafka topics and bring every topic's config (retention, compaction) "
        "up to date; prints what it changed",
    ),
    "migrate": (_migrate, "apply the database migrations (GOAL_ENGINE_DATABASE_URL)"),
    "dev": (_dev, "run the whole local stack: Kafka, PostgreSQL, worker, projector, API (make run)"),
    "retention": (_retention, "drop achievement-log months older than the retention; create months ahead"),
    "projections": (_projections, "rebuild the read models from the Kafka log (stop the projector first)"),
    "token": (
        _token,
        "mint an API token signed with GOAL_ENGINE_JWT_SECRET (unset: the development secret "
        "`make run` created in .local/)",
    ),
    "send": (_send, "produce one CloudEvent to its topic (for trying the engine by hand)"),
    "schemas": (_schemas, "write schemas/ (JSON Schema of every topic) from the contract models"),
}


SERVICES = ("worker", "projector", "api")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value


def _add_workers(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--workers", type=_positive, default=1, metavar="N", help=f"{what} (default: %(default)s)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goal-engine",
        description=(
            "Workflow goal tracking: exits a contact from an automation workflow the moment it "
            "reaches a goal. Configuration comes from GOAL_ENGINE_* environment variables."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {
        name: sub.add_parser(name, help=text, description=text) for name, (_, text) in COMMANDS.items()
    }
    tok = parsers["token"]
    tok.add_argument("--tenant", required=True, help="the tenant_id claim")
    tok.add_argument("--sub", default="dev-user", help="the subject (who acts; written to the audit log)")
    tok.add_argument(
        "--scope",
        action="append",
        choices=["workflows:read", "workflows:write"],
        help="repeatable; default both",
    )
    tok.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires (default 3600)")
    tok.add_argument(
        "--console",
        action="store_true",
        help="print a link that opens the goal console signed in with the token (local API port)",
    )
    send = parsers["send"]
    send.add_argument("type", help="the event type = topic, e.g. contact.tag.added")
    send.add_argument("--tenant", required=True, help="tenantid")
    send.add_argument("--subject", help="the contact id (required on contact-scoped types)")
    send.add_argument("--data", required=True, help="the data object, as JSON")
    send.add_argument("--time", help="RFC 3339 time of the event (default: now)")
    send.add_argument("--id", help="event id (default: a new UUID; reuse one to simulate a retry)")
    parsers["retention"].add_argument(
        "--days",
        type=int,
        help="keep achievements this many days (default GOAL_ENGINE_RETENTION_DAYS, 730: two years)",
    )
    projections = parsers["projections"]
    projections.add_argument(
        "action", choices=["rebuild"], help="rebuild: empty the read models, replay the log"
    )
    projections.add_argument(
        "--database-url", help="rebuild into this database instead (it can run beside the live projector)"
    )
    _add_workers(
        parsers["api"],
        "API processes serving the port, each on its own core; /metrics on any of them shows "
        "the totals of all (Prometheus multiprocess mode, PROMETHEUS_MULTIPROC_DIR: emptied at "
        "start, a temporary directory when unset)",
    )
    _add_workers(
        parsers["dev"],
        "stream worker processes, one consumer group: Kafka shares the partitions among them "
        "(metrics: worker 1 on GOAL_ENGINE_WORKER_METRICS_PORT, 9101, worker n 10 ports further per n)",
    )
    parsers["schemas"].add_argument("--check", action="store_true", help="only check; exit 1 on drift")
    parsers["topics"].add_argument(
        "--check", action="store_true", help="only report what would change; exit 1 if anything would"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    # The services log JSON lines for machines; the commands a person runs log text.
    fmt = settings.log_format if args.command in SERVICES else "text"
    configure_logging(settings.log_level, fmt, process=args.command)
    handler, _ = COMMANDS[args.command]
    from goal_engine.core.security import WeakSecret

    try:
        return handler(settings, args)
    except WeakSecret as exc:
        # Before anything listens or connects: a clear line and exit 2, never a half-started service.
        print(f"goal-engine {args.command}: refusing to start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
