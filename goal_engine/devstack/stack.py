"""``goal-engine dev`` (what ``make run`` calls): the whole local stack in one command.

Steps, in order:
1. Kafka: the broker named by GOAL_ENGINE_KAFKA_BOOTSTRAP, else a local KRaft
   broker fetched from Maven Central (first run only) on 127.0.0.1:9092;
2. PostgreSQL: GOAL_ENGINE_DATABASE_URL, else the embedded server on 127.0.0.1:5433;
3. create missing topics, apply migrations;
4. start the workers (``--workers``, one consumer group), the projector and the API as
   child processes; unless
   GOAL_ENGINE_JWT_SECRET is set, the API gets the checkout's development
   secret (goal_engine/devstack/secret.py), the one `goal-engine token` uses;
5. wait for GET /readyz to answer 200, print the URLs and how to get a token;
6. on Ctrl-C / SIGTERM, or when a child dies: stop the children, then
   PostgreSQL and Kafka (the ones this command started), and exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
import urllib.request
from contextlib import ExitStack
from types import FrameType

from goal_engine.core.config import REPO_ROOT, Settings
from goal_engine.core.security import require_strong_secret
from goal_engine.devstack import DevstackError
from goal_engine.devstack.kafka import KafkaBroker
from goal_engine.devstack.postgres import LocalPostgres
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command, worker_processes
from goal_engine.devstack.secret import development_secret

log = logging.getLogger("goal_engine.devstack")

LOCAL = REPO_ROOT / ".local"
PROCESSES = ("projector", "api")  # and the workers


def _api_ready(settings: Settings) -> bool:
    try:
        url = f"http://127.0.0.1:{settings.api_port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def run_dev_stack(settings: Settings, workers: int = 1) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("received %s: stopping the stack", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    overrides: dict[str, str] = {}
    if settings.jwt_secret:
        require_strong_secret(settings.jwt_secret)  # the API would refuse it: say so before starting
    else:
        overrides["GOAL_ENGINE_JWT_SECRET"] = development_secret()
    overrides["GOAL_ENGINE_LOCAL_WORKERS"] = str(workers)  # for the API's /readyz
    with ExitStack() as stack:
        try:
            if "GOAL_ENGINE_KAFKA_BOOTSTRAP" in os.environ:
                log.info("using the Kafka broker at %s", settings.kafka_bootstrap)
            else:
                broker = stack.enter_context(KafkaBroker(LOCAL / "kafka", port=9092))
                overrides["GOAL_ENGINE_KAFKA_BOOTSTRAP"] = broker.bootstrap
            if settings.database_url:
                log.info("using the PostgreSQL server of GOAL_ENGINE_DATABASE_URL")
            else:
                pg = stack.enter_context(LocalPostgres(LOCAL / "postgres", port=5433))
                overrides["GOAL_ENGINE_DATABASE_URL"] = pg.url
        except DevstackError as exc:
            log.error("%s", exc)
            return 2
        settings = settings.model_copy(
            update={
                "kafka_bootstrap": overrides.get("GOAL_ENGINE_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
                "database_url": overrides.get("GOAL_ENGINE_DATABASE_URL", settings.database_url),
            }
        )
        from goal_engine.kafka.admin import create_topics
        from projections.migrate import upgrade

        asyncio.run(create_topics(settings))
        upgrade(settings.database_url_asyncpg)
        env = child_env(overrides)
        logs = LOCAL / "logs"
        children = worker_processes(
            workers,
            env,
            settings.local_worker_metrics_ports(workers),
            settings.state_dir,
            logs / "worker.log",
        )
        children += [ManagedProcess(n, goal_engine_command(n), env, logs / f"{n}.log") for n in PROCESSES]
        for child in children:
            child.start()
            stack.callback(child.stop)
        # ExitStack unwinds in reverse: the API, projector and worker stop before PostgreSQL and Kafka.
        announced = False
        while not stop.wait(0.5):
            dead = [c for c in children if c.exit_code is not None]
            if dead:
                for c in dead:
                    log.error("%s exited with code %s; see %s", c.name, c.exit_code, c.log_path)
                return 1
            if not announced and _api_ready(settings):
                announced = True
                _announce(settings, workers, time.monotonic() - started)
    log.info("stopped")
    return 0


def _announce(settings: Settings, workers: int, seconds: float) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    worker_metrics = ", ".join(
        f"http://127.0.0.1:{p}/metrics" for p in settings.local_worker_metrics_ports(workers)
    )
    print(
        f"""
goal-engine is ready in {seconds:.1f} s
  API          {api}/api/v1   (OpenAPI: {api}/docs)
  readiness    {api}/readyz
  metrics      api {api}/metrics,
               projector http://127.0.0.1:{settings.projector_metrics_port}/metrics,
               {workers} worker(s) {worker_metrics}
  Kafka        {settings.kafka_bootstrap}
  logs         {LOCAL / "logs"}
  a token      .venv/bin/goal-engine token --tenant acme --scope workflows:read --scope workflows:write
Ctrl-C stops everything.
""",
        flush=True,
    )
