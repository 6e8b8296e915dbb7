"""Run a plain SQL script from a migration."""

from __future__ import annotations

import re

from alembic import op

# Our DDL has no semicolons inside statements (a function body is one SQL statement
# without its semicolon), so a statement ends at a semicolon that ends a line.
_STATEMENT_END = re.compile(r";\s*$", re.MULTILINE)


def execute_script(sql: str) -> None:
    """asyncpg prepares each statement and refuses several at once: send them one by one."""
    for statement in _STATEMENT_END.split(sql):
        lines = [
            line for line in statement.splitlines() if line.strip() and not line.strip().startswith("--")
        ]
        if lines:
            op.execute("\n".join(lines))
