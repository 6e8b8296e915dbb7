"""A window's hourly spans and partial hours read indexes only, never the tables' rows.

A window reads the whole hours at its ends from the hourly rollups and its partial hours
from ``enrollments`` (starts and exits). The indexes those reads use held only the keys,
so each hour or row found was one more visit to the table, and a workflow's consecutive
hours lie on as many heap pages (the projector writes every workflow's hour together):
at 10 million achievements a random 30-day window visited ~33 pages outside the shared
buffers, 4.7 ms for the rollups' statement instead of 1.9 ms with these indexes.

Each index now also carries the columns its read takes (``INCLUDE``), so the read is an
index-only scan: a workflow's hours are adjacent in the index, one or two leaf pages
per span. The two hourly primary keys carry them themselves (a second index would be one
more insert per row version the projector writes); the goal-type rollups have covering
indexes since 0007.

Revision ID: 0010
"""

from projections.migrations.script import execute_script

revision = "0010"
down_revision = "0009"

_PRIMARY_KEY = """
ALTER TABLE {table} DROP CONSTRAINT {table}_pkey,
    ADD CONSTRAINT {table}_pkey PRIMARY KEY ({keys}){include};
"""
_ENROLLMENT_INDEXES = """
DROP INDEX enrollments_workflow;
CREATE INDEX enrollments_workflow ON enrollments (tenant_id, workflow_id, enrolled_at){starts};
DROP INDEX enrollments_workflow_exits;
CREATE INDEX enrollments_workflow_exits ON enrollments (tenant_id, workflow_id, ended_at){exits}
    WHERE status = 'completed_goal';
"""
_ACTIVITY = "workflow_activity_hourly", "tenant_id, workflow_id, bucket"
_HISTOGRAM = "workflow_time_to_goal_histogram", "tenant_id, workflow_id, bucket, bin"


def _script(covering: bool) -> str:
    def include(columns: str) -> str:
        return f" INCLUDE ({columns})" if covering else ""

    (activity, activity_keys), (histogram, histogram_keys) = _ACTIVITY, _HISTOGRAM
    return "".join(
        (
            _PRIMARY_KEY.format(
                table=activity,
                keys=activity_keys,
                include=include("enrolled, achieved, timed_exits, time_to_goal_seconds"),
            ),
            _PRIMARY_KEY.format(table=histogram, keys=histogram_keys, include=include("exits")),
            _ENROLLMENT_INDEXES.format(starts=include("start_seen"), exits=include("time_to_goal_seconds")),
            f"ANALYZE {activity}, {histogram}, enrollments;\n",
        )
    )


def upgrade() -> None:
    execute_script(_script(covering=True))


def downgrade() -> None:
    execute_script(_script(covering=False))
