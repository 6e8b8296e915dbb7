"""The bench report's setup names what the figures depend on."""

from __future__ import annotations

from goal_engine.bench.report import Report, Setup, render


def _setup(**overrides: object) -> Setup:
    fields: dict[str, object] = {
        "kafka_bootstrap": "127.0.0.1:9092",
        "kafka_started_by_bench": True,
        "database": "127.0.0.1:5433/postgres",
        "postgres_started_by_bench": True,
        "topic_prefix": "bench-1.",
        "partitions": 12,
        "worker_id": "goal-engine-bench-1",
        "worker_log": "worker.log",
        "tenants": 10,
    }
    return Setup(**{**fields, **overrides})  # type: ignore[arg-type]


def _row(text: str, name: str) -> str | None:
    return next(
        (line.split(name, 1)[1].strip() for line in text.splitlines() if line.strip().startswith(name)), None
    )


def test_a_broker_the_bench_started_is_shown_with_its_jvm_options() -> None:
    options = "-Xms1g -Xmx1g -XX:+UseParallelGC -XX:TieredStopAtLevel=1"
    text = render(Report("r1", "2026-12-03T00:00:00+00:00", True, _setup(kafka_jvm_options=options)))
    assert _row(text, "kafka jvm") == options


def test_a_broker_of_someone_else_has_no_jvm_row() -> None:
    text = render(Report("r1", "2026-12-03T00:00:00+00:00", True, _setup(kafka_started_by_bench=False)))
    assert _row(text, "kafka jvm") is None
    assert _row(text, "kafka") is not None
