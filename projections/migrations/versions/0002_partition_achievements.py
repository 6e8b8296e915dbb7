"""Partition the achievement log by month of achieved_at (2-year retention drops whole months).

The primary key gains achieved_at (PostgreSQL requires the partition key in it).
An achievement's achieved_at is its trigger's time, fixed by its id, so
(tenant_id, id, achieved_at) still identifies it and redeliveries still collide.
Months from 24 back to 3 ahead are created here; later months must be created
ahead of time with goal_engine_ensure_month_partitions (a DEFAULT partition
catches anything outside them meanwhile).

Revision ID: 0002
"""

from projections.migrations.script import execute_script

revision = "0002"
down_revision = "0001"

UPGRADE = """
ALTER TABLE workflow_goal_achievements RENAME TO workflow_goal_achievements_unpartitioned;
ALTER INDEX achievements_workflow RENAME TO achievements_workflow_unpartitioned;
ALTER INDEX achievements_contact RENAME TO achievements_contact_unpartitioned;
CREATE TABLE workflow_goal_achievements (
    LIKE workflow_goal_achievements_unpartitioned INCLUDING DEFAULTS,
    PRIMARY KEY (tenant_id, id, achieved_at)
) PARTITION BY RANGE (achieved_at);
CREATE INDEX achievements_workflow ON workflow_goal_achievements (tenant_id, workflow_id, achieved_at DESC);
CREATE INDEX achievements_contact ON workflow_goal_achievements (tenant_id, contact_id);
CREATE TABLE workflow_goal_achievements_default PARTITION OF workflow_goal_achievements DEFAULT;
SELECT goal_engine_ensure_month_partitions(now() - interval '24 months', now() + interval '3 months');
INSERT INTO workflow_goal_achievements SELECT * FROM workflow_goal_achievements_unpartitioned;
DROP TABLE workflow_goal_achievements_unpartitioned;
"""

# A function so the projector and the retention job create months the same way. Its
# body is one statement per line, so execute_script's split on ';' at line end is safe:
# it is sent on its own below.
ENSURE_FUNCTION = """
CREATE OR REPLACE FUNCTION goal_engine_ensure_month_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', from_ts AT TIME ZONE 'UTC')::date;
    created integer := 0;
    name text;
BEGIN
    WHILE month <= (to_ts AT TIME ZONE 'UTC')::date LOOP
        name := format('workflow_goal_achievements_%s', to_char(month, 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF workflow_goal_achievements FOR VALUES FROM (%L) TO (%L)',
                name,
                month::timestamp AT TIME ZONE 'UTC',
                (month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
        month := (month + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$
"""

DOWNGRADE = """
CREATE TABLE workflow_goal_achievements_flat (LIKE workflow_goal_achievements INCLUDING DEFAULTS);
INSERT INTO workflow_goal_achievements_flat SELECT * FROM workflow_goal_achievements;
DROP TABLE workflow_goal_achievements;
ALTER TABLE workflow_goal_achievements_flat RENAME TO workflow_goal_achievements;
ALTER TABLE workflow_goal_achievements ADD PRIMARY KEY (tenant_id, id);
CREATE INDEX achievements_workflow ON workflow_goal_achievements (tenant_id, workflow_id, achieved_at DESC);
CREATE INDEX achievements_contact ON workflow_goal_achievements (tenant_id, contact_id);
DROP FUNCTION goal_engine_ensure_month_partitions(timestamptz, timestamptz);
"""


def upgrade() -> None:
    from alembic import op

    op.execute(ENSURE_FUNCTION)
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
