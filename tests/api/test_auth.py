"""Every route of the app against every way a token can be wrong (contract section 3), in-process.

The routes are enumerated from the app itself, so a new endpoint is a new set of test
ids, and it fails until ``tests/api_routes.py`` says which scope it needs. Each route:

- 401: no token, a bad signature, a tampered payload, expired, ``alg: none``, another
  algorithm (HS256 is pinned), a required claim missing (``tests/tokens.py``);
- 403: a token with the other scope only, or with none.

Another tenant's view of each route needs data: tests/integration/test_auth_matrix.py.
"""

from __future__ import annotations

import httpx
import pytest

from goal_engine.core.config import Settings
from goal_engine.core.security import READ, WRITE
from tests.api_routes import CONTRACT, PROTECTED, PUBLIC, ROUTES, assert_error, call, route_id, rule_of
from tests.tokens import BAD_TOKENS, bearer, without_scopes

# "alg HS512" signs with the deployment's (HS256-sized) secret on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def test_every_route_is_classified() -> None:
    assert set(PROTECTED) == set(CONTRACT), "CONTRACT lists a route the app does not serve"
    assert {r for r in ROUTES if r in PUBLIC} == PUBLIC


@pytest.mark.parametrize("token", BAD_TOKENS, ids=str)
@pytest.mark.parametrize("route", PROTECTED, ids=route_id)
async def test_no_valid_token_is_401(
    api_settings: Settings, asgi: httpx.AsyncClient, route: tuple[str, str], token: str
) -> None:
    rule_of(route)
    value = BAD_TOKENS[token](api_settings.jwt_secret)
    response = await call(asgi, route, {"Authorization": f"Bearer {value}"} if value else {})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("scopes", ["other scope", "no scope"])
@pytest.mark.parametrize("route", PROTECTED, ids=route_id)
async def test_a_missing_scope_is_403(
    api_settings: Settings, asgi: httpx.AsyncClient, route: tuple[str, str], scopes: str
) -> None:
    needed = rule_of(route).scope
    if scopes == "other scope":
        headers = bearer(api_settings, "tenant-403", *({READ, WRITE} - {needed}))
    else:
        headers = without_scopes(api_settings, "tenant-403")
    response = await call(asgi, route, headers)
    assert_error(response, 403)
    assert needed in response.json()["error"]["message"]
