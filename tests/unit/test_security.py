"""Tokens and the secret that signs them (issue 10, items 1 and 3)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from goal_engine.core.security import (
    DEVELOPMENT_SECRETS,
    InvalidToken,
    TokenPolicy,
    VerifiedTokens,
    WeakSecret,
    mint_token,
    require_strong_secret,
    tenant_id_problem,
    verify_token,
)
from goal_engine.devstack.secret import development_secret, read_development_secret

SECRET = "unit-test-secret-of-at-least-32-bytes"


def _token(**claims: Any) -> str:
    now = time.time()
    base = {"sub": "u", "tenant_id": "t1", "scope": "workflows:read", "iat": int(now), "exp": now + 60}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, "HS256")


@pytest.mark.parametrize("secret", ["", *DEVELOPMENT_SECRETS, "x", "a" * 31, "é" * 15])
def test_a_weak_secret_is_refused(secret: str) -> None:
    with pytest.raises(WeakSecret, match="GOAL_ENGINE_JWT_SECRET"):
        require_strong_secret(secret)


@given(st.text(min_size=1).filter(lambda s: len(s.encode()) < 32))
def test_every_secret_under_32_bytes_is_refused(secret: str) -> None:
    with pytest.raises(WeakSecret):
        require_strong_secret(secret)


def test_a_32_byte_secret_is_accepted() -> None:
    assert require_strong_secret("k" * 32) == "k" * 32


def test_audience_and_issuer_are_checked_when_configured() -> None:
    policy = TokenPolicy(audience="goal-engine", issuer="https://id.example")
    good = _token(aud="goal-engine", iss="https://id.example")
    assert verify_token(SECRET, good, policy).tenant_id == "t1"
    for bad in (_token(), _token(aud="other", iss="https://id.example"), _token(aud="goal-engine")):
        with pytest.raises(InvalidToken):
            verify_token(SECRET, bad, policy)
    # Not configured: a token's own aud is not a reason to refuse it.
    assert verify_token(SECRET, _token(aud="whatever"), TokenPolicy()).tenant_id == "t1"


def test_mint_token_sets_audience_and_issuer() -> None:
    policy = TokenPolicy(audience="a", issuer="i")
    token = mint_token(
        SECRET, tenant_id="t", subject="u", scopes=[], ttl_seconds=60, audience="a", issuer="i"
    )
    assert verify_token(SECRET, token, policy).subject == "u"


def test_the_leeway_tolerates_small_clock_skew_only() -> None:
    policy = TokenPolicy(leeway_seconds=10)
    assert verify_token(SECRET, _token(exp=time.time() - 5), policy)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(SECRET, _token(exp=time.time() - 30), policy)
    with pytest.raises(InvalidToken):  # issued in the future
        verify_token(SECRET, _token(iat=int(time.time()) + 60), policy)


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    policy = TokenPolicy(max_lifetime_seconds=3600)
    assert verify_token(SECRET, _token(exp=time.time() + 3000), policy)
    with pytest.raises(InvalidToken, match="lifetime"):
        verify_token(SECRET, _token(iat=int(time.time()) - 7000, exp=time.time() + 60), policy)
    with pytest.raises(InvalidToken, match="from now"):  # no iat: what is left of it counts
        verify_token(SECRET, _token(iat=None, exp=time.time() + 7200), policy)


@pytest.mark.parametrize("tenant", ["a:b", "a\x00", "a\nb", "\x7f", "x" * 201, "", 7, None])
def test_a_tenant_id_with_a_colon_or_control_characters_is_401(tenant: Any) -> None:
    with pytest.raises(InvalidToken, match="tenant_id"):
        verify_token(SECRET, _token(tenant_id=tenant))


@given(st.text(min_size=1, max_size=200))
def test_tenant_ids_are_accepted_exactly_without_colon_or_control_characters(tenant: str) -> None:
    clean = not any(c == ":" or ord(c) < 0x20 or ord(c) == 0x7F for c in tenant)
    assert (tenant_id_problem(tenant) is None) == clean
    if clean:
        assert verify_token(SECRET, _token(tenant_id=tenant)).tenant_id == tenant
    else:
        with pytest.raises(InvalidToken):
            verify_token(SECRET, _token(tenant_id=tenant))


@pytest.mark.parametrize("subject", ["mal\x00lory", "a\rb", "x" * 201, 12])
def test_a_subject_that_is_not_a_plain_string_is_401(subject: Any) -> None:
    with pytest.raises(InvalidToken):
        verify_token(SECRET, _token(sub=subject))


def test_the_development_secret_is_random_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "local" / "dev-jwt-secret"
    assert read_development_secret(path) == ""
    first = development_secret(path)
    assert require_strong_secret(first) == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert development_secret(path) == first == read_development_secret(path)
    assert development_secret(tmp_path / "elsewhere") != first


def test_a_verified_token_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens, token = VerifiedTokens(SECRET, TokenPolicy()), _token()
    decoded = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **kw: decoded.append(1) or real_decode(*a, **kw))
    first = tokens.verify(token)
    assert tokens.verify(token) == first == verify_token(SECRET, token)
    assert len(decoded) == 2  # the first verify, and verify_token's own; not the second verify


def test_a_remembered_token_is_refused_once_it_expires_with_the_usual_reason() -> None:
    tokens = VerifiedTokens(SECRET, TokenPolicy())
    exp = time.time() + 1.0
    token = _token(exp=exp)
    assert tokens.verify(token).tenant_id == "t1"
    deadline = time.monotonic() + 10
    while time.time() <= exp:  # the token's own clock: wait until it is past its exp
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(token)  # and stays refused


def test_a_remembered_token_expires_on_pyjwt_s_whole_second() -> None:
    """PyJWT compares int(exp): a token with exp = N.9 is expired from N + leeway on."""
    policy = TokenPolicy(leeway_seconds=0.0)
    tokens = VerifiedTokens(SECRET, policy)
    whole = int(time.time()) + 1
    token = _token(exp=whole + 0.9)
    tokens.verify(token)
    deadline = time.monotonic() + 10
    while time.time() <= whole:  # past the whole second, not yet past exp itself
        assert time.monotonic() < deadline
        time.sleep(0.02)
    if time.time() < whole + 0.9:  # still before exp's fraction: PyJWT already refuses
        with pytest.raises(InvalidToken, match="expired"):
            verify_token(SECRET, token, policy)
        with pytest.raises(InvalidToken, match="expired"):
            tokens.verify(token)


def test_remembering_a_token_lets_no_other_token_through() -> None:
    tokens, token = VerifiedTokens(SECRET, TokenPolicy()), _token()
    tokens.verify(token)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for bad in (
        tampered,
        _token(tenant_id="t:1"),
        jwt.encode({"sub": "u"}, "another-secret-of-32-bytes-or-more", "HS256"),
    ):
        with pytest.raises(InvalidToken):
            tokens.verify(bad)
    assert len(tokens) == 1  # failures are not remembered


def test_at_most_max_tokens_are_remembered() -> None:
    tokens = VerifiedTokens(SECRET, TokenPolicy(), max_tokens=2)
    for subject in ("a", "b", "c"):
        tokens.verify(_token(sub=subject))
    assert len(tokens) == 2
