"""``goal-engine api --workers 2``: two processes on one port, one set of metrics (issue 12).

A real ``goal-engine api`` with two uvicorn workers over a real PostgreSQL (no Kafka:
the outbox relay retries in the background). Requests go out on fresh connections until
both workers have counted some (each worker's samples file in PROMETHEUS_MULTIPROC_DIR
names its pid); then every scrape of /metrics, whichever worker answers it, shows all of
them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from goal_engine.bench.stack import settings_env
from goal_engine.core.config import Settings
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.processes import ManagedProcess, child_env, goal_engine_command

pytestmark = pytest.mark.integration


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"an earlier run's samples")
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",  # nowhere: nothing here publishes
        api_host="127.0.0.1",
        api_port=free_port(),
        jwt_secret="integration-test-secret-at-least-32-bytes",
        ready_check_peers=False,
        log_format="text",
    )
    env = child_env({**settings_env(settings), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    api = ManagedProcess("api", goal_engine_command("api", "--workers", "2"), env, tmp_path / "api.log")
    api.start()
    base = f"http://127.0.0.1:{settings.api_port}"
    deadline = time.monotonic() + 60
    while True:
        assert api.exit_code is None, (tmp_path / "api.log").read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not answer /healthz within 60 s"
        time.sleep(0.1)
    try:
        yield base, metrics_dir
    finally:
        api.stop()


def _healthz_count(metrics_text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "goal_engine_api_requests"
        for sample in family.samples
        if sample.name == "goal_engine_api_requests_total" and sample.labels.get("route") == "/healthz"
    )


def test_metrics_on_any_worker_count_the_requests_of_both(two_workers: tuple[str, Path]) -> None:
    base, metrics_dir = two_workers
    assert not (metrics_dir / "counter_999999.db").exists()  # emptied before the workers started

    def counting_workers() -> set[str]:
        return {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}

    # One /healthz answered while waiting for the start; each below on a connection of its
    # own, so the two workers take turns accepting them.
    answered = 1
    deadline = time.monotonic() + 60
    while len(counting_workers()) < 2:
        assert time.monotonic() < deadline, f"one worker took every connection: {counting_workers()}"
        for _ in range(10):
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            answered += 1
    assert len(counting_workers()) == 2  # both counted some: neither alone has them all

    with httpx.Client(timeout=5) as one:  # one connection, one worker
        seen = [_healthz_count(one.get(f"{base}/metrics").text) for _ in range(3)]
    seen += [_healthz_count(httpx.get(f"{base}/metrics", timeout=5).text) for _ in range(10)]
    assert seen == [answered] * len(seen)
