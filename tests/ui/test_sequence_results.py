"""A sequence's results on its page in real Chromium: each step's versions with what their
sends led to, in numbers for people, and the verdict in words; no winner is named on a few
dozen sends; owner-written names and texts show as text.

The org and its sequence are made through the JSON API; the step messages the sequence sent
(and the replies they drew) are written straight into the live server's database, as the
pipeline's tests write their leads: the page is about sends that would take days.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Locator, Page, expect
from sqlalchemy.engine import Engine

from models.database import session_scope
from models.schemas import SequenceIn
from models.services.sequences import step_experiment
from models.store import lead_groups
from models.tables import Contact, Lead, Message, Thread
from models.values import Direction, MessageStatus, Sender, Stage, new_id
from tests.conftest import create_org
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_inbox import Shop, signed_in

SEQUENCE = "trial"
#: Written by the owner, shown by the page as text.
SCRIPTED = "<script>window.pwned = 1</script> {first_name}, 10 % off this week"
TRIAL = {
    "applies_to": ["browsing"],
    "max_attempts": 2,
    "steps": [
        {"after": "PT1H", "channel": "sms", "template": "Hi {first_name}, thanks for asking!"},
        {
            "after": "P1D",
            "channel": "sms",
            "variants": [
                {"name": "a", "template": "Hi {first_name}, still interested?"},
                {"name": "b", "template": SCRIPTED},
            ],
        },
    ],
}
SENT_AT = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
#: The version of step 2's experiment the sends were claimed under.
EXPERIMENT = step_experiment(SequenceIn.model_validate(TRIAL).steps[1])


@dataclass(frozen=True)
class Sends:
    """``sent`` leads got ``variant`` of ``step``; the first ``replied`` wrote back after it,
    the first ``converted`` are customers now."""

    step: int
    variant: str | None
    sent: int
    replied: int
    converted: int = 0


def write_sends(engine: Engine, org_id: str, plan: list[Sends]) -> None:
    """For each lead of ``plan``: its contact, thread and lead, the step's message and the
    reply, as rows of ``org_id``."""
    with session_scope(engine) as session:
        rows: list[tuple[Sends, int, Contact]] = []
        for sends in plan:
            for k in range(sends.sent):
                contact = Contact(id=new_id("ct"), org_id=org_id, created_at=SENT_AT)
                session.add(contact)
                rows.append((sends, k, contact))
        session.flush()
        leads: list[tuple[Sends, int, Lead, Thread]] = []
        for sends, k, contact in rows:
            thread = Thread(id=new_id("th"), org_id=org_id, contact_id=contact.id)
            lead = Lead(
                id=new_id("lead"),
                org_id=org_id,
                contact_id=contact.id,
                workflow_id=f"lead-{contact.id}",
                stage=Stage.CONVERTED if k < sends.converted else Stage.CONTACTED,
                created_at=SENT_AT,
                updated_at=SENT_AT,
            )
            session.add_all([thread, lead])
            leads.append((sends, k, lead, thread))
        session.flush()
        for sends, k, lead, thread in leads:
            sent_at = SENT_AT + timedelta(days=sends.step)
            session.add(
                Message(
                    id=new_id("msg"),
                    org_id=org_id,
                    lead_id=lead.id,
                    thread_id=thread.id,
                    channel="sms",
                    direction=Direction.OUTBOUND,
                    sender=Sender.AI,
                    body="A step's text",
                    status=MessageStatus.SENT,
                    idempotency_key=f"{lead.workflow_id}/{sends.step}",
                    created_at=sent_at,
                    sent_at=sent_at,
                    sequence=SEQUENCE,
                    step=sends.step,
                    variant=sends.variant,
                    experiment=EXPERIMENT if sends.variant else None,
                    mode="dry_run",  # the org's mode: the figures are of the mode it is in
                )
            )
            if k < sends.replied:
                session.add(
                    Message(
                        id=new_id("msg"),
                        org_id=org_id,
                        lead_id=lead.id,
                        thread_id=thread.id,
                        channel="sms",
                        direction=Direction.INBOUND,
                        sender=Sender.CUSTOMER,
                        body="Yes please",
                        status=MessageStatus.RECEIVED,
                        created_at=sent_at + timedelta(hours=1),
                    )
                )
        # Written around the app: the pipeline's running counts derived from the leads.
        session.flush()
        lead_groups.rebuild(session, org_id=org_id)


async def on_the_results(
    new_page: NewPage, live_server: str, engine: Engine, plan: list[Sends]
) -> Page:
    """The owner of a new org whose sequence ``TRIAL`` sent ``plan``, on its page."""
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        org_id, headers = await create_org(api, name="Shine")
        saved = await api.put(f"/v1/sequences/{SEQUENCE}", json=TRIAL, headers=headers)
        assert saved.status_code == 200, saved.text
    await asyncio.to_thread(write_sends, engine, org_id, plan)
    owner = await signed_in(
        new_page, Shop(live_server, org_id, headers, "", "", ""), "Olivia", role="owner"
    )
    await owner.goto(f"/app/settings/sequences/{SEQUENCE}#results")
    return owner


async def cells(table: Locator) -> list[list[str]]:
    """The text of each body row's cells, the version first."""
    texts: list[list[str]] = await table.evaluate(
        "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    return texts


async def test_the_better_version_is_named_with_the_figures_it_rests_on(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    owner = await on_the_results(
        new_page,
        live_server,
        pg_engine,
        [
            Sends(1, None, 300, 60, converted=12),
            Sends(2, "a", 150, 15, converted=3),
            Sends(2, "b", 150, 45, converted=1),
            # A version since removed from the step, named by hand in the database.
            Sends(2, "<script>alert(1)", 3, 0),
        ],
    )
    results = owner.locator("#results")
    await expect(results.get_by_role("heading", level=3)).to_have_text("Results · All sends so far")

    step_2 = results.get_by_role("table", name="Step 2 · SMS · testing 2 versions")
    await expect(step_2).to_be_visible()
    assert await cells(step_2) == [
        ["a", "150", "15", "10.0 %", "0", "3", "< 0.1 %"],
        ["b", "150", "45", "30.0 %", "0", "1", "> 99.9 %"],
        ["<script>alert(1) (earlier text)", "3", "0", "0.0 %", "0", "0", "—"],
    ]
    await expect(results.locator("#result-2-verdict")).to_have_text(
        "Verdict: Version b is better: 30.0 % replied vs 10.0 % for a, over 99.9 % likely "
        "best (150 and 150 sends)."
    )

    step_1 = results.get_by_role("table", name="Step 1 · SMS")
    assert await cells(step_1) == [["The one version", "300", "60", "20.0 %", "0", "12", "—"]]
    verdict_1 = results.locator("#result-1-verdict")
    await expect(verdict_1).to_have_text("No experiment: one version only.")
    await expect(verdict_1).to_have_class("seq-verdict muted")

    # The owner's texts are text: in the editor, its preview and the results alike.
    await expect(owner.get_by_label("Step 2 version b text")).to_have_value(SCRIPTED)
    await expect(owner.locator("#preview-1-1")).to_contain_text(
        "<script>window.pwned = 1</script> Ada, 10 % off this week"
    )
    assert await owner.evaluate("() => window.pwned") is None
    assert await owner.locator("#results script").count() == 0
    assert await axe_violations(owner) == []
    if os.environ.get("KEEPWARM_SCREENSHOT"):
        await owner.screenshot(path=os.environ["KEEPWARM_SCREENSHOT"], full_page=True)


async def test_a_few_dozen_sends_name_no_winner(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    owner = await on_the_results(
        new_page, live_server, pg_engine, [Sends(2, "a", 20, 2), Sends(2, "b", 20, 9)]
    )
    results = owner.locator("#results")
    await expect(results.locator("#result-2-verdict")).to_have_text(
        "Verdict: Not enough data yet: 20 and 20 sends; each variant needs 100 before a verdict."
    )
    step_2 = results.get_by_role("table", name="Step 2 · SMS · testing 2 versions")
    rows = await cells(step_2)
    assert [row[:4] for row in rows] == [["a", "20", "2", "10.0 %"], ["b", "20", "9", "45.0 %"]]
    # Nothing sent by step 1 yet: its rates are a dash, not 0 %.
    step_1 = results.get_by_role("table", name="Step 1 · SMS")
    assert await cells(step_1) == [["The one version", "0", "0", "—", "0", "0", "—"]]
