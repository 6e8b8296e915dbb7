"""The read side at scale: all-time and daily rollups, exact partial hours, dedup by id, safe rebuild.

- all-time rollups without the hour bucket, so an all-time stats request reads a
  few rows per workflow, not one per hour of its history:
  workflow_time_to_goal_bins and workflow_goal_type_time_to_goal_bins (the hourly
  histograms summed over hours; workflow_stats and workflow_goal_type_stats already
  hold the counts);
- daily rollups of the four hourly tables, so a long window reads one row per day;
- covering indexes: the new tables' primary keys INCLUDE their figures, and the two
  hourly per-type tables (whose keys put goal_type before the bucket) get one on
  (tenant, workflow, bucket). Rollup rows are written in event order, so a workflow's
  rows lie on as many heap pages as it has rows: an index-only scan reads a few index
  pages instead;
- the seconds of time to goal each row was counted with, on ``enrollments`` (exits)
  and on the achievement log (per goal type), and indexes by time, so the partial
  hours at the edges of a window are counted from the rows themselves, exactly as
  the hourly tables counted them;
- achievement_ids: the projector's dedup of achievements by their deterministic id
  alone. The log is partitioned by achieved_at, and a unique index of a partitioned
  table must include the partition key, so (tenant_id, id) cannot be unique there;
- audit_log.achievement_id, unique: the achievement fold's audit entry is written once
  per achievement, however often the log is replayed (``projections rebuild`` in
  place); duplicates a replay has already written are removed here;
- the achievement page's index carries id, its tie-breaker.

Every new table is filled from the existing ones here, and rebuilt by
``goal-engine projections rebuild``.

Revision ID: 0007
"""

from projections.migrations.script import execute_script

revision = "0007"
down_revision = "0006"

