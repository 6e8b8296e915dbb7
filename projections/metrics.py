"""The projector's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from goal_engine.core import metrics as core_metrics

PROJECTED = Counter("goal_engine_projector_events_total", "Events applied to the read models", ["type"])
BATCH_SIZE = Histogram(
    "goal_engine_projector_batch_size",
    "Records per projector transaction",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
WRITE_SECONDS = Histogram("goal_engine_projector_write_seconds", "Time to write one batch")
LAST_BATCH = Gauge(
    "goal_engine_projector_last_batch_timestamp_seconds", "Unix time of the projector's last committed batch"
)
READY = core_metrics.READY
PARKED = Counter(
    "goal_engine_projector_parked_records_total",
    "Records the projector could not fold, parked in projector_parked_records "
    "(kind: invalid = refused by the contract's validation; error = its parse or fold raised)",
    ["type", "kind"],
)
DB_RETRIES = Counter(
    "goal_engine_projector_db_retries_total",
    "Batches retried after a PostgreSQL connection or server error (with backoff)",
)
