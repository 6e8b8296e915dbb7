"""Configuration (write model), outbox, audit log, read models, projector tracking.

Every table carries ``tenant_id`` first in its key: each lookup is tenant-scoped.
Ids from other modules are TEXT (the contract does not promise UUIDs).

Revision ID: 0001
"""

from projections.migrations.script import execute_script

revision = "0001"
down_revision = None

UPGRADE = """
-- Configuration, owned by the API ------------------------------------------------
CREATE TABLE workflows (
    tenant_id      TEXT NOT NULL,
    workflow_id    TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'inactive' CHECK (status IN ('active', 'inactive')),
    logic          TEXT NOT NULL DEFAULT 'any' CHECK (logic IN ('any', 'all')),
    activated_at   TIMESTAMPTZ,
    version        BIGINT NOT NULL DEFAULT 0,   -- grows on every change: orders the snapshots
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id)
);

CREATE TABLE workflow_goals (
    tenant_id      TEXT NOT NULL,
    id             UUID NOT NULL,
    workflow_id    TEXT NOT NULL,
    goal_type      VARCHAR(50) NOT NULL,
    criteria       JSONB NOT NULL,
    is_active      BOOLEAN NOT NULL DEFAULT true,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by     TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, workflow_id),
    UNIQUE (tenant_id, workflow_id, goal_type, criteria)
);

-- Events the API must publish, written in the same transaction as the change.
CREATE TABLE outbox (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    topic          TEXT NOT NULL,
    key            TEXT NOT NULL,
    value          BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at   TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    entity_type    TEXT NOT NULL,
    entity_id      TEXT NOT NULL,
    before         JSONB,
    after          JSONB
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC, id DESC);

-- Read models, owned by the projector --------------------------------------------
CREATE TABLE enrollments (
    tenant_id        TEXT NOT NULL,
    enrollment_id    TEXT NOT NULL,
    workflow_id      TEXT NOT NULL,
    contact_id       TEXT NOT NULL,
    status           TEXT NOT NULL,
    start_seen       BOOLEAN NOT NULL DEFAULT false,  -- counted in total_enrolled
    enrolled_at      TIMESTAMPTZ,
    ended_at         TIMESTAMPTZ,
    goal_config_ids  TEXT[],
    PRIMARY KEY (tenant_id, enrollment_id)
);
CREATE INDEX enrollments_workflow ON enrollments (tenant_id, workflow_id);

CREATE TABLE workflow_goal_achievements (
    tenant_id               TEXT NOT NULL,
    id                      UUID NOT NULL,
    workflow_id             TEXT NOT NULL,
    workflow_enrollment_id  TEXT NOT NULL,
    contact_id              TEXT NOT NULL,
    goal_config_id          TEXT NOT NULL,
    goal_type               VARCHAR(50) NOT NULL,
    achieved_at             TIMESTAMPTZ NOT NULL,
    trigger_event           JSONB NOT NULL,
    metadata                JSONB NOT NULL DEFAULT '{}',
    recorded_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX achievements_workflow ON workflow_goal_achievements (tenant_id, workflow_id, achieved_at DESC);
CREATE INDEX achievements_contact ON workflow_goal_achievements (tenant_id, contact_id);

-- Aggregates kept up to date as events arrive, so stats never scan the log.
CREATE TABLE workflow_stats (
    tenant_id              TEXT NOT NULL,
    workflow_id            TEXT NOT NULL,
    total_enrolled         BIGINT NOT NULL DEFAULT 0,
    goals_achieved         BIGINT NOT NULL DEFAULT 0,   -- enrollments exited on a goal
    timed_exits            BIGINT NOT NULL DEFAULT 0,   -- exits whose enrollment time is known
    time_to_goal_seconds   DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id)
);

CREATE TABLE workflow_goal_type_stats (
    tenant_id     TEXT NOT NULL,
    workflow_id   TEXT NOT NULL,
    goal_type     VARCHAR(50) NOT NULL,
    achieved      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_id, goal_type)
);

-- Reference data from catalog.entity.changed: what goals may point at (R13).
CREATE TABLE catalog_entities (
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    parent_id    TEXT,
    deleted      BOOLEAN NOT NULL DEFAULT false,
    changed_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, kind, entity_id)
);

-- How far the projector has read, written in the same transaction as the rows.
CREATE TABLE projector_tracking (
    projection   TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INT NOT NULL,
    next_offset  BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);
"""

DOWNGRADE = """
DROP TABLE projector_tracking, catalog_entities, workflow_goal_type_stats, workflow_stats,
    workflow_goal_achievements, enrollments, audit_log, outbox, workflow_goals, workflows;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
