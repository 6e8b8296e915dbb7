"""API tokens: HS256 JWTs carrying ``sub``, ``tenant_id``, ``scope`` and ``exp``.

What a token must satisfy (every failure is :class:`InvalidToken`, a 401):
- signed HS256 with the deployment's secret (the algorithm is pinned);
- ``exp`` in the future and ``iat`` (when present) not in it, within a small leeway
  for clock skew between the issuer and this host;
- a lifetime of at most ``max_lifetime_seconds``: a leaked long-lived token is
  refused even if its signature is good;
- ``aud`` and ``iss`` equal to the configured ones, when the deployment sets them;
- ``tenant_id`` a tenant id as the engine accepts them (:data:`TENANT_ID_PATTERN`),
  ``sub`` a plain string: nothing a database column or a log line would choke on.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from goal_engine.contract import events as contract_events

if TYPE_CHECKING:
    from goal_engine.core.config import Settings

ALGORITHM = "HS256"  # pinned: a token naming another algorithm is refused
READ = "workflows:read"
WRITE = "workflows:write"

#: A tenant id: no control characters, and no ``:``. Record keys join the tenant and
#: the contact (or workflow) with ``:``; a tenant without one makes the first ``:`` of a
#: key the boundary, so tenant ``a`` / contact ``b:c`` and tenant ``a:b`` / contact ``c``
#: are different keys.
# One rule for tenant ids in tokens and in events (the contract's), so keys cannot collide.
TENANT_ID_PATTERN = re.compile(contract_events.TENANT_ID_PATTERN)
_SUBJECT_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,200}")

#: Secrets printed in this repository (or any earlier version of it): never a real one.
DEVELOPMENT_SECRETS = frozenset({"goal-engine-dev-secret-change-me-in-production"})
MIN_SECRET_BYTES = 32


class InvalidToken(Exception):
    pass


class WeakSecret(ValueError):
    """The configured secret must not sign or verify tokens; the message says why."""


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class TokenPolicy:
    """What :func:`verify_token` checks besides the signature."""

    audience: str | None = None
    issuer: str | None = None
    leeway_seconds: float = 0.0
    max_lifetime_seconds: int = 24 * 3600


def token_policy(settings: Settings) -> TokenPolicy:
    return TokenPolicy(
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_seconds=settings.jwt_leeway_seconds,
        max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
    )


def require_strong_secret(secret: str) -> str:
    """``secret``, if it may sign tokens; else :class:`WeakSecret` naming the problem."""
    if not secret:
        raise WeakSecret("GOAL_ENGINE_JWT_SECRET is not set")
    if secret in DEVELOPMENT_SECRETS:
        raise WeakSecret("GOAL_ENGINE_JWT_SECRET is a development value published in the repository")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise WeakSecret(
            f"GOAL_ENGINE_JWT_SECRET is {len(secret.encode())} bytes; it must be at least "
            f"{MIN_SECRET_BYTES} (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


def tenant_id_problem(tenant_id: Any) -> str | None:
    """Why ``tenant_id`` is not a valid tenant id, or None when it is."""
    if not isinstance(tenant_id, str) or not tenant_id:
        return "tenant_id must be a non-empty string"
    if len(tenant_id) > contract_events.TENANT_ID_MAX_LENGTH or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        return "tenant_id must be at most 200 characters, without ':' or control characters"
    return None


def mint_token(
    secret: str,
    *,
    tenant_id: str,
    subject: str,
    scopes: list[str],
    ttl_seconds: int,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "tenant_id": tenant_id, "scope": " ".join(scopes), "iat": now}
    claims["exp"] = now + ttl_seconds
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, policy: TokenPolicy | None = None) -> Principal:
    return _verify(secret, token, policy or TokenPolicy())[0]


class VerifiedTokens:
    """:func:`verify_token` for one secret and policy, remembering the tokens that passed.

    A client sends the same token with every request; its HMAC, JSON and claim checks
    are then done once. Exact: of what a token must satisfy, only ``exp`` can turn a
    token that passed into one that fails (``iat`` and ``nbf`` in the future, and the
    lifetime left, only get better as time goes on; the signature, audience, issuer and
    claims are the token's own bytes), so a remembered token is checked against its
    ``exp`` with PyJWT's rule each time, and one past it is verified again, failing
    with the same reason as ever. Failures are not remembered. At most ``max_tokens``,
    the oldest forgotten first.
    """

    def __init__(self, secret: str, policy: TokenPolicy, max_tokens: int = 10_000) -> None:
        self.secret = secret
        self.policy = policy
        self.max_tokens = max_tokens
        self._passed: dict[str, tuple[Principal, int]] = {}  # token -> (principal, exp)

    def verify(self, token: str) -> Principal:
        kept = self._passed.get(token)
        # PyJWT's rule: expired when exp <= now - leeway.
        if kept is not None and kept[1] > time.time() - self.policy.leeway_seconds:
            return kept[0]
        self._passed.pop(token, None)
        principal, exp = _verify(self.secret, token, self.policy)
        if len(self._passed) >= self.max_tokens:
            del self._passed[next(iter(self._passed))]
        self._passed[token] = (principal, exp)
        return principal

    def __len__(self) -> int:
        return len(self._passed)


def _verify(secret: str, token: str, policy: TokenPolicy) -> tuple[Principal, int]:
    """The token's principal and ``exp``, or :class:`InvalidToken`."""
    required = ["exp", "sub", "tenant_id"] + [
        claim for claim, wanted in (("aud", policy.audience), ("iss", policy.issuer)) if wanted
    ]
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=policy.audience,
            issuer=policy.issuer,
            leeway=policy.leeway_seconds,
            # Unconfigured, an audience is not checked (PyJWT would refuse any token carrying one).
            options={"require": required, "verify_aud": policy.audience is not None},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    _check_lifetime(claims, policy)
    if problem := tenant_id_problem(claims.get("tenant_id")):
        raise InvalidToken(problem)
    subject = claims["sub"]
    if not isinstance(subject, str) or not _SUBJECT_PATTERN.fullmatch(subject):
        raise InvalidToken("sub must be at most 200 characters, without control characters")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("scope must be a space-separated string")
    # exp as PyJWT compares it: a whole number of seconds (int() of the claim).
    return Principal(subject, claims["tenant_id"], frozenset(scope.split())), int(claims["exp"])


def _check_lifetime(claims: dict[str, Any], policy: TokenPolicy) -> None:
    # exp was checked to be a number by decode; iat too, when present.
    exp = float(claims["exp"])
    issued = claims.get("iat")
    limit = policy.max_lifetime_seconds
    if issued is not None and exp - float(issued) > limit:
        raise InvalidToken(f"the token's lifetime (exp - iat) exceeds {limit} s")
    # Without iat, what is left of it is what counts: no token is good for longer than the limit.
    if exp - time.time() > limit + policy.leeway_seconds:
        raise InvalidToken(f"the token expires more than {limit} s from now")
