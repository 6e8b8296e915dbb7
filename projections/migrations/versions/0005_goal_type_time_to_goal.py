"""Time to goal per goal type (R12): average and percentiles over any window.

- workflow_goal_type_time_to_goal_histogram: per workflow, goal type, hour of
  achievement and log-spaced bin of (achieved_at - enrolled_at)
  (projections/histogram.py), how many achievements fell in the bin and the sum
  of their seconds. Summed over bins, the counts and seconds give an exact
  average; the bins give percentiles within the histogram's bound.

Like the other hourly tables it starts empty: achievements projected before
this migration are in it after ``goal-engine projections rebuild``.

Revision ID: 0005
"""

from projections.migrations.script import execute_script

revision = "0005"
down_revision = "0004"

UPGRADE = """
CREATE TABLE workflow_goal_type_time_to_goal_histogram (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    goal_type    VARCHAR(50) NOT NULL,
    bucket       TIMESTAMPTZ NOT NULL,
    bin          INT NOT NULL,
    achievements BIGINT NOT NULL DEFAULT 0,
    seconds      DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id, goal_type, bucket, bin)
);
"""

DOWNGRADE = """
DROP TABLE workflow_goal_type_time_to_goal_histogram;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
