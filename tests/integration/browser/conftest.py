"""A real browser on the real stack: Debian's chromium, driven by Playwright.

Playwright's own browser download cannot work here (and is not wanted): the
tests launch the system's ``/usr/bin/chromium`` (``make install-browser``
installs it; env ``GOAL_ENGINE_CHROMIUM`` names another). Every request the
page makes outside the API's origin is refused and fails the test: the
console must need nothing from the network.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from goal_engine.core.config import Settings
from goal_engine.core.security import mint_token

CHROMIUM = os.environ.get("GOAL_ENGINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the screenshots of the main screens go when asked (the README shows docs/console/).
SHOTS = os.environ.get("GOAL_ENGINE_CONSOLE_SCREENSHOTS")

expect.set_options(timeout=30_000)  # under load the stack takes its time; each wait is on a condition


def token(settings: Settings, tenant: str, *scopes: str, sub: str = "alice", ttl: int = 600) -> str:
    return mint_token(
        settings.jwt_secret,
        tenant_id=tenant,
        subject=sub,
        scopes=list(scopes or ("workflows:read", "workflows:write")),
        ttl_seconds=ttl,
    )


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install-browser` (Debian's chromium)")


def _shot_path(name: str) -> str:
    assert SHOTS is not None
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    return str(Path(SHOTS) / f"{name}.png")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    _require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
def console_url(stack: Settings) -> str:
    return f"http://127.0.0.1:{stack.api_port}/console/"


@pytest.fixture
async def page(browser: Browser, console_url: str) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    origin = urlsplit(console_url).netloc
    outside: list[str] = []
    errors: list[str] = []

    async def only_the_api(route: Route) -> None:
        if urlsplit(route.request.url).netloc == origin or route.request.url.startswith("data:"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_the_api)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not outside, f"the console asked for something outside its origin: {outside}"
    assert not errors, f"uncaught errors in the page: {errors}"


async def sign_in(page: Page, url: str, value: str) -> None:
    await page.goto(url)
    await page.get_by_label("API token").fill(value)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Workflows", level=1)).to_be_visible()


async def screenshot(page: Page, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=_shot_path(name), full_page=True)
