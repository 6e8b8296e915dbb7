"""Every token the tests use, in one place: the good ones and every way one can be wrong.

Shared by the in-process API tier (tests/api) and the integration tests, so a change to the
token rules (claims, secret, algorithm) is made here once.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt

from goal_engine.core.config import Settings
from goal_engine.core.security import READ, WRITE, mint_token

#: A secret of the size a deployment must use, for the tiers without a running stack.
TEST_SECRET = "api-tier-test-secret-of-at-least-32-bytes"


def bearer(settings: Settings, tenant: str, *scopes: str, sub: str = "tester") -> dict[str, str]:
    """The Authorization header of a valid token of ``tenant`` (both scopes unless given)."""
    scopes = scopes or (READ, WRITE)
    token = mint_token(
        settings.jwt_secret, tenant_id=tenant, subject=sub, scopes=list(scopes), ttl_seconds=600
    )
    return {"Authorization": f"Bearer {token}"}


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    """A full set of claims with ``changes`` (a None value leaves that claim out)."""
    full = {"sub": "mallory", "tenant_id": "victim", "scope": f"{READ} {WRITE}", "exp": time.time() + 600}
    full.update(changes)
    return {k: v for k, v in full.items() if v is not None}


def _tampered(secret: str) -> str:
    """A genuine token of tenant "mine" whose payload now says "victim", signature kept."""
    header, _, signature = mint_token(
        secret, tenant_id="mine", subject="mallory", scopes=[READ, WRITE], ttl_seconds=600
    ).split(".")
    return f"{header}.{_b64(claims())}.{signature}"


#: Each way a bearer token is not valid, given the deployment's secret (None: no token at all).
BAD_TOKENS: dict[str, Callable[[str], str | None]] = {
    "no token": lambda secret: None,
    "not a JWT": lambda secret: "not-a-jwt",
    "other secret": lambda secret: jwt.encode(claims(), "another-secret-of-at-least-32-bytes!", "HS256"),
    "tampered payload": _tampered,
    # Past the deployment's clock leeway (10 s by default).
    "expired": lambda secret: jwt.encode(claims(exp=time.time() - 60), secret, "HS256"),
    "alg none": lambda secret: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}.",
    "alg HS512": lambda secret: jwt.encode(claims(), secret, "HS512"),
    "no exp": lambda secret: jwt.encode(claims(exp=None), secret, "HS256"),
    "no tenant_id": lambda secret: jwt.encode(claims(tenant_id=None), secret, "HS256"),
    "empty tenant_id": lambda secret: jwt.encode(claims(tenant_id=""), secret, "HS256"),
    # Keys join tenant and contact with ":" (and asyncpg refuses NUL): a 401, never a 500 or a collision.
    "tenant_id with a NUL": lambda secret: jwt.encode(claims(tenant_id="vic\x00tim"), secret, "HS256"),
    "tenant_id with a newline": lambda secret: jwt.encode(claims(tenant_id="vic\ntim"), secret, "HS256"),
    "tenant_id with a colon": lambda secret: jwt.encode(claims(tenant_id="a:b"), secret, "HS256"),
    "sub with a NUL": lambda secret: jwt.encode(claims(sub="mal\x00lory"), secret, "HS256"),
    "a year-long token": lambda secret: jwt.encode(
        claims(iat=int(time.time()), exp=time.time() + 365 * 86400), secret, "HS256"
    ),
}


def without_scopes(settings: Settings, tenant: str) -> dict[str, str]:
    """A valid token of ``tenant`` with an empty scope claim."""
    token = jwt.encode(claims(scope="", tenant_id=tenant), settings.jwt_secret, "HS256")
    return {"Authorization": f"Bearer {token}"}