UPGRADE = """
CREATE TABLE workflow_time_to_goal_bins (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    bin          INT NOT NULL,
    exits        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id, bin) INCLUDE (exits)
);
INSERT INTO workflow_time_to_goal_bins
SELECT tenant_id, workflow_id, bin, sum(exits) FROM workflow_time_to_goal_histogram GROUP BY 1, 2, 3;

CREATE TABLE workflow_goal_type_time_to_goal_bins (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    goal_type    VARCHAR(50) NOT NULL,
    bin          INT NOT NULL,
    achievements BIGINT NOT NULL DEFAULT 0,
    seconds      DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id, goal_type, bin) INCLUDE (achievements, seconds)
);
INSERT INTO workflow_goal_type_time_to_goal_bins
SELECT tenant_id, workflow_id, goal_type, bin, sum(achievements), sum(seconds)
FROM workflow_goal_type_time_to_goal_histogram GROUP BY 1, 2, 3, 4;

CREATE TABLE workflow_activity_daily (
    LIKE workflow_activity_hourly INCLUDING DEFAULTS,
    PRIMARY KEY (tenant_id, workflow_id, bucket)
        INCLUDE (enrolled, achieved, timed_exits, time_to_goal_seconds)
);
INSERT INTO workflow_activity_daily
SELECT tenant_id, workflow_id, date_trunc('day', bucket, 'UTC'), sum(enrolled), sum(achieved),
       sum(timed_exits), sum(time_to_goal_seconds)
FROM workflow_activity_hourly GROUP BY 1, 2, 3;

-- The bucket before the goal type in the key: a window reads a range of days of all types.
CREATE TABLE workflow_goal_type_daily (
    LIKE workflow_goal_type_hourly INCLUDING DEFAULTS,
    PRIMARY KEY (tenant_id, workflow_id, bucket, goal_type) INCLUDE (achieved)
);
INSERT INTO workflow_goal_type_daily
SELECT tenant_id, workflow_id, goal_type, date_trunc('day', bucket, 'UTC'), sum(achieved)
FROM workflow_goal_type_hourly GROUP BY 1, 2, 3, 4;

CREATE TABLE workflow_time_to_goal_histogram_daily (
    LIKE workflow_time_to_goal_histogram INCLUDING DEFAULTS,
    PRIMARY KEY (tenant_id, workflow_id, bucket, bin) INCLUDE (exits)
);
INSERT INTO workflow_time_to_goal_histogram_daily
SELECT tenant_id, workflow_id, date_trunc('day', bucket, 'UTC'), bin, sum(exits)
FROM workflow_time_to_goal_histogram GROUP BY 1, 2, 3, 4;

CREATE TABLE workflow_goal_type_time_to_goal_histogram_daily (
    LIKE workflow_goal_type_time_to_goal_histogram INCLUDING DEFAULTS,
    PRIMARY KEY (tenant_id, workflow_id, bucket, goal_type, bin) INCLUDE (achievements, seconds)
);
INSERT INTO workflow_goal_type_time_to_goal_histogram_daily
SELECT tenant_id, workflow_id, goal_type, date_trunc('day', bucket, 'UTC'), bin, sum(achievements),
       sum(seconds)
FROM workflow_goal_type_time_to_goal_histogram GROUP BY 1, 2, 3, 4, 5;

CREATE INDEX goal_type_hourly_by_bucket ON workflow_goal_type_hourly (tenant_id, workflow_id, bucket)
    INCLUDE (goal_type, achieved);
CREATE INDEX goal_type_histogram_by_bucket
    ON workflow_goal_type_time_to_goal_histogram (tenant_id, workflow_id, bucket)
    INCLUDE (goal_type, bin, achievements, seconds);

ALTER TABLE enrollments ADD COLUMN time_to_goal_seconds DOUBLE PRECISION;
UPDATE enrollments SET time_to_goal_seconds = greatest(0.0, extract(epoch FROM ended_at - enrolled_at))
WHERE status = 'completed_goal' AND enrolled_at IS NOT NULL;
DROP INDEX enrollments_workflow;
CREATE INDEX enrollments_workflow ON enrollments (tenant_id, workflow_id, enrolled_at);
CREATE INDEX enrollments_workflow_exits ON enrollments (tenant_id, workflow_id, ended_at)
    WHERE status = 'completed_goal';

ALTER TABLE workflow_goal_achievements ADD COLUMN time_to_goal_seconds DOUBLE PRECISION;
UPDATE workflow_goal_achievements a
SET time_to_goal_seconds = greatest(0.0, extract(epoch FROM a.achieved_at - e.enrolled_at))
FROM enrollments e
WHERE e.tenant_id = a.tenant_id AND e.enrollment_id = a.workflow_enrollment_id AND e.enrolled_at IS NOT NULL;
DROP INDEX achievements_workflow;
CREATE INDEX achievements_workflow
    ON workflow_goal_achievements (tenant_id, workflow_id, achieved_at DESC, id DESC);

CREATE TABLE achievement_ids (
    tenant_id    TEXT NOT NULL,
    id           UUID NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
INSERT INTO achievement_ids SELECT DISTINCT tenant_id, id FROM workflow_goal_achievements;

ALTER TABLE audit_log ADD COLUMN achievement_id UUID;
UPDATE audit_log SET achievement_id = (after->>'id')::uuid WHERE action = 'goal.achieved';
DELETE FROM audit_log a USING audit_log b
WHERE a.achievement_id IS NOT NULL AND a.tenant_id = b.tenant_id AND a.achievement_id = b.achievement_id
  AND a.id > b.id;
CREATE UNIQUE INDEX audit_log_achievement ON audit_log (tenant_id, achievement_id)
    WHERE achievement_id IS NOT NULL;

ANALYZE;
"""

DOWNGRADE = """
DROP INDEX audit_log_achievement;
ALTER TABLE audit_log DROP COLUMN achievement_id;
DROP TABLE achievement_ids;
DROP INDEX achievements_workflow;
CREATE INDEX achievements_workflow ON workflow_goal_achievements (tenant_id, workflow_id, achieved_at DESC);
ALTER TABLE workflow_goal_achievements DROP COLUMN time_to_goal_seconds;
DROP INDEX enrollments_workflow_exits;
DROP INDEX enrollments_workflow;
CREATE INDEX enrollments_workflow ON enrollments (tenant_id, workflow_id);
ALTER TABLE enrollments DROP COLUMN time_to_goal_seconds;
DROP INDEX goal_type_histogram_by_bucket;
DROP INDEX goal_type_hourly_by_bucket;
DROP TABLE workflow_goal_type_time_to_goal_histogram_daily, workflow_time_to_goal_histogram_daily,
    workflow_goal_type_daily, workflow_activity_daily, workflow_goal_type_time_to_goal_bins,
    workflow_time_to_goal_bins;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
