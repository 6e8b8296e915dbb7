"""The projector's dead letters: records it could not fold, parked with their reason.

A table rather than a topic: the park is written in the same transaction that moves
the tracking row past the record, so a record is either folded or parked, exactly once,
whatever crashes when. A dead-letter topic would be a second system to commit to
(Kafka's produce cannot join a PostgreSQL transaction). The value is kept whole
(records are at most MAX_EVENT_BYTES), so a parked record can be inspected, and
re-produced once the bug that parked it is fixed.

Revision ID: 0006
"""

from projections.migrations.script import execute_script

revision = "0006"
down_revision = "0005"

UPGRADE = """
CREATE TABLE projector_parked_records (
    projection TEXT NOT NULL,
    topic      TEXT NOT NULL,
    partition  INT NOT NULL,
    "offset"   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    error      TEXT NOT NULL,
    value      BYTEA,
    parked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition, "offset")
);
CREATE INDEX projector_parked_records_parked_at ON projector_parked_records (parked_at);
"""

DOWNGRADE = """
DROP TABLE projector_parked_records;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
