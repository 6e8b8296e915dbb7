"""No process serves tokens signed with a secret anyone could know (issue 10, item 1).

Real processes, started as an operator would; none of them gets far enough to
need Kafka or PostgreSQL (the addresses given lead nowhere), which is the point.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from goal_engine.core.security import DEVELOPMENT_SECRETS, verify_token
from goal_engine.devstack.ports import free_port
from goal_engine.devstack.processes import goal_engine_command

pytestmark = pytest.mark.integration

STRONG = "a-production-secret-of-at-least-32-bytes"


def run(*args: str, secret: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    nowhere = f"127.0.0.1:{free_port()}"
    child = {k: v for k, v in os.environ.items() if not k.startswith("GOAL_ENGINE_")}
    child |= {
        "GOAL_ENGINE_KAFKA_BOOTSTRAP": nowhere,
        "GOAL_ENGINE_DATABASE_URL": f"postgresql://postgres@{nowhere}/none",
        "GOAL_ENGINE_API_PORT": str(free_port()),
        **env,
    }
    if secret is not None:
        child["GOAL_ENGINE_JWT_SECRET"] = secret
    return subprocess.run(
        goal_engine_command(*args), env=child, capture_output=True, text=True, timeout=60, check=False
    )


WEAK = {"unset": None, "empty": "", "published": next(iter(DEVELOPMENT_SECRETS)), "short": "s" * 31}


@pytest.mark.parametrize("command", ["api", "dev"])
@pytest.mark.parametrize("secret", WEAK, ids=str)
def test_the_api_refuses_to_start_with_a_weak_secret(command: str, secret: str) -> None:
    if command == "dev" and WEAK[secret] in (None, ""):
        pytest.skip("unset, `goal-engine dev` generates the checkout's own development secret")
    result = run(command, secret=WEAK[secret])
    assert result.returncode == 2, result.stderr
    assert f"goal-engine {command}: refusing to start: GOAL_ENGINE_JWT_SECRET" in result.stderr


def test_token_signs_with_the_configured_secret_and_its_audience() -> None:
    result = run(
        "token", "--tenant", "acme", secret=STRONG, GOAL_ENGINE_JWT_AUDIENCE="ge", GOAL_ENGINE_JWT_ISSUER="me"
    )
    assert result.returncode == 0, result.stderr
    from goal_engine.core.security import TokenPolicy

    principal = verify_token(STRONG, result.stdout.strip(), TokenPolicy(audience="ge", issuer="me"))
    assert principal.tenant_id == "acme"


def test_token_refuses_a_weak_secret_and_a_tenant_id_with_a_colon() -> None:
    weak = run("token", "--tenant", "acme", secret="short")
    assert weak.returncode == 2 and "at least 32" in weak.stderr
    colon = run("token", "--tenant", "a:b", secret=STRONG)
    assert colon.returncode == 2 and "tenant_id" in colon.stderr


def test_several_api_workers_refuse_a_weak_secret_before_any_starts() -> None:
    result = run("api", "--workers", "2", secret=WEAK["short"])
    assert result.returncode == 2, result.stderr
    assert "goal-engine api: refusing to start: GOAL_ENGINE_JWT_SECRET" in result.stderr
