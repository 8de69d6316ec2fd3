"""The Alerts page and the Command Center's health strip in real Chromium: what is wrong, who
was told and what became of it; acknowledging an alert through its running workflow;
silences added and lifted; alert settings the owner changes (validated as the API validates)
and an operator only reads; provider text quoting HTML shows as text.

Alert rows and health samples are written through the services into the live server's
database; the acknowledging test runs a real ``Alert`` workflow on the session's worker.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from jinja2_fragments import render_block
from playwright.async_api import expect
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.ui.alerts import SEVERITY, check_label, health_strip
from api.ui.render import templates
from models.database import transaction
from models.payloads import AlertEpisode
from models.rules.alerts import ack_code, alert_workflow_id
from models.rules.health import Verdict
from models.schemas.health import HealthCheckOut
from models.services.alerts import record_alert
from models.services.health import store_samples
from models.tables import utcnow
from models.values import AlertState, HealthStatus
from tests.conftest import create_org, eventually
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_inbox import Shop, signed_in
from workflows.alert import AlertInput, AlertWorkflow, Observation
from workflows.task_queues import LEADS

HOSTILE = "<script>window.pwned = 1</script>Twilio said <b>account suspended</b>"


async def org(live_server: str) -> Shop:
    """A new org (no leads): its API key headers, as ``Shop`` for ``signed_in``."""
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        org_id, headers = await create_org(api, name="Shine")
    return Shop(live_server, org_id, headers, "", "", "")


async def alert_row(
    engine: Engine,
    org_id: str,
    *,
    summary: str,
    severity: HealthStatus = HealthStatus.CRITICAL,
    state: AlertState = AlertState.FIRING,
    rule: str = "provider",
    subject: str = "twilio",
    fired_ago: timedelta = timedelta(minutes=10),
    lasted: timedelta | None = None,
) -> str:
    """An alert row as its workflow writes it (no workflow behind it): its id."""
    alert_id = f"alrt_{uuid.uuid4().hex}"
    fired = utcnow() - fired_ago
    episode = AlertEpisode(
        org_id=org_id,
        alert_id=alert_id,
        workflow_id=alert_workflow_id(org_id, rule, subject),
        rule=rule,
        subject=subject,
        severity=severity,
        state=state,
        summary=summary,
        detail="Twilio answered 401 to an account fetch, twice in a row.",
        code=ack_code(alert_id),
        opened_at=fired - timedelta(minutes=5),
        fired_at=fired,
        resolved_at=fired + lasted if lasted else None,
    )
    await asyncio.to_thread(transaction, engine, record_alert, episode=episode)
    return alert_id


async def sample(engine: Engine, org_id: str, status: HealthStatus, summary: str) -> None:
    """The org's speed-to-lead check said ``status`` just now."""
    verdict = Verdict(
        check="speed_to_lead", subject="leads", status=status, summary=summary, detail=""
    )
    await asyncio.to_thread(
        transaction, engine, store_samples, org_id=org_id, verdicts=[verdict], now=utcnow()
    )


@pytest.fixture
async def alert_workflows(stack_client: Client) -> AsyncIterator[list[str]]:
    """Ids of ``Alert`` workflows a test starts; ended afterwards (no ladder climbs on)."""
    started: list[str] = []
    yield started
    for workflow_id in started:
        await stack_client.get_workflow_handle(workflow_id).terminate("test over")


