"""Hourly aggregates for analytics over time (R12): series and time-to-goal percentiles.

- workflow_activity_hourly: enrollments started (by enrolled_at) and goal exits
  (by exit time) per workflow and hour; any window of whole hours sums exactly.
- workflow_goal_type_hourly: achievements per goal type and hour.
- workflow_time_to_goal_histogram: exits per log-spaced bin of time to goal
  (projections/histogram.py), per hour, for percentiles within a known bound.

Revision ID: 0003
"""

from projections.migrations.script import execute_script

revision = "0003"
down_revision = "0002"

UPGRADE = """
CREATE TABLE workflow_activity_hourly (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    bucket       TIMESTAMPTZ NOT NULL,
    enrolled     BIGINT NOT NULL DEFAULT 0,
    achieved     BIGINT NOT NULL DEFAULT 0,
    timed_exits  BIGINT NOT NULL DEFAULT 0,
    time_to_goal_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id, bucket)
);
CREATE TABLE workflow_goal_type_hourly (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    goal_type    VARCHAR(50) NOT NULL,
    bucket       TIMESTAMPTZ NOT NULL,
    achieved     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id, goal_type, bucket)
);
CREATE TABLE workflow_time_to_goal_histogram (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    bucket       TIMESTAMPTZ NOT NULL,
    bin          INT NOT NULL,
    exits        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id, bucket, bin)
);
"""

DOWNGRADE = """
DROP TABLE workflow_time_to_goal_histogram, workflow_goal_type_hourly, workflow_activity_hourly;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
