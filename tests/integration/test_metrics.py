"""Every process of the running stack serves the metrics the operators' dashboard and alerts use."""

from __future__ import annotations

import httpx
import pytest

from goal_engine.core.config import Settings

pytestmark = pytest.mark.integration

EXPECTED = {
    "worker": [
        "goal_engine_source_events_total", "goal_engine_goals_achieved_total", "goal_engine_exits_total",
        "goal_engine_dead_letters_total", "goal_engine_armed_listeners", "goal_engine_active_enrollments",
        "goal_engine_exit_latency_seconds", "goal_engine_event_time_lag_seconds",
        "goal_engine_consumer_lag_records", "goal_engine_ready", "goal_engine_workflow_configs",
    ],
    "projector": [
        "goal_engine_projector_events_total", "goal_engine_projector_batch_size",
        "goal_engine_projector_write_seconds", "goal_engine_projector_last_batch_timestamp_seconds",
        "goal_engine_consumer_lag_records", "goal_engine_ready",
    ],
    "api": [
        "goal_engine_api_requests_total", "goal_engine_api_request_seconds", "goal_engine_outbox_backlog",
    ],
}  # fmt: skip


def metric_families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


async def test_each_process_serves_its_metrics(stack: Settings) -> None:
    urls = {
        "worker": f"http://127.0.0.1:{stack.worker_metrics_port}/metrics",
        "projector": f"http://127.0.0.1:{stack.projector_metrics_port}/metrics",
        "api": f"http://127.0.0.1:{stack.api_port}/metrics",
    }
    async with httpx.AsyncClient(timeout=5) as client:
        for process, url in urls.items():
            served = metric_families((await client.get(url)).text)
            # prometheus_client names a counter's family without its _total suffix.
            missing = [
                m for m in EXPECTED[process] if m not in served and m.removesuffix("_total") not in served
            ]
            assert not missing, f"{process} does not serve {missing}"
