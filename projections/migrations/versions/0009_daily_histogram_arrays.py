"""The daily time-to-goal histograms as one row per day, their bins in arrays.

A 30-day window reads the window's days of both daily histograms. Kept as a row per
(day, bin), they were ~24 rows per workflow and day and, with their covering indexes,
3.1 GiB at 10 million achievements: more than the page cache kept, so a window read
went to disk (4-10 ms instead of 1.3 ms hot). One row per (workflow, day[, goal type])
holds the same figures as parallel arrays, ``bins`` sorted and unique and the figures
of each bin at the same position, about an eighth of the size.

The projector adds a batch's bins to a day's row with ``histogram_bins`` and
``histogram_add`` (below): the merged bins, and each figure summed per bin in the same
order. The hourly histograms stay rows: a window reads at most 46 of their hours.

Revision ID: 0009
"""

from projections.migrations.script import execute_script

revision = "0009"
down_revision = "0008"

# histogram_add is the same sum for counts (bigint) and seconds (float8): one body, two types.
_ADD = """
CREATE FUNCTION histogram_add(bins int[], figures {type}[], more_bins int[], more {type}[])
RETURNS {type}[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(figure ORDER BY bin), '{{}}') FROM (
        SELECT bin, sum(figure)::{type} AS figure
        FROM (SELECT * FROM unnest(bins, figures) UNION ALL SELECT * FROM unnest(more_bins, more))
            AS u(bin, figure)
        GROUP BY bin
    ) AS summed
$$;
"""

UPGRADE = f"""
-- Two histograms' bins (each sorted, unique): their union, sorted.
CREATE FUNCTION histogram_bins(bins int[], more_bins int[])
RETURNS int[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT bin ORDER BY bin), '{{}}') FROM unnest(bins || more_bins) AS bin
$$;
{_ADD.format(type="bigint")}
{_ADD.format(type="float8")}

CREATE TABLE workflow_time_to_goal_days (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    bucket       TIMESTAMPTZ NOT NULL,
    bins         INT[] NOT NULL,
    exits        BIGINT[] NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, bucket)
);
INSERT INTO workflow_time_to_goal_days
SELECT tenant_id, workflow_id, bucket, array_agg(bin ORDER BY bin), array_agg(exits ORDER BY bin)
FROM workflow_time_to_goal_histogram_daily GROUP BY 1, 2, 3;
DROP TABLE workflow_time_to_goal_histogram_daily;
ALTER TABLE workflow_time_to_goal_days RENAME TO workflow_time_to_goal_histogram_daily;
ALTER INDEX workflow_time_to_goal_days_pkey RENAME TO workflow_time_to_goal_histogram_daily_pkey;

CREATE TABLE workflow_goal_type_time_to_goal_days (
    tenant_id    TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    bucket       TIMESTAMPTZ NOT NULL,
    goal_type    VARCHAR(50) NOT NULL,
    bins         INT[] NOT NULL,
    achievements BIGINT[] NOT NULL,
    seconds      DOUBLE PRECISION[] NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, bucket, goal_type)
);
INSERT INTO workflow_goal_type_time_to_goal_days
SELECT tenant_id, workflow_id, bucket, goal_type, array_agg(bin ORDER BY bin),
       array_agg(achievements ORDER BY bin), array_agg(seconds ORDER BY bin)
FROM workflow_goal_type_time_to_goal_histogram_daily GROUP BY 1, 2, 3, 4;
DROP TABLE workflow_goal_type_time_to_goal_histogram_daily;
ALTER TABLE workflow_goal_type_time_to_goal_days RENAME TO workflow_goal_type_time_to_goal_histogram_daily;
ALTER INDEX workflow_goal_type_time_to_goal_days_pkey
    RENAME TO workflow_goal_type_time_to_goal_histogram_daily_pkey;

ANALYZE workflow_time_to_goal_histogram_daily, workflow_goal_type_time_to_goal_histogram_daily;
"""

DOWNGRADE = """
-- As 0007 created them: the hourly tables' columns, the day's bucket before the bin.
CREATE TABLE workflow_time_to_goal_rows (
    LIKE workflow_time_to_goal_histogram INCLUDING DEFAULTS,
    PRIMARY KEY (tenant_id, workflow_id, bucket, bin) INCLUDE (exits)
);
INSERT INTO workflow_time_to_goal_rows
SELECT d.tenant_id, d.workflow_id, d.bucket, u.bin, u.exits
FROM workflow_time_to_goal_histogram_daily d, unnest(d.bins, d.exits) AS u(bin, exits);
DROP TABLE workflow_time_to_goal_histogram_daily;
ALTER TABLE workflow_time_to_goal_rows RENAME TO workflow_time_to_goal_histogram_daily;
ALTER INDEX workflow_time_to_goal_rows_pkey RENAME TO workflow_time_to_goal_histogram_daily_pkey;

CREATE TABLE workflow_goal_type_time_to_goal_rows (
    LIKE workflow_goal_type_time_to_goal_histogram INCLUDING DEFAULTS,
    PRIMARY KEY (tenant_id, workflow_id, bucket, goal_type, bin) INCLUDE (achievements, seconds)
);
INSERT INTO workflow_goal_type_time_to_goal_rows
SELECT d.tenant_id, d.workflow_id, d.goal_type, d.bucket, u.bin, u.achievements, u.seconds
FROM workflow_goal_type_time_to_goal_histogram_daily d,
     unnest(d.bins, d.achievements, d.seconds) AS u(bin, achievements, seconds);
DROP TABLE workflow_goal_type_time_to_goal_histogram_daily;
ALTER TABLE workflow_goal_type_time_to_goal_rows RENAME TO workflow_goal_type_time_to_goal_histogram_daily;
ALTER INDEX workflow_goal_type_time_to_goal_rows_pkey
    RENAME TO workflow_goal_type_time_to_goal_histogram_daily_pkey;

DROP FUNCTION histogram_add(int[], float8[], int[], float8[]);
DROP FUNCTION histogram_add(int[], bigint[], int[], bigint[]);
DROP FUNCTION histogram_bins(int[], int[]);
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
