"""Metrics more than one process exports under one name."""

from __future__ import annotations

from prometheus_client import Gauge

CONSUMER_LAG = Gauge(
    "goal_engine_consumer_lag_records",
    "Records between a partition's end and this process's position in it",
    ["process", "topic", "partition"],
)
READY = Gauge("goal_engine_ready", "1 once the process has loaded its state and is processing")