async def test_open_and_resolved_alerts_show_what_is_wrong_and_provider_text_stays_text(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    shop = await org(live_server)
    await alert_row(pg_engine, shop.org_id, summary=HOSTILE)
    await alert_row(
        pg_engine,
        shop.org_id,
        summary="Emails bounce more than Resend allows",
        severity=HealthStatus.WARNING,
        state=AlertState.RESOLVED,
        rule="deliverability",
        subject="email",
        fired_ago=timedelta(hours=2),
        lasted=timedelta(minutes=25),
    )
    await sample(
        pg_engine, shop.org_id, HealthStatus.CRITICAL, "Speed to lead p90 is 14 min (target 5 min)"
    )
    page = await signed_in(new_page, shop, "Olivia", role="owner")

    await page.goto("/app/alerts")
    row = page.locator("#alerts tr").filter(has_text="Twilio said")
    await expect(row.locator(".summary")).to_have_text(HOSTILE)
    await expect(row).to_contain_text("Critical")
    await expect(row).to_contain_text("Nobody has it yet")
    await expect(row).to_contain_text("for 10 min")
    await expect(row.get_by_role("button", name=re.compile("^Acknowledge"))).to_be_visible()
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main script, main b").count() == 0
    resolved = page.locator("tr").filter(has_text="Emails bounce more than Resend allows")
    await expect(resolved).to_contain_text("Warning")
    await expect(resolved).to_contain_text("25 min")
    await expect(page.locator("#nav-alerts")).to_have_text("1 open")
    await expect(page.get_by_role("link", name=re.compile("^Alerts"))).to_have_attribute(
        "aria-current", "page"
    )
    assert await axe_violations(page) == []

    await page.goto("/app")
    strip = page.locator("#health")
    line = strip.locator("li").filter(has_text="Speed to lead")
    await expect(line).to_contain_text("Critical")
    await expect(line.get_by_role("link")).to_have_text(
        "Speed to lead p90 is 14 min (target 5 min)"
    )
    await expect(line.get_by_role("link")).to_have_attribute("href", "/app/alerts")
    # The worst first.
    assert (await strip.locator("li .tag").first.text_content()) == "Critical"
    await expect(page.locator("#nav-alerts")).to_have_text("1 open")  # after the first sync
    assert await axe_violations(page) == []


async def test_an_alert_that_opens_shows_at_once_on_an_open_page(
    new_page: NewPage, live_server: str, pg_engine: Engine
) -> None:
    """Alerts and verdicts are live (UI.md): the list, the nav badge and the health strip
    change within the page's wait, well before their 60 s poll."""
    shop = await org(live_server)
    page = await signed_in(new_page, shop, "Olivia", role="owner")
    await page.goto("/app/alerts")
    await expect(page.locator("#nav-alerts")).to_have_text("")

    await alert_row(pg_engine, shop.org_id, summary="Twilio rejected keepwarm's credentials")

    await expect(page.locator("#alerts")).to_contain_text("Twilio rejected keepwarm's credentials")
    await expect(page.locator("#nav-alerts")).to_have_text("1 open")
    await page.goto("/app")
    await expect(page.locator("#health")).not_to_contain_text("Speed to lead")
    await sample(pg_engine, shop.org_id, HealthStatus.WARNING, "Speed to lead p90 is 7 min")
    await expect(page.locator("#health li").filter(has_text="Speed to lead")).to_contain_text(
        "Speed to lead p90 is 7 min"
    )


async def test_acknowledging_from_the_page_tells_the_running_alert(
    new_page: NewPage,
    live_server: str,
    pg_engine: Engine,
    stack_client: Client,
    alert_workflows: list[str],
) -> None:
    shop = await org(live_server)
    page = await signed_in(new_page, shop, "Olivia", role="owner")
    workflow_id = alert_workflow_id(shop.org_id, "provider", "twilio")
    alert_workflows.append(workflow_id)
    handle = await stack_client.start_workflow(
        AlertWorkflow.run,
        AlertInput(org_id=shop.org_id, rule="provider", subject="twilio"),
        id=workflow_id,
        task_queue=LEADS,
    )
    for _ in range(2):  # two bad evaluations in a row: it fires and tells the owner
        await handle.execute_update(
            AlertWorkflow.observe,
            Observation(
                status=HealthStatus.CRITICAL,
                summary="Twilio rejected keepwarm's credentials",
                detail="401 from the account fetch. Check the Twilio auth token.",
                at=utcnow(),
            ),
        )

    async def told() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
            listed = await api.get("/v1/alerts?state=open", headers=shop.headers)
        items = listed.json()["items"]
        return [a for a in items if [n["status"] for n in a["notifications"]] == ["simulated"]]

    [alert] = await eventually(told, within=15)
    # Also on the page: one resolved earlier, and what the checks say.
    await alert_row(
        pg_engine,
        shop.org_id,
        summary="No status callbacks from Twilio for 40 live texts",
        severity=HealthStatus.WARNING,
        state=AlertState.RESOLVED,
        rule="webhooks",
        fired_ago=timedelta(hours=3),
        lasted=timedelta(minutes=50),
    )
    await sample(pg_engine, shop.org_id, HealthStatus.WARNING, "First replies are slow: p90 7 min")

    await page.goto("/app/alerts")
    row = page.locator("#alerts tr").filter(has_text="Twilio rejected keepwarm's credentials")
    await expect(row).to_contain_text("Nobody has it yet")
    await expect(row.locator(".notices")).to_contain_text(
        re.compile(r"Email to olivia-\w+@shine\.example · .* · dry run, not really sent")
    )
    await expect(row).to_contain_text(f"ACK {alert['code']}")
    await page.set_viewport_size({"width": 1280, "height": 1100})
    await page.screenshot(path="/tmp/alerts.png", full_page=True)

    await row.get_by_role("button", name=re.compile("^Acknowledge")).click()
    await expect(row).to_contain_text("Acknowledged by Olivia")
    await expect(page.locator("#alerts .notice")).to_contain_text("Acknowledged: Twilio rejected")
    await expect(page.locator("#announce")).to_have_text(
        "Acknowledged: Twilio rejected keepwarm's credentials"
    )
    await expect(row.get_by_role("button", name=re.compile("^Acknowledge"))).to_have_count(0)
    view = await handle.query(AlertWorkflow.state)
    assert view.state == AlertState.ACKNOWLEDGED and view.acknowledged_by == "Olivia"
    # The JSON API acknowledges through the same action: again, it changes nothing.
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        [olivia] = (await api.get("/v1/operators", headers=shop.headers)).json()["items"]
        again = await api.post(
            f"/v1/alerts/{alert['alert_id']}/acknowledge",
            json={"operator_id": olivia["id"]},
            headers=shop.headers,
        )
    assert again.status_code == 200, again.text
    assert (again.json()["state"], again.json()["acknowledged_by"]) == ("acknowledged", "Olivia")

    await page.goto("/app")
    await expect(page.locator("#health li").filter(has_text="Speed to lead")).to_contain_text(
        "First replies are slow"
    )
    await page.screenshot(path="/tmp/command.png", full_page=True)


async def test_a_silence_is_added_and_lifted(new_page: NewPage, live_server: str) -> None:
    shop = await org(live_server)
    page = await signed_in(new_page, shop, "Ann")
    await page.goto("/app/alerts")
    await expect(page.get_by_text("No silences: every alert notifies.")).to_be_visible()
    await page.get_by_text("Silence alerts…").click()
    await page.get_by_label("Which alerts").select_option(label="Provider: every subject")
    until = page.get_by_label("Until (UTC)")
    await until.fill((datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Silence", exact=True).click()
    await expect(page.locator("#until-error")).to_have_text("Until must be in the future")
    await expect(page.get_by_label("Which alerts")).to_have_value("provider")

    await until.fill((datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Why (optional)").fill("Twilio <maintenance> tonight")
    await page.get_by_role("button", name="Silence", exact=True).click()
    await expect(page.locator(".notice")).to_contain_text("Silenced until")
    row = page.locator("tr").filter(has_text="Twilio <maintenance> tonight")
    await expect(row).to_contain_text("Provider: every subject")
    await expect(row).to_contain_text("Ann")
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        [listed] = (await api.get("/v1/silences", headers=shop.headers)).json()["items"]
        # The JSON API refuses a silence over already, as the page does.
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        refused = await api.post("/v1/silences", json={"until": past}, headers=shop.headers)
    assert (listed["rule"], listed["subject"], listed["created_by"]) == ("provider", None, "Ann")
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "until"
    assert await axe_violations(page) == []

    await row.get_by_role("button", name=re.compile("^Lift")).click()
    await expect(page.locator(".notice")).to_contain_text("Silence lifted")
    await expect(page.get_by_text("No silences: every alert notifies.")).to_be_visible()
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        assert (await api.get("/v1/silences", headers=shop.headers)).json()["items"] == []
    # Another org's (or no) silence or alert: 404, nothing changed.
    htmx = {"HX-Request": "true", "Origin": live_server}
    for path in (
        "/app/alerts/silences/sil_elsewhere/lift",
        "/app/alerts/alrt_elsewhere/acknowledge",
    ):
        assert (await page.request.post(path, headers=htmx)).status == 404, path


async def test_only_the_owner_changes_alert_settings_validated_as_the_api_does(
    new_page: NewPage, live_server: str
) -> None:
    shop = await org(live_server)
    owner = await signed_in(new_page, shop, "Olivia", role="owner")
    ben = await signed_in(new_page, shop, "Ben")

    await ben.goto("/app/alerts")
    await expect(ben.get_by_text("Only the owner can change these.")).to_be_visible()
    await expect(ben.get_by_role("button", name="Save alert settings")).to_have_count(0)
    await expect(ben.locator(".settings-readonly")).to_contain_text("The owner's email")
    refused = await ben.request.post(
        "/app/alerts/settings",
        form={"email": "ben@shine-cleaning.com", "sms_per_month": "40"},
        headers={"HX-Request": "true", "Origin": live_server},
    )
    assert refused.status == 403

    await owner.goto("/app/alerts")
    emails = owner.get_by_label("Alert emails")
    await emails.fill("ops@shine-cleaning.com\nnot-an-email")
    await owner.get_by_label("Speed-to-lead target (minutes)").fill("0")
    await owner.get_by_role("button", name="Save alert settings").click()
    await expect(owner.locator("#email-error")).to_contain_text(
        "“not-an-email”: value is not a valid email address"
    )
    await expect(owner.locator("#speed-error")).to_have_text("must be more than 0 minutes")
    await expect(emails).to_have_attribute("aria-invalid", "true")
    await expect(emails).to_have_value("ops@shine-cleaning.com\nnot-an-email")
    await expect(owner.get_by_role("alert")).to_contain_text("Nothing was saved")
    assert await axe_violations(owner) == []

    await emails.fill("ops@shine-cleaning.com\nbackup@shine-cleaning.com")
    await owner.get_by_label("Alert SMS numbers").fill("+447911123456")
    await owner.get_by_label("Alert texts per month").fill("10")
    await owner.get_by_label("Speed-to-lead target (minutes)").fill("3")
    await owner.get_by_label("Heartbeat URL").fill("https://hc-ping.com/abc123")
    await owner.get_by_role("button", name="Save alert settings").click()
    await expect(owner.locator(".notice")).to_have_text("Alert settings saved.")
    await expect(emails).to_have_value("ops@shine-cleaning.com\nbackup@shine-cleaning.com")
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        saved = (await api.get("/v1/orgs/me", headers=shop.headers)).json()["alerts"]
    assert saved == {
        "email": ["ops@shine-cleaning.com", "backup@shine-cleaning.com"],
        "sms": ["+447911123456"],
        "sms_per_month": 10,
        "speed_to_lead_target": "PT3M",
        "heartbeat_url": "https://hc-ping.com/abc123",
    }

    await ben.reload()
    readonly = ben.locator(".settings-readonly")
    await expect(readonly).to_contain_text("ops@shine-cleaning.com, backup@shine-cleaning.com")
    await expect(readonly).to_contain_text("3 min")


def _strip(checks: list[HealthCheckOut]) -> str:
    return render_block(
        templates.env,
        "command.html",
        "command_health",
        health=health_strip(checks),
        severity=SEVERITY,
        check_label=check_label,
    )


def _check(check: str, status: HealthStatus, summary: str, at: datetime) -> HealthCheckOut:
    subject = "keepwarm-health" if check == "checks_running" else "twilio"
    return HealthCheckOut(
        check=check, subject=subject, status=status, summary=summary, detail="", checked_at=at
    )


def test_the_strip_says_when_the_checks_are_not_running_or_all_is_well() -> None:
    now = datetime.now(UTC)
    last = now - timedelta(minutes=3)
    running = _check("checks_running", HealthStatus.OK, "The checks last ran 3 min ago", now)
    twilio = _check("provider", HealthStatus.OK, "Twilio answers", last)
    iso = last.isoformat().replace("+00:00", "Z")
    assert f'All checks OK · last run <time datetime="{iso}"' in _strip([running, twilio])

    stopped = _check(
        "checks_running",
        HealthStatus.CRITICAL,
        "keepwarm's health checks haven't run for 25 min",
        now,
    )
    html = _strip([stopped, twilio])
    assert "Checks not running</strong>" in html
    assert "keepwarm&#39;s health checks haven&#39;t run for 25 min</a>" in html
    assert "All checks OK" not in html and "Twilio answers" not in html
