"""The configuration as published to the engine (workflow.goal.configured, workflow.activated,
workflow.deactivated), folded by the projector.

One row per workflow: the newest versioned snapshot read from the configuration
topics. Compared with ``workflows.version`` (the API's write model) it tells the
editor whether the engine has the latest change.

Revision ID: 0004
"""

from projections.migrations.script import execute_script

revision = "0004"
down_revision = "0003"

UPGRADE = """
CREATE TABLE published_workflow_configs (
    tenant_id     TEXT NOT NULL,
    workflow_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,          -- only grows: an older snapshot never replaces a newer one
    status        TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    logic         TEXT NOT NULL CHECK (logic IN ('any', 'all')),
    activated_at  TIMESTAMPTZ,
    goals         JSONB NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,     -- the configuration event's time
    event_id      TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id)
);
"""

DOWNGRADE = """
DROP TABLE published_workflow_configs;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
