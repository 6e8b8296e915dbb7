"""The projector's write path: drop the achievement log's index that no query uses.

``achievements_contact`` (tenant_id, contact_id) was created with the partitioned log
(0002), for reads by contact that never came: no query of projections/ or the API filters
the log by contact (the log is read by workflow and time, ``achievements_workflow``, and
by id). Every achievement the projector folds paid an insert into it, on every partition.

Revision ID: 0008
"""

from projections.migrations.script import execute_script

revision = "0008"
down_revision = "0007"

UPGRADE = """
DROP INDEX IF EXISTS achievements_contact;
"""

DOWNGRADE = """
CREATE INDEX achievements_contact ON workflow_goal_achievements (tenant_id, contact_id);
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
