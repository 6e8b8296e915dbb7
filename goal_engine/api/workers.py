"""``goal-engine api --workers N``: N API processes on one port, one set of metrics.

uvicorn's supervisor binds the port and starts N worker processes that accept on it,
each building the app from the environment (:func:`app`). A process runs one event loop
on one core; N of them serve on N.

Metrics: prometheus_client's multiprocess mode. Each worker writes its samples to files
in ``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` on any worker reads every worker's
files (:func:`metrics_registry`), so a scrape sees the totals whichever worker answers.
The directory must start empty: the supervisor empties it (its ``*.db`` files) before
the workers start, or uses a fresh temporary one when the variable is unset. What
multiprocess mode leaves out: the per-process collectors (``process_*``, ``python_gc_*``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR))


def metrics_registry() -> CollectorRegistry:
    """What ``/metrics`` shows: every worker's samples in multiprocess mode, else this process's."""
    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def forget_this_process() -> None:
    """At a worker's shutdown: its live gauges (``livesum``) stop counting."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())


@contextlib.contextmanager
def metrics_directory() -> Iterator[Path]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers, emptied; a temporary one if unset."""
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # an earlier run's samples would be counted again
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="goal-engine-api-metrics-"))
    os.environ[MULTIPROC_DIR] = str(path)  # inherited by the workers
    try:
        yield path
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(path, ignore_errors=True)


def app() -> FastAPI:
    """One worker's app (uvicorn's factory), its settings from the environment as the CLI's."""
    from goal_engine.api.main import create_app
    from goal_engine.core.config import get_settings
    from goal_engine.core.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format, process="api")
    return create_app(settings)
