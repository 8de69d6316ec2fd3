"""Orgs, API keys and settings through HTTP (API.md "Auth and tenancy")."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.settings import Settings
from models.tables import Org
from tests.conftest import ADMIN_TOKEN, create_org, serve

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_admin_creates_an_org_whose_key_is_stored_hashed(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    response = await api.post(
        "/v1/orgs", json={"name": "Shine", "timezone": "Europe/London"}, headers=ADMIN
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "api_key"}
    with Session(pg_engine) as session:
        org = session.exec(select(Org).where(Org.id == body["id"])).one()
    assert org.api_key_hash == hashlib.sha256(body["api_key"].encode()).hexdigest()
    assert body["api_key"] not in str(org.settings)
    me = await api.get("/v1/orgs/me", headers={"Authorization": f"Bearer {body['api_key']}"})
    assert me.json()["name"] == "Shine"
    assert "api_key" not in me.json()


async def test_missing_or_wrong_credentials_get_401(api: httpx.AsyncClient) -> None:
    cases = [
        await api.get("/v1/orgs/me"),
        await api.get("/v1/orgs/me", headers={"Authorization": "Bearer kw_nope"}),
        await api.get("/v1/leads", headers={"Authorization": "Basic abc"}),
        await api.post("/v1/orgs", json={"name": "x", "timezone": "UTC"}),
        await api.post(
            "/v1/orgs",
            json={"name": "x", "timezone": "UTC"},
            headers={"Authorization": "Bearer wrong-admin"},
        ),
    ]

    for response in cases:
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"


async def test_org_key_on_admin_route_and_admin_token_on_org_route_get_403(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)

    as_org = await api.post("/v1/orgs", json={"name": "x", "timezone": "UTC"}, headers=headers)
    as_admin = await api.get("/v1/orgs/me", headers=ADMIN)

    assert as_org.status_code == 403
    assert as_admin.status_code == 403
    assert as_org.json()["error"]["code"] == "forbidden"


async def test_patch_changes_only_the_fields_given(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api, quiet_hours={})  # the default windows

    response = await api.patch(
        "/v1/orgs/me",
        json={
            "timezone": "America/New_York",
            "default_region": "us",
            "sms_from": "+1 (415) 555-2671",
            "email_from": "Shine <hi@shine.test>",
            "inactivity_threshold": "P3D",
        },
        headers=headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "America/New_York"
    assert body["default_region"] == "US"
    assert body["sms_from"] == "+14155552671"
    assert body["email_from"] == "Shine <hi@shine.test>"
    assert body["inactivity_threshold"] == "P3D"
    assert body["provider_mode"] == "dry_run"
    assert body["quiet_hours"]["sms"] == ["08:00", "21:00"]
    again = await api.get("/v1/orgs/me", headers=headers)
    assert again.json() == body


async def test_invalid_settings_get_422_naming_each_field_and_change_nothing(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    before = (await api.get("/v1/orgs/me", headers=headers)).json()

    response = await api.patch(
        "/v1/orgs/me",
        json={
            "timezone": "Mars/Olympus",
            "inactivity_threshold": "two days",
            "quiet_hours": {"sms": ["21:00", "08:00"]},
            "sms_from": "12",
            "colour": "blue",
        },
        headers=headers,
    )

    assert response.status_code == 422
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert {"timezone", "inactivity_threshold", "quiet_hours.sms", "sms_from", "colour"} <= fields
    assert (await api.get("/v1/orgs/me", headers=headers)).json() == before


async def test_null_for_a_required_setting_is_422(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    response = await api.patch(
        "/v1/orgs/me", json={"timezone": None, "sms_from": None}, headers=headers
    )

    assert response.status_code == 422
    assert [detail["field"] for detail in response.json()["error"]["details"]] == ["timezone"]


async def test_live_mode_is_refused_on_a_dry_run_deployment(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    response = await api.patch("/v1/orgs/me", json={"provider_mode": "live"}, headers=headers)

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "provider_mode"
    assert (await api.get("/v1/orgs/me", headers=headers)).json()["provider_mode"] == "dry_run"


async def test_create_org_validates_its_body(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/orgs", json={"name": "", "timezone": "Nowhere"}, headers=ADMIN)

    assert response.status_code == 422
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert fields == {"name", "timezone"}


async def test_patching_a_nested_setting_keeps_its_siblings(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api, quiet_hours={})  # the default windows

    response = await api.patch(
        "/v1/orgs/me",
        json={"quiet_hours": {"voice": ["09:00", "17:00"]}, "touch_budget": {"per_24h": 2}},
        headers=headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["quiet_hours"] == {
        "sms": ["08:00", "21:00"],
        "whatsapp": ["08:00", "21:00"],
        "voice": ["09:00", "17:00"],
        "email": None,
        "weekdays_only": False,
    }
    assert body["touch_budget"] == {"per_24h": 2, "calls_per_subject_per_24h": 3}


async def test_concurrent_patches_of_different_fields_both_stick(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    responses = await asyncio.gather(
        *(
            api.patch("/v1/orgs/me", json=change, headers=headers)
            for change in (
                {"help_reply": "Reply STOP to opt out."},
                {"timezone": "Europe/Paris"},
                {"sms_from": "+447911123456"},
                {"touch_budget": {"per_24h": 5}},
            )
        )
    )

    assert [response.status_code for response in responses] == [200] * 4
    body = (await api.get("/v1/orgs/me", headers=headers)).json()
    assert body["help_reply"] == "Reply STOP to opt out."
    assert body["timezone"] == "Europe/Paris"
    assert body["sms_from"] == "+447911123456"
    assert body["touch_budget"]["per_24h"] == 5


async def test_an_org_over_its_rate_limit_gets_429_and_others_do_not(
    stack_settings: Settings,
) -> None:
    settings = stack_settings.model_copy(update={"rate_limit_per_minute": 3})
    async with serve(settings) as api:
        _, busy = await create_org(api, name="Busy")
        _, quiet = await create_org(api, name="Quiet")

        answers = [(await api.get("/v1/orgs/me", headers=busy)).status_code for _ in range(4)]
        limited = await api.get("/v1/leads", headers=busy)
        other = await api.get("/v1/orgs/me", headers=quiet)

    assert answers == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert other.status_code == 200


async def test_whatsapp_template_sid_must_be_a_content_sid_and_a_bad_one_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    sid = "HX" + "0123456789ABCDEF" * 2
    good = await api.patch("/v1/orgs/me", json={"whatsapp_template_sid": sid}, headers=headers)
    before = (await api.get("/v1/orgs/me", headers=headers)).json()

    refused = [
        await api.patch(
            "/v1/orgs/me",
            json={"whatsapp_template_sid": bad, "help_reply": "Call us"},
            headers=headers,
        )
        for bad in ("MG" + "0" * 32, "HX123", "HX" + "g" * 32, sid + "0", f" {sid}")
    ]

    assert good.status_code == 200, good.text
    assert before["whatsapp_template_sid"] == sid
    for response in refused:
        assert response.status_code == 422, response.text
        details = response.json()["error"]["details"]
        assert [detail["field"] for detail in details] == ["whatsapp_template_sid"]
    assert (await api.get("/v1/orgs/me", headers=headers)).json() == before
    cleared = await api.patch("/v1/orgs/me", json={"whatsapp_template_sid": None}, headers=headers)
    assert cleared.json()["whatsapp_template_sid"] is None


async def test_a_senders_pace_is_set_per_channel_and_a_bad_one_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    assert (await api.get("/v1/orgs/me", headers=headers)).json()["pacing"] == {
        "sms": None,
        "whatsapp": None,
        "email": None,
        "calls": None,
    }

    refused = await api.patch(
        "/v1/orgs/me",
        json={"pacing": {"sms": 0, "whatsapp": 2000, "email": "fast", "calls": 1e-9}},
        headers=headers,
    )
    assert refused.status_code == 422
    fields = {detail["field"] for detail in refused.json()["error"]["details"]}
    assert fields == {"pacing.sms", "pacing.whatsapp", "pacing.email", "pacing.calls"}

    set_ = await api.patch(
        "/v1/orgs/me", json={"pacing": {"sms": 1, "calls": 0.1}}, headers=headers
    )
    assert set_.status_code == 200, set_.text
    changed = await api.patch("/v1/orgs/me", json={"pacing": {"sms": 3}}, headers=headers)
    assert changed.json()["pacing"] == {"sms": 3, "whatsapp": None, "email": None, "calls": 0.1}
