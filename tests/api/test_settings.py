"""The owner's Settings pages and the settings audit list over HTTP, on SQLite and PostgreSQL:
every change, from a page or with the org's API key, is validated as ``PATCH /v1/orgs/me``
validates it and lands in the audit list with the change; an invalid one saves and records
nothing; an operator gets 403 everywhere; live needs a live deployment.

(What the owner sees in Chromium is tests/ui/test_settings.py.)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from html import unescape

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.main import create_app
from models.database import make_engine, session_scope, transaction
from models.rules.orgs import org_settings
from models.services.settings import change_settings
from models.tables import Org, SettingsChange, utcnow
from models.values import ProviderMode, new_id
from tests.api.test_sign_in import accept, invite
from tests.conftest import ADMIN_TOKEN, create_org, make_settings

ORIGIN = "http://keepwarm.test"
SETTINGS_PAGES = (
    "/app/settings",
    "/app/settings/quiet-hours",
    "/app/settings/provider-mode",
    "/app/settings/changes",
)
SETTINGS_FORMS = ("/app/settings", "/app/settings/quiet-hours", "/app/settings/provider-mode")


@dataclass
class Stack:
    """The real app on one database (no Temporal: settings never need it)."""

    api: httpx.AsyncClient
    engine: Engine
    browser: Callable[[], httpx.AsyncClient]


@asynccontextmanager
async def stack_on(url: str, mode: ProviderMode = ProviderMode.DRY_RUN) -> AsyncIterator[Stack]:
    settings = make_settings(
        database_url=url, temporal_address="127.0.0.1:1", provider_mode=mode.value
    )
    app = create_app(settings)
    engine = make_engine(url, pool_size=1)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)

        def browser() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=transport,
                base_url=ORIGIN,
                headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"},
            )

        async with browser() as api:
            yield Stack(api=api, engine=engine, browser=browser)
    engine.dispose()


@pytest.fixture
async def stack(any_db_url: str) -> AsyncIterator[Stack]:
    async with stack_on(any_db_url) as found:
        yield found


def entries(engine: Engine, org_id: str) -> list[SettingsChange]:
    with session_scope(engine) as session:
        return list(
            session.exec(
                select(SettingsChange)
                .where(SettingsChange.org_id == org_id)
                .order_by(SettingsChange.changed_at)  # type: ignore[arg-type]
            )
        )


async def person(stack: Stack, headers: dict[str, str], name: str, role: str) -> httpx.AsyncClient:
    """A browser in which ``name`` accepted their invite."""
    client = stack.browser()
    _, path = await invite(stack.api, headers, f"{name.lower()}@shine.example", role)
    assert (await accept(client, path)).status_code == 303
    return client


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def general_form(page: httpx.Response) -> dict[str, str]:
    """Every field of the General form as the page filled it in."""
    html = page.text
    form = {
        unescape(name): unescape(value)
        for name, value in re.findall(r'<input[^>]* name="([^"]+)"[^>]* value="([^"]*)"', html)
    }
    for name, body in re.findall(r'<textarea[^>]* name="([^"]+)"[^>]*>([^<]*)</textarea>', html):
        form[unescape(name)] = unescape(body)
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected>', options)
        assert chosen, name
        form[unescape(name)] = chosen.group(1)
    return form


# --- PATCH /v1/orgs/me ---------------------------------------------------------------------


async def test_a_change_with_the_api_key_is_in_the_audit_list(stack: Stack) -> None:
    org_id, headers = await create_org(stack.api, quiet_hours={})

    response = await stack.api.patch(
        "/v1/orgs/me", json={"quiet_hours": {"sms": ["09:00", "20:00"]}}, headers=headers
    )

    assert response.status_code == 200, response.text
    (entry,) = entries(stack.engine, org_id)
    assert entry.actor == "API key"
    assert entry.operator_id is None
    assert entry.section == "quiet_hours"
    assert entry.summary == "Quiet hours SMS: 08:00\N{EN DASH}21:00 → 09:00\N{EN DASH}20:00"


async def test_a_change_of_several_settings_is_one_entry_naming_each(stack: Stack) -> None:
    org_id, headers = await create_org(stack.api)

    response = await stack.api.patch(
        "/v1/orgs/me",
        json={"timezone": "Europe/Paris", "sla": {"urgent": "PT10M"}, "vip_value": None},
        headers=headers,
    )

    assert response.status_code == 200, response.text
    (entry,) = entries(stack.engine, org_id)
    assert entry.section == "general"
    assert entry.summary == (
        "Timezone: Europe/London → Europe/Paris; SLA urgent: 5 min → 10 min; "
        "VIP value: 1000 → no VIP rule"
    )


async def test_a_change_that_changes_nothing_records_nothing(stack: Stack) -> None:
    org_id, headers = await create_org(stack.api)

    same = await stack.api.patch(
        "/v1/orgs/me",
        json={"timezone": "Europe/London", "inactivity_threshold": "PT48H"},
        headers=headers,
    )

    assert same.status_code == 200, same.text
    assert entries(stack.engine, org_id) == []


async def test_an_invalid_change_saves_and_records_nothing(stack: Stack) -> None:
    org_id, headers = await create_org(stack.api)
    before = (await stack.api.get("/v1/orgs/me", headers=headers)).json()

    refused = [
        await stack.api.patch("/v1/orgs/me", json=body, headers=headers)
        for body in (
            {"timezone": "Mars/Olympus", "help_reply": "Call us"},
            {"timezone": None, "help_reply": "Call us"},  # valid patch, invalid settings
            {"provider_mode": "live"},  # a dry-run deployment
        )
    ]

    assert [response.status_code for response in refused] == [422, 422, 422]
    assert (await stack.api.get("/v1/orgs/me", headers=headers)).json() == before
    assert entries(stack.engine, org_id) == []


def test_the_change_and_its_entry_share_one_transaction(any_db_url: str) -> None:
    engine = make_engine(any_db_url, pool_size=1)

    class Undone(Exception):
        pass

    org_id = new_id("org")
    with session_scope(engine) as session:
        org = Org(
            id=org_id,
            name="Shine",
            api_key_hash="h",
            api_key_prefix="kw_",
            id_secret="s",
            settings={},
        )
        session.add(org)

    def change_then_fail(session: object, **kwargs: object) -> None:
        change_settings(session, **kwargs)  # type: ignore[arg-type]
        raise Undone

    with pytest.raises(Undone):
        transaction(
            engine,
            change_then_fail,
            org_id=org_id,
            operator_id=None,
            actor="API key",
            section="general",
            changes={"timezone": "Asia/Tokyo"},
            at=utcnow(),
        )

    with session_scope(engine) as session:
        stored = session.get(Org, org_id)
        assert stored is not None
        assert org_settings(stored).timezone == "UTC"
    assert entries(engine, org_id) == []
    changed = transaction(
        engine,
        change_settings,
        org_id=org_id,
        operator_id="op_x",
        actor="Olivia",
        section="general",
        changes={"timezone": "Asia/Tokyo", "takeover_timeout": timedelta(hours=1)},
        at=utcnow(),
    )
    assert org_settings(changed).timezone == "Asia/Tokyo"
    (entry,) = entries(engine, org_id)
    assert (entry.actor, entry.operator_id) == ("Olivia", "op_x")
    assert entry.summary == "Timezone: UTC → Asia/Tokyo; Takeover timeout: 30 min → 1 h"
    engine.dispose()


# --- the pages -----------------------------------------------------------------------------


async def test_an_operator_gets_403_on_every_settings_page_and_form(stack: Stack) -> None:
    org_id, headers = await create_org(stack.api)
    operator = await person(stack, headers, "Oscar", "operator")
    token = csrf(await operator.get("/app/team"))

    for path in SETTINGS_PAGES:
        page = await operator.get(path)
        assert page.status_code == 403, path
        assert "Only the owner" in page.text and "<h1>Not allowed</h1>" in page.text
    for path in SETTINGS_FORMS:
        posted = await operator.post(
            path, data={"csrf_token": token, "timezone": "Asia/Tokyo", "mode": "dry_run"}
        )
        assert posted.status_code == 403, path
        assert posted.json()["error"]["code"] == "owner_only"
    inbox = await operator.get("/app/inbox")
    assert 'href="/app/settings"' not in inbox.text
    assert entries(stack.engine, org_id) == []
    await operator.aclose()


async def test_the_owner_saves_the_general_form_and_the_change_is_recorded(stack: Stack) -> None:
    org_id, headers = await create_org(stack.api)
    owner = await person(stack, headers, "Olivia", "owner")
    page = await owner.get("/app/settings")
    assert page.status_code == 200
    assert 'href="/app/settings"' in page.text  # the nav link, for the owner
    form = general_form(page)
    assert form["sla.urgent"] == "5" and form["sla.urgent.unit"] == "minutes"
    assert form["inactivity_threshold"] == "2" and form["inactivity_threshold.unit"] == "days"
    assert form["call_policy.spacing.1"] == "2" and form["call_policy.spacing.1.unit"] == "hours"

    unchanged = await owner.post("/app/settings", data=form)
    assert unchanged.status_code == 200
    assert "Nothing changed." in unchanged.text
    assert entries(stack.engine, org_id) == []

    form |= {
        "sms_from": "+44 7911 123456",
        "sla.high": "30",
        "takeover_timeout": "2",
        "takeover_timeout.unit": "hours",
        "call_policy.spacing.3": "",  # drops the fourth wait
        "alerts.email": "ops@shine.example\nboss@shine.example",
    }
    saved = await owner.post("/app/settings", data=form)

    assert saved.status_code == 200, saved.text
    body = (await stack.api.get("/v1/orgs/me", headers=headers)).json()
    assert body["sms_from"] == "+447911123456"
    assert body["sla"]["high"] == "PT30M"
    assert body["takeover_timeout"] == "PT2H"
    assert body["call_policy"]["spacing"] == ["PT5M", "PT2H", "P1D"]
    assert body["alerts"]["email"] == ["ops@shine.example", "boss@shine.example"]
    (entry,) = entries(stack.engine, org_id)
    assert (entry.actor, entry.section) == ("Olivia", "general")
    assert entry.summary == (
        "SMS sender: none → +447911123456; Waits between calls: 5 min, 2 h, 1 day, 2 days → "
        "5 min, 2 h, 1 day; SLA high: 15 min → 30 min; Takeover timeout: 30 min → 2 h; "
        "Alert emails: none → ops@shine.example, boss@shine.example"
    )
    assert "Saved: SMS sender: none → +447911123456" in unescape(saved.text)
    changes = await owner.get("/app/settings/changes")
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+Z">', changes.text)
    assert "SLA high: 15 min → 30 min" in unescape(changes.text)
    await owner.aclose()


async def test_invalid_values_are_shown_beside_their_fields_and_nothing_is_saved(
    stack: Stack,
) -> None:
    org_id, headers = await create_org(stack.api)
    owner = await person(stack, headers, "Olivia", "owner")
    before = (await stack.api.get("/v1/orgs/me", headers=headers)).json()
    form = general_form(await owner.get("/app/settings"))
    form |= {
        "timezone": "Mars/Olympus",
        "sms_from": "12",
        "takeover_timeout": "3",
        "takeover_timeout.unit": "days",
        "sla.low": "0",
        "call_policy.spacing.2": "",
        "call_policy.spacing.3": "-1",
        "alerts.email": "ops@shine.example\nnot-an-address",
        "help_reply": "ok",
    }

    refused = await owner.post("/app/settings", data=form)

    assert refused.status_code == 422
    html = unescape(refused.text)
    errors = dict(re.findall(r'<small id="e-([^"]+)" class="field-error">([^<]+)</small>', html))
    assert errors["f-timezone"].startswith("unknown timezone 'Mars/Olympus'")
    assert errors["f-sms_from"] == "must be a phone number in E.164 form, like +447911123456"
    assert errors["f-takeover_timeout"] == "must be between 1 min and 1 day"
    assert errors["f-sla-low"] == "must be a positive duration such as 15 min or 1 day"
    assert errors["f-call_policy-spacing-3"].startswith("must be a positive duration")
    assert errors["f-alerts-email"].startswith("“not-an-address”: value is not a valid email")
    assert set(errors) == {
        "f-timezone",
        "f-sms_from",
        "f-takeover_timeout",
        "f-sla-low",
        "f-call_policy-spacing-3",
        "f-alerts-email",
    }
    assert 'id="f-timezone" name="timezone" type="text" value="Mars/Olympus"' in html
    assert "Nothing was saved" in html
    assert (await stack.api.get("/v1/orgs/me", headers=headers)).json() == before
    assert entries(stack.engine, org_id) == []
    await owner.aclose()


async def test_the_owner_changes_quiet_hours(stack: Stack) -> None:
    org_id, headers = await create_org(stack.api, quiet_hours={})
    owner = await person(stack, headers, "Olivia", "owner")
    token = csrf(await owner.get("/app/settings/quiet-hours"))
    windows = {
        "quiet_hours.sms.mode": "window",
        "quiet_hours.sms.start": "09:00",
        "quiet_hours.sms.end": "20:00",
        "quiet_hours.whatsapp.mode": "window",
        "quiet_hours.whatsapp.start": "08:00",
        "quiet_hours.whatsapp.end": "21:00",
        "quiet_hours.voice.mode": "any",
        "quiet_hours.voice.start": "08:00",
        "quiet_hours.voice.end": "21:00",
        "quiet_hours.email.mode": "any",
        "quiet_hours.weekdays_only": "on",
    }

    backwards = await owner.post(
        "/app/settings/quiet-hours",
        data={**windows, "csrf_token": token, "quiet_hours.sms.end": "07:00"},
    )
    saved = await owner.post("/app/settings/quiet-hours", data={**windows, "csrf_token": token})

    assert backwards.status_code == 422
    assert '<small id="e-sms" class="field-error">window end must be after its start</small>' in (
        backwards.text
    )
    assert saved.status_code == 200, saved.text
    hours = (await stack.api.get("/v1/orgs/me", headers=headers)).json()["quiet_hours"]
    assert hours == {
        "sms": ["09:00", "20:00"],
        "whatsapp": ["08:00", "21:00"],
        "voice": None,
        "email": None,
        "weekdays_only": True,
    }
    (entry,) = entries(stack.engine, org_id)
    assert (entry.actor, entry.section) == ("Olivia", "quiet_hours")
    assert entry.summary == (
        "Quiet hours SMS: 08:00\N{EN DASH}21:00 → 09:00\N{EN DASH}20:00; "
        "Quiet hours voice: 08:00\N{EN DASH}21:00 → any time; Quiet hours weekdays only: no → yes"
    )
    await owner.aclose()


async def test_live_is_refused_on_a_dry_run_deployment_and_the_page_says_why(
    stack: Stack,
) -> None:
    org_id, headers = await create_org(stack.api)
    owner = await person(stack, headers, "Olivia", "owner")
    page = await owner.get("/app/settings/provider-mode")
    assert "Live is unavailable on this deployment" in page.text
    assert "KEEPWARM_PROVIDER_MODE=live" in page.text
    assert "Switch to live" not in page.text

    forced = await owner.post(
        "/app/settings/provider-mode", data={"csrf_token": csrf(page), "mode": "live"}
    )

    assert forced.status_code == 422
    assert "live is unavailable" in forced.text
    assert (await stack.api.get("/v1/orgs/me", headers=headers)).json()["provider_mode"] == (
        "dry_run"
    )
    assert entries(stack.engine, org_id) == []
    await owner.aclose()


async def test_on_a_live_deployment_the_owner_switches_to_live_and_back(pg_url: str) -> None:
    async with stack_on(pg_url, ProviderMode.LIVE) as stack:
        org = await stack.api.post(
            "/v1/orgs",
            json={"name": "Shine", "timezone": "Europe/London"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        org_id = org.json()["id"]
        headers = {"Authorization": f"Bearer {org.json()['api_key']}"}
        owner = await person(stack, headers, "Olivia", "owner")
        page = await owner.get("/app/settings/provider-mode")
        assert "Switch to live?" in page.text

        live = await owner.post(
            "/app/settings/provider-mode", data={"csrf_token": csrf(page), "mode": "live"}
        )
        back = await owner.post(
            "/app/settings/provider-mode", data={"csrf_token": csrf(page), "mode": "dry_run"}
        )

        assert live.status_code == 200 and back.status_code == 200
        assert "Switch to dry run?" in live.text
        summaries = [(e.actor, e.section, e.summary) for e in entries(stack.engine, org_id)]
        assert summaries == [
            ("Olivia", "provider_mode", "Provider mode: dry run → live"),
            ("Olivia", "provider_mode", "Provider mode: live → dry run"),
        ]
        await owner.aclose()


async def test_saving_the_form_untouched_changes_nothing_however_the_browser_sends_it(
    stack: Stack,
) -> None:
    org_id, headers = await create_org(stack.api)
    patched = await stack.api.patch(
        "/v1/orgs/me",
        json={"help_reply": "Shine:\nhelp at 020 7946 0000", "vip_value": 1234567.5},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    owner = await person(stack, headers, "Olivia", "owner")
    form = general_form(await owner.get("/app/settings"))
    assert form["vip_value"] == "1234567.5"

    # A browser sends a textarea's line breaks as CRLF.
    again = await owner.post(
        "/app/settings", data={**form, "help_reply": form["help_reply"].replace("\n", "\r\n")}
    )

    assert "Nothing changed." in again.text
    assert [entry.actor for entry in entries(stack.engine, org_id)] == ["API key"]
    await owner.aclose()
