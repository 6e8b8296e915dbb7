"""API tokens: HS256 JWTs carrying ``sub``, ``tenant_id``, ``scope`` and ``exp``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"  # pinned: a token naming another algorithm is refused
READ = "workflows:read"
WRITE = "workflows:write"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str
    scopes: frozenset[str]


def mint_token(secret: str, *, tenant_id: str, subject: str, scopes: list[str], ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {"sub": subject, "tenant_id": tenant_id, "scope": " ".join(scopes), "iat": now}
    claims["exp"] = now + ttl_seconds
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "tenant_id"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    tenant = claims.get("tenant_id")
    if not isinstance(tenant, str) or not tenant or len(tenant) > 200:
        raise InvalidToken("tenant_id must be a non-empty string")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("scope must be a space-separated string")
    return Principal(str(claims["sub"]), tenant, frozenset(scope.split()))
