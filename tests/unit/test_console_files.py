"""The console's files, in-process: served with their policy, every module import resolves, all packaged."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from starlette.testclient import TestClient

from goal_engine.api.main import create_app
from goal_engine.console import STATIC
from goal_engine.core.config import REPO_ROOT
from tests.api_routes import APP_SETTINGS

IMPORT = re.compile(r"""^\s*import\s[^'"]*['"](\.{1,2}/[^'"]+)['"]""", re.MULTILINE)


def test_every_relative_import_names_a_shipped_module() -> None:
    modules = sorted(STATIC.rglob("*.js"))
    assert modules
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"


def test_package_data_ships_every_file_of_the_console() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["goal_engine.console"]
    shipped = {p for g in globs for p in STATIC.parent.glob(g)}
    files = {p for p in STATIC.rglob("*") if p.is_file()}
    assert files <= shipped, sorted(str(p.relative_to(STATIC)) for p in files - shipped)


def test_served_at_console_with_a_policy_that_allows_only_this_origin() -> None:
    client = TestClient(create_app(APP_SETTINGS))  # no lifespan: static files need no database
    assert client.get("/console", follow_redirects=False).headers["location"].endswith("/console/")
    page = client.get("/console/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    script = client.get("/console/js/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    # Nothing in the console names another origin: no CDN, no font service (the SVG
    # namespace is a name, never fetched).
    for path in STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text().replace('"http://www.w3.org/2000/svg"', "")
            assert not re.search(r"https?://", text), Path(path).name
