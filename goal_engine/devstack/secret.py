"""The development JWT secret: random per checkout, kept in ``.local/``, used only by ``make run``.

No secret is written in the code: ``goal-engine dev`` creates this file on its
first start and hands its content to the API it starts; ``goal-engine token``
falls back to it when GOAL_ENGINE_JWT_SECRET is unset, so a token minted in a
second shell is accepted by the local stack. Every other process takes the
secret from the environment only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from goal_engine.core.config import REPO_ROOT

DEV_SECRET_PATH = REPO_ROOT / ".local" / "dev-jwt-secret"


def read_development_secret(path: Path = DEV_SECRET_PATH) -> str:
    """The secret ``make run`` uses, or "" when it has never run here."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def development_secret(path: Path = DEV_SECRET_PATH) -> str:
    """The development secret, created (readable by its owner only) on first use."""
    if existing := read_development_secret(path):
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value
