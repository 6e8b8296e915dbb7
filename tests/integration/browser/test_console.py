"""The goal console in Debian's chromium against the real stack (API, Kafka, worker, projector).

Each scenario of issue 13: sign in (pasted token, and the link of
``goal-engine token --console``); a wrong, expired or under-scoped token;
every goal type created through its generated form; inline validation; a
422's violations beside the goals they concern; activation; an enrollment
and a goal event on Kafka updating the analytics and the achievement log
without a reload; another tenant's workflow invisible; the layout at 360 px
and keyboard use.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from goal_engine.core.config import REPO_ROOT, Settings
from tests.integration.browser.conftest import screenshot, sign_in, token
from tests.integration.helpers import EventSender, bearer, cloud_event, eventually, settings_env

pytestmark = pytest.mark.integration


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def open_workflow(page: Page, workflow: str) -> None:
    await page.get_by_label("Open or create a workflow by id").fill(workflow)
    await page.get_by_role("button", name="Open").click()
    await expect(page.get_by_role("heading", name=workflow, level=1)).to_be_visible()


async def add_goal(page: Page, number: int, goal_type: str, fields: dict[str, str | bool]) -> Locator:
    await page.get_by_role("button", name="Add goal").click()
    goal = page.get_by_role("region", name=f"Goal {number}")
    await goal.get_by_label("Goal type").select_option(goal_type)
    for label, value in fields.items():
        control = goal.get_by_label(label, exact=True)
        if value is True:
            await control.check()
        else:
            await control.fill(str(value))
    return goal


async def goals_of(
    api: httpx.AsyncClient, stack: Settings, tenant: str, workflow: str
) -> list[dict[str, Any]]:
    response = await api.get(f"/workflows/{workflow}/goals", headers=bearer(stack, tenant))
    return response.json()["goals"] if response.status_code == 200 else []


async def test_sign_in_with_a_pasted_token_and_with_the_cli_link(
    stack: Settings, page: Page, console_url: str
) -> None:
    await page.goto(console_url)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await screenshot(page, "sign-in")
    await sign_in(page, console_url, token(stack, new_id("t")))
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0

    tenant = new_id("cli")
    cli = await asyncio.create_subprocess_exec(
        str(REPO_ROOT / ".venv/bin/goal-engine"),
        *("token", "--tenant", tenant, "--console"),
        env=settings_env(stack),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await cli.communicate()
    assert cli.returncode == 0
    link = out.decode().strip()
    assert link.startswith(console_url + "#token=")
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Workflows", level=1)).to_be_visible()
    await expect(page.get_by_text(f"{tenant} · dev-user")).to_be_visible()
    assert "token=" not in page.url  # out of the address bar and the history
    assert await page.evaluate("Object.values(sessionStorage)") == [link.split("#token=")[1]]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("forged", "invalid token: Signature verification failed"),
        ("expired", "invalid token: Signature has expired"),
        ("no read scope", "the token lacks the scope workflows:read"),
    ],
)
async def test_a_wrong_token_says_why_and_asks_again(
    stack: Settings, page: Page, console_url: str, case: str, reason: str
) -> None:
    value = {
        "forged": token(stack.model_copy(update={"jwt_secret": "x" * 40}), "t"),
        "expired": token(stack, "t", ttl=-30),
        "no read scope": token(stack, "t", "workflows:write"),
    }[case]
    await page.goto(console_url)
    await page.get_by_label("API token").fill(value)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text(reason)
    await expect(page.get_by_label("API token")).to_be_focused()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_a_token_that_expires_while_signed_in_asks_again(
    stack: Settings, page: Page, console_url: str
) -> None:
    await sign_in(page, console_url, token(stack, new_id("t"), ttl=4))
    await expect(page.get_by_role("alert")).to_contain_text("Your token expired", timeout=20_000)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_each_goal_type_is_created_through_its_form(
    stack: Settings, api: httpx.AsyncClient, page: Page, console_url: str
) -> None:
    tenant = new_id("types")
    await sign_in(page, console_url, token(stack, tenant))
    first, second = new_id("wf"), new_id("wf")
    await open_workflow(page, first)
    await expect(page.get_by_label("Goal type")).to_have_count(0)
    await add_goal(page, 1, "tag_added", {"Tag": "tag-1", "Tag name (any case)": "VIP"})
    type_options = page.get_by_role("region", name="Goal 1").get_by_label("Goal type").locator("option")
    assert await type_options.all_inner_texts() == [
        "Choose a goal type",
        "Contact receives a specific tag",
        "Contact completes a purchase transaction",
        "Contact books an appointment",
        "Contact submits a specific form",
        "Contact reaches a specific pipeline stage",
    ]
    await add_goal(
        page,
        2,
        "purchase_made",
        {"Product": "prod-7", "Minimum amount": "49.99", "Currency (of the minimum)": "USD"},
    )
    await add_goal(page, 3, "appointment_booked", {"Any appointment": True})
    await expect(page.get_by_role("button", name="Add goal")).to_be_disabled()
    await expect(page.get_by_text("A workflow has at most 3 goals.")).to_be_visible()
    await page.get_by_label("Goal logic").select_option("all")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved.")
    await screenshot(page, "goal-editor")

    await page.get_by_role("link", name="Workflows").first.click()
    await open_workflow(page, second)
    await add_goal(page, 1, "form_submitted", {"Form (required)": "form-9"})
    await add_goal(
        page, 2, "pipeline_stage_reached", {"Pipeline (required)": "pl-1", "Stage (required)": "st-won"}
    )
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved.")

    saved = {
        g["goal_type"]: g["criteria"] for w in (first, second) for g in await goals_of(api, stack, tenant, w)
    }
    assert saved == {
        "tag_added": {"tag_id": "tag-1", "tag_name": "VIP"},
        "purchase_made": {"product_id": "prod-7", "min_amount": "49.99", "currency": "USD"},
        "appointment_booked": {"any_appointment": True},
        "form_submitted": {"form_id": "form-9"},
        "pipeline_stage_reached": {"pipeline_id": "pl-1", "stage_id": "st-won"},
    }
    settings = (await api.get(f"/workflows/{first}/goal-settings", headers=bearer(stack, tenant))).json()
    assert settings["logic"] == "all"


async def test_inline_validation_needs_a_criterion_before_anything_is_sent(
    stack: Settings, api: httpx.AsyncClient, page: Page, console_url: str
) -> None:
    tenant, workflow = new_id("inline"), new_id("wf")
    await sign_in(page, console_url, token(stack, tenant))
    await open_workflow(page, workflow)
    await page.get_by_role("button", name="Add goal").click()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("region", name="Goal 1")).to_contain_text("Choose a goal type")
    goal = await add_goal(page, 2, "tag_added", {})
    await add_goal(page, 3, "form_submitted", {"Form (required)": "bad\u0001id"})
    await page.get_by_role("button", name="Save").click()
    await expect(goal).to_contain_text("At least one criterion is required")
    third = page.get_by_role("region", name="Goal 3")
    await expect(third).to_contain_text("Form has characters it may not have")
    await expect(third.get_by_label("Form (required)")).to_have_attribute("aria-invalid", "true")
    assert await goals_of(api, stack, tenant, workflow) == []  # nothing reached the API


async def test_a_422_shows_each_violation_beside_its_goal(
    stack: Settings, page: Page, console_url: str
) -> None:
    tenant, workflow = new_id("r13"), new_id("wf")
    await sign_in(page, console_url, token(stack, tenant))
    await open_workflow(page, workflow)
    await add_goal(page, 1, "tag_added", {"Tag": "tag-missing"})
    await add_goal(page, 2, "form_submitted", {"Form (required)": "form-missing"})
    # The API's own rule (a currency needs a minimum): its 422 lands on that goal too.
    third = await add_goal(
        page, 3, "purchase_made", {"Currency (of the minimum)": "EUR", "Any purchase": True}
    )
    await page.get_by_role("button", name="Save").click()
    await expect(third).to_contain_text("currency applies to min_amount and needs it")
    await third.get_by_label("Currency (of the minimum)", exact=True).fill("")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved.")

    await page.get_by_role("button", name="Activate", exact=True).click()
    await expect(page.get_by_role("region", name="Goal 1")).to_contain_text(
        "tag_id 'tag-missing': no such tag in the catalog"
    )
    await expect(page.get_by_role("region", name="Goal 2")).to_contain_text(
        "form_id 'form-missing': no such form in the catalog"
    )
    await expect(page.get_by_role("region", name="Goal 3").locator(".errors")).to_be_hidden()
    await expect(page.get_by_role("status")).to_contain_text("Not activated: 2 problems")
    await expect(page.locator(".title-row .badge")).to_have_text("Inactive")
    await screenshot(page, "activation-violations")


async def test_edit_remove_and_deactivate_goals(
    stack: Settings, api: httpx.AsyncClient, page: Page, console_url: str
) -> None:
    tenant, workflow = new_id("edit"), new_id("wf")
    auth = bearer(stack, tenant)
    for criteria in ({"any_purchase": True}, {"min_amount": "10"}):
        body = {"goal_type": "purchase_made", "criteria": criteria}
        assert (await api.post(f"/workflows/{workflow}/goals", json=body, headers=auth)).status_code == 201
    await sign_in(page, console_url, token(stack, tenant))
    await page.get_by_role("link", name=workflow).click()
    first, second = page.get_by_role("region", name="Goal 1"), page.get_by_role("region", name="Goal 2")
    await expect(first.get_by_label("Any purchase")).to_be_checked()
    await expect(second.get_by_label("Minimum amount")).to_have_value("10")
    await page.get_by_role("button", name="Activate", exact=True).click()
    await expect(page.locator(".title-row .badge")).to_have_text("Active")

    await second.get_by_label("Minimum amount").fill("20")
    await second.get_by_label("Currency (of the minimum)").fill("EUR")
    await first.get_by_label("Goal active").uncheck()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved.")
    goals = (await api.get(f"/workflows/{workflow}/goals", headers=auth)).json()["goals"]
    assert [(g["criteria"], g["is_active"]) for g in goals] == [
        ({"any_purchase": True}, False),
        ({"min_amount": "20", "currency": "EUR"}, True),
    ]

    await page.get_by_role("button", name="Remove goal 1").click()
    await expect(page.get_by_role("region", name="Goal 2")).to_have_count(0)
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved.")
    goals = (await api.get(f"/workflows/{workflow}/goals", headers=auth)).json()["goals"]
    assert [g["criteria"] for g in goals] == [{"min_amount": "20", "currency": "EUR"}]

    await page.get_by_role("button", name="Deactivate").click()
    await expect(page.get_by_role("status")).to_contain_text("Deactivated")
    await expect(page.locator(".title-row .badge")).to_have_text("Inactive")
    await expect(page.get_by_role("button", name="Deactivate")).to_be_disabled()
    settings = (await api.get(f"/workflows/{workflow}/goal-settings", headers=auth)).json()
    assert settings["status"] == "inactive"


async def test_analytics_refresh_only_while_the_tab_is_visible(
    stack: Settings, api: httpx.AsyncClient, page: Page, console_url: str
) -> None:
    tenant, workflow = new_id("visible"), new_id("wf")
    body = {"goal_type": "form_submitted", "criteria": {"form_id": "f-1"}}
    assert (
        await api.post(f"/workflows/{workflow}/goals", json=body, headers=bearer(stack, tenant))
    ).is_success
    await sign_in(page, console_url, token(stack, tenant))
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/goals/stats" in r.url else None)
    await page.goto(f"{console_url}#/workflows/{workflow}/analytics")
    await expect(page.get_by_role("region", name="Total enrolled")).to_contain_text("0")
    await page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    await asyncio.sleep(0.5)  # an answer already on its way may still land
    before = len(asked)
    await asyncio.sleep(11)  # two refresh periods (5 s): an absence can only be waited for
    assert len(asked) == before, "refreshed while the tab was hidden"
    await page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    # Visible again: a refresh at once, not at the next period.
    await eventually(lambda: asyncio.sleep(0, len(asked)), lambda n: n > before, timeout=3, what="a refresh")


async def test_another_tenants_workflow_is_invisible(
    stack: Settings, api: httpx.AsyncClient, page: Page, console_url: str
) -> None:
    owner, workflow = new_id("owner"), new_id("wf-secret")
    created = await api.post(
        f"/workflows/{workflow}/goals",
        json={"goal_type": "form_submitted", "criteria": {"form_id": "form-of-the-owner"}},
        headers=bearer(stack, owner),
    )
    assert created.status_code == 201, created.text
    await sign_in(page, console_url, token(stack, new_id("other")))
    await expect(page.get_by_text("No workflows yet")).to_be_visible()
    await page.get_by_label("Search workflows").fill(workflow)
    await expect(page.get_by_text(f"No workflow matches “{workflow}”.")).to_be_visible()
    await page.goto(f"{console_url}#/workflows/{workflow}/achievements")
    await expect(page.get_by_role("alert")).to_contain_text("No such workflow")
    await page.get_by_role("link", name="Goals").click()
    await expect(page.get_by_text("No goals yet")).to_be_visible()
    await expect(page.get_by_text("form-of-the-owner")).to_have_count(0)


async def test_the_layout_holds_at_360_px_and_works_by_keyboard(
    stack: Settings, page: Page, console_url: str
) -> None:
    await page.set_viewport_size({"width": 360, "height": 780})
    await page.goto(console_url)
    await expect(page.get_by_label("API token")).to_be_focused()
    await page.keyboard.type(token(stack, new_id("narrow")))
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Workflows", level=1)).to_be_visible()
    workflow = new_id("wf-a-rather-long-workflow-name")
    await open_workflow(page, workflow)
    await page.get_by_role("button", name="Add goal").focus()
    await page.keyboard.press("Enter")
    goal_type = page.get_by_role("region", name="Goal 1").get_by_label("Goal type")
    await expect(goal_type).to_be_focused()
    await goal_type.select_option("pipeline_stage_reached")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Pipeline (required)")).to_be_focused()
    await page.keyboard.type("pl-1")
    await page.keyboard.press("Tab")
    await page.keyboard.type("st-won")
    await page.keyboard.press("Enter")  # submits the goals form: Save
    await expect(page.get_by_role("status")).to_contain_text("Saved.")
    for screen in ("", "/analytics", "/achievements"):
        await page.goto(f"{console_url}#/workflows/{workflow}{screen}")
        await expect(page.get_by_role("heading", name=workflow)).to_be_visible()
        await asyncio.sleep(0.2)  # one frame of layout after the render
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{screen or 'goals'} is {width} px wide at 360 px"
        if screen == "/analytics":
            await screenshot(page, "analytics-360")
    await page.goto(f"{console_url}#/audit")
    await expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360


async def test_the_console_is_served_with_a_policy_that_forbids_other_origins(
    stack: Settings, console_url: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(console_url)
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert '<script type="module" src="js/app.js">' in response.text


async def test_activate_then_watch_analytics_and_achievements_update_live(
    stack: Settings, api: httpx.AsyncClient, page: Page, console_url: str, sender: EventSender
) -> None:
    tenant, workflow, tag = new_id("live"), new_id("wf"), new_id("tag")
    entity = {"kind": "tag", "entity_id": tag, "name": "Purchased", "parent_id": None, "deleted": False}
    await sender.send(cloud_event("catalog.entity.changed", tenant, entity))
    await sign_in(page, console_url, token(stack, tenant))
    await open_workflow(page, workflow)
    goal = await add_goal(page, 1, "tag_added", {})
    picker = goal.get_by_label("Tag", exact=True)
    await picker.fill("purch")  # the picker searches the catalog by name
    option = goal.locator(f"datalist option[value='{tag}']")
    await expect(option).to_have_attribute("label", f"Purchased ({tag})", timeout=60_000)
    await picker.fill(tag)
    await expect(goal.get_by_text("Purchased", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Activate", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("Activated")
    await expect(page.locator(".title-row .badge")).to_have_text("Active")
    await expect(page.get_by_text("The engine has the latest change.")).to_be_visible()

    await page.get_by_role("link", name="Analytics").click()
    await expect(page.get_by_role("region", name="Total enrolled")).to_contain_text("0")
    await page.evaluate("window.notReloaded = true")
    enrolled = {"workflow_id": workflow, "enrollment_id": "en-1"}
    await sender.send(cloud_event("workflow.enrollment.started", tenant, enrolled, "c-1"))
    await expect(page.get_by_role("region", name="Total enrolled")).to_contain_text("1")

    await page.get_by_role("link", name="Achievements").click()
    await expect(page.get_by_text("No achievements yet.")).to_be_visible()
    await sender.send(
        cloud_event("contact.tag.added", tenant, {"tag_id": tag, "tag_name": "Purchased"}, "c-1")
    )
    log = page.get_by_role("table", name="Achievements")
    await expect(log).to_contain_text("contact.tag.added")
    await expect(log).to_contain_text("c-1")
    await expect(log).to_contain_text(tag)
    await page.get_by_label("Enrollment id").fill("en-1")
    await page.get_by_role("button", name="Look up").click()
    await expect(page.get_by_label("Enrollment en-1")).to_contain_text("completed_goal")
    await screenshot(page, "achievements")

    await page.get_by_role("link", name="Analytics").click()
    await expect(page.get_by_role("region", name="Goals achieved")).to_contain_text("1")
    await expect(page.get_by_role("region", name="Conversion rate")).to_contain_text("100.0 %")
    timing = page.get_by_role("table", name="Time to goal")
    await expect(timing).to_contain_text("Contact receives a specific tag")
    await page.get_by_label("Window", exact=True).select_option("7d")
    await expect(page.get_by_label("Bucket", exact=True)).to_have_value("day")
    await expect(page.get_by_role("img", name="Enrolled and achieved per day")).to_be_visible()
    await expect(page.locator("figcaption")).to_contain_text("1 enrolled, 1 achieved in the window")
    await page.get_by_label("Window", exact=True).select_option("custom")
    await expect(page.get_by_label("From", exact=True)).to_be_visible()
    await page.get_by_label("Bucket", exact=True).select_option("hour")
    await page.get_by_label("Window", exact=True).select_option("24h")
    # The chart is the last choice's, however the answers of the earlier ones arrive.
    await expect(page.get_by_role("img", name="Enrolled and achieved per hour")).to_be_visible()
    await expect(page.locator("figcaption")).to_contain_text("1 enrolled, 1 achieved in the window")
    await screenshot(page, "analytics")
    assert await page.evaluate("window.notReloaded") is True

    for other in ("wf-onboarding", "wf-win-back"):
        goal = {"goal_type": "form_submitted", "criteria": {"form_id": f"form-{other}"}}
        assert (
            await api.post(f"/workflows/{other}/goals", json=goal, headers=bearer(stack, tenant))
        ).is_success
    await page.get_by_role("link", name="Workflows").first.click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=workflow))
    await expect(row).to_contain_text("Active")
    await expect(row).to_contain_text("100.0 %")
    table = page.get_by_role("table", name="Workflows")
    await expect(table.locator("tbody tr").first).to_contain_text(workflow)  # best converting first
    await page.get_by_role("button", name="Workflow").click()
    await expect(page.locator("th[aria-sort='ascending']")).to_contain_text("Workflow")
    ids = sorted([workflow, "wf-onboarding", "wf-win-back"])
    await expect(table.locator("tbody th[scope='row']")).to_have_text(ids)
    await screenshot(page, "workflows")
    await page.get_by_label("Search workflows").fill("win")
    await expect(table.locator("tbody tr")).to_have_count(1)
    await expect(table).to_contain_text("wf-win-back")
    await page.get_by_role("link", name="Audit trail").click()
    audit = page.get_by_role("table", name="Audit trail")
    await expect(audit).to_contain_text("workflow.activated")
    await expect(audit).to_contain_text("goal.created")
    await expect(audit).to_contain_text("alice")
    await screenshot(page, "audit")
