"""The stream worker's Prometheus metrics (no tenant or contact labels: cardinality)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from goal_engine.core import metrics as core_metrics

EVENTS_CONSUMED = Counter(
    "goal_engine_source_events_total", "Contact-scoped events consumed, by event type", ["type"]
)
DEAD_LETTERS = Counter(
    "goal_engine_dead_letters_total", "Records sent to the dead-letter topic, by reason", ["reason"]
)
GOALS_ACHIEVED = Counter("goal_engine_goals_achieved_total", "Goals achieved, by goal type", ["goal_type"])
EXITS = Counter("goal_engine_exits_total", "Enrollments exited on a goal")
ACTIVE_ENROLLMENTS = Gauge(
    "goal_engine_active_enrollments", "Active enrollments held by this worker's partitions"
)
ARMED_LISTENERS = Gauge(
    "goal_engine_armed_listeners",
    "Armed goal listeners: (active enrollment, armed goal not yet met) pairs on this worker",
)
WORKFLOWS = Gauge("goal_engine_workflow_configs", "Workflow configurations held by this worker")
EXIT_LATENCY = Histogram(
    "goal_engine_exit_latency_seconds",
    "Source event appended to Kafka -> its exit appended",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
READY = core_metrics.READY
EVENT_TIME_LAG = Histogram(
    "goal_engine_event_time_lag_seconds",
    "When the worker evaluates an event minus the event's own time (producer delay and worker lag)",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 3600),
)
CONTACT_STATES = Gauge(
    "goal_engine_contact_states", "Contacts with state (enrollments or kept events) in this worker's table"
)
EVALUATE_BATCH = Histogram(
    "goal_engine_evaluate_batch_events",
    "Contact events per evaluated batch (one wait for Kafka's acks per batch)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
KEPT_EVENTS_DROPPED = Counter(
    "goal_engine_kept_events_dropped_total",
    "Goal events a contact forgot before their grace window ended, at its bound"
    " (GOAL_ENGINE_MAX_KEPT_EVENTS / GOAL_ENGINE_MAX_KEPT_EVENT_BYTES)",
)
