"""The Command Center in real Chromium: the org's AI agents with what each is doing now, the
count of conversations moving live as a lead arrives, the last 7 days' headline figures, the
accessibility scan, no page without a session, and only the operator's own org."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Locator, Page, expect

from api.ui.command import agent_card, unit_cost
from models.schemas import AgentKind, AgentStatus, AgentSummary, Quantiles
from tests.api.test_identity import unique_phone
from tests.conftest import eventually
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_alerts import org
from tests.ui.test_inbox import LIVE_MS, Shop, shop, signed_in

#: A new lead's first text goes through its workflow (a worker, the dry-run provider): the
#: count on the page is waited for this long after the lead is sent, the page itself
#: within ``LIVE_MS`` of the text being recorded.
FIRST_TOUCH_S = 20


def texting_agent(page: Page) -> Locator:
    return page.locator("#agents article").filter(
        has=page.get_by_role("heading", name="Texting & email AI")
    )


async def new_lead(customer: Shop, name: str) -> str:
    """A lead through the JSON API with SMS consent; its id once its first text is recorded."""
    async with httpx.AsyncClient(base_url=customer.base, timeout=10) as api:
        lead = await api.post(
            "/v1/leads",
            json={"name": name, "phone": unique_phone(), "consent": {"sms": True}},
            headers=customer.headers,
        )
        assert lead.status_code == 202, lead.text
        lead_id: str = lead.json()["lead_id"]

        async def first_touch() -> bool:
            listed = await api.get(
                "/v1/messages", params={"lead_id": lead_id}, headers=customer.headers
            )
            return any(m["status"] == "simulated" for m in listed.json()["items"])

        await eventually(first_touch, within=FIRST_TOUCH_S, every=0.1)
    return lead_id


async def test_the_texting_agents_conversations_move_live_when_a_lead_arrives(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    page = await signed_in(new_page, customer, "Ann")
    await page.goto("/app")
    await expect(page.locator("#live-status")).to_have_text("Live")
    agent = texting_agent(page)
    await expect(agent.locator(".agent-context")).to_have_text(
        re.compile(r"^Handling 1 conversation\b")
    )
    await expect(agent.locator(".agent-status")).to_have_text("Active")
    leads = page.locator("#metrics article").filter(
        has=page.get_by_role("heading", name="Leads", exact=True)
    )
    await expect(leads.locator(".big")).to_have_text("1")
    await expect(leads.locator(".change")).to_have_text("▲ Up 1 from 0")
    # Marks this document: a reload would lose it.
    await page.evaluate("window.kwSameDocument = true")

    await new_lead(customer, "Ada Lovelace")

    await expect(agent.locator(".agent-context")).to_have_text(
        re.compile(r"^Handling 2 conversations\b"), timeout=LIVE_MS
    )
    # The headline figures follow a moment later (they wait for leads to settle).
    await expect(leads.locator(".big")).to_have_text("2", timeout=LIVE_MS + 3_000)
    assert await page.evaluate("window.kwSameDocument === true")
    assert await axe_violations(page) == []


async def test_another_orgs_operator_sees_their_own_agents_only(
    new_page: NewPage, live_server: str
) -> None:
    busy = await shop(live_server)
    await new_lead(busy, "Ada Lovelace")
    quiet = await org(live_server)
    page = await signed_in(new_page, quiet, "Otto")
    await page.goto("/app")

    agent = texting_agent(page)
    await expect(agent.locator(".agent-context")).to_have_text("Handling 0 conversations")
    await expect(agent.locator(".agent-status")).to_have_text("Idle")
    await expect(page.get_by_text("No leads in the last 7 days yet.")).to_be_visible()
    # The fragments answer for the session's org too.
    fragment = await page.request.get("/app/agents", headers={"HX-Request": "true"})
    assert "Handling 0 conversations" in await fragment.text()
    assert await axe_violations(page) == []


async def test_no_command_center_without_a_session(page: Page) -> None:
    for path in ("/app", "/app/agents", "/app/metrics"):
        await page.goto(path)
        await expect(page).to_have_url(re.compile(r"/app/login\?next="))


def test_an_agent_reads_in_words() -> None:
    voice = AgentSummary(
        agent="Voice AI",
        kind=AgentKind.VOICE,
        assistant_id="asst_1",
        status=AgentStatus.ERROR,
        context="error (Vapi rejected credentials) · 2 calls in retry, next in 4 min",
        active_conversations=0,
        success_rate=0.5,
        response_time_s=Quantiles(p50=200, p90=7500),
        reply_time_s=Quantiles(p50=None, p90=None),
        interactions=4,
        cost_per_interaction=0.1234,
        currency="USD",
        satisfaction=None,
        satisfaction_sample=0,
        takeover_rate=0.25,
        last_error=None,
    )
    card = agent_card(voice)
    assert card.status_word == "Error" and card.kind == "Phone calls"
    assert card.context.startswith("Error (Vapi rejected credentials) · 2 calls in retry")
    assert dict(card.figures) == {
        "Success rate (ended calls that were answered)": "50%",
        "Response time, lead to first touch": "3 min 20 s median · 2 h 5 min p90",
        "Cost per interaction": "$0.1234",
        "Satisfaction": "Not measured",
        "Taken over by a person": "25%",
    }
    assert unit_cost(0.0079, "usd") == "$0.0079"
    assert unit_cost(2.5, "EUR") == "2.50 EUR"
