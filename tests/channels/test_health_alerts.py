"""The health check end to end on the dev server, live adapters on the fake providers: a
revoked Twilio key raises one critical alert, the owner hears once by email (never through
the broken Twilio), acknowledging works from the API, and the fix resolves it with a
recovery notice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tests.channels.conftest import SMS_FROM, TWILIO_TOKEN, Live, webhook_url
from tests.conftest import eventually
from workflows.health import HealthCheckInput, HealthCheckResult, HealthCheckWorkflow
from workflows.task_queues import LEADS

INTERVAL = timedelta(seconds=10)
OWNER_PHONE = "+447911123456"


async def check(live: Live, org_id: str) -> HealthCheckResult:
    """One run of the checks, as the schedule would start it, for the test's org only (the
    database and the namespace are shared with every other test)."""
    return await live.client.execute_workflow(
        HealthCheckWorkflow.run,
        HealthCheckInput(interval=INTERVAL, org_ids=[org_id]),
        id=f"health-test-{uuid.uuid4().hex[:8]}",
        task_queue=LEADS,
    )


async def end_alerts(client: Client, org_id: str) -> None:
    """The org's alerts must not climb their ladders during later tests."""
    async for execution in client.list_workflows(
        f"WorkflowType = 'Alert' AND ExecutionStatus = 'Running' AND OrgId = '{org_id}'"
    ):
        try:
            await client.get_workflow_handle(execution.id).terminate("test over")
        except RPCError as error:
            # Listed as running by visibility (which lags), but it had just ended: resolved.
            if error.status != RPCStatusCode.NOT_FOUND:
                raise


@pytest.fixture
async def owner_org(live: Live) -> AsyncIterator[tuple[str, dict[str, str], str]]:
    org_id, headers = await live.org()
    owner_email = f"owner-{uuid.uuid4().hex[:6]}@shine-cleaning.com"
    created = await live.api.post(
        "/v1/operators",
        json={"name": "Molly", "email": owner_email, "phone": OWNER_PHONE, "role": "owner"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    yield org_id, headers, owner_email
    live.fake.restore_credentials("twilio")
    await end_alerts(live.client, org_id)


async def _now(value: Any) -> Any:
    """``value`` as an awaitable check for ``eventually`` (a list, or a generator of one)."""
    return list(value) if not isinstance(value, list) else value


def emails_to(live: Live, address: str) -> list[dict[str, Any]]:
    """Alert emails about Twilio to ``address`` (other checks, such as failed runs left by
    other tests in the shared namespace, may alert the same owner about other things)."""
    return [
        request.json
        for request in live.fake.requests("resend")
        if request.method == "POST"
        and isinstance(request.json, dict)
        and address in str(request.json.get("to"))
        and "Twilio" in str(request.json.get("subject"))
    ]


def texts_to(live: Live, number: str) -> list[str]:
    return [
        request.form["Body"]
        for request in live.fake.requests("twilio")
        if request.method == "POST" and request.form and request.form.get("To") == number
    ]


async def health_of(live: Live, headers: dict[str, str], check: str, subject: str) -> str:
    report = await live.api.get("/v1/health", headers=headers)
    assert report.status_code == 200, report.text
    [found] = [c for c in report.json()["checks"] if (c["check"], c["subject"]) == (check, subject)]
    return str(found["status"])


async def test_a_revoked_twilio_key_raises_one_alert_by_email_and_its_fix_resolves_it(
    live: Live, owner_org: tuple[str, dict[str, str], str]
) -> None:
    org_id, headers, owner_email = owner_org
    live.fake.revoke_credentials("twilio")

    await check(live, org_id)  # one bad sample: pending, nobody told
    assert emails_to(live, owner_email) == []
    assert await health_of(live, headers, "provider", "twilio") == "critical"
    await check(live, org_id)  # the second in a row: it fires

    async def fired() -> list[dict[str, Any]]:
        alerts = (await live.api.get("/v1/alerts?state=open", headers=headers)).json()["items"]
        return [
            a
            for a in alerts
            if (a["rule"], a["subject"]) == ("provider", "twilio") and a["notifications"]
        ]

    [alert] = await eventually(fired)
    assert alert["severity"] == "critical"
    assert alert["state"] == "firing"
    assert "Twilio rejected keepwarm's credentials" in alert["summary"]
    [notice] = alert["notifications"]
    assert (notice["channel"], notice["to"]) == ("email", owner_email)
    [email] = await eventually(lambda: _now(emails_to(live, owner_email)))
    assert "Twilio rejected" in email["subject"]
    assert texts_to(live, OWNER_PHONE) == []  # never through the broken Twilio

    await check(live, org_id)  # still broken: the same alert, no second notice
    assert len(emails_to(live, owner_email)) == 1
    # The owner texts back the code the notice gave (Twilio still takes inbound webhooks).
    assert f"ACK {alert['code']}" in email["text"] or f"ACK {alert['code']}" in str(email)
    hook = live.fake.twilio_inbound_message(
        webhook_url("twilio", org_id),
        from_=OWNER_PHONE,
        to=SMS_FROM,
        body=f"ack {alert['code']}",
        auth_token=TWILIO_TOKEN,
    )
    assert (await live.deliver(hook)).status_code == 200

    async def acknowledged() -> dict[str, Any] | None:
        page = (await live.api.get("/v1/alerts?state=acknowledged", headers=headers)).json()
        return next((a for a in page["items"] if a["alert_id"] == alert["alert_id"]), None)

    done_by = await eventually(acknowledged)
    assert done_by["acknowledged_by"] == "Molly (text)"
    threads = (await live.api.get("/v1/threads", headers=headers)).json()["items"]
    assert threads == []  # the owner's text is not a customer conversation

    live.fake.restore_credentials("twilio")
    await check(live, org_id)
    await check(live, org_id)  # clear twice in a row: resolved

    async def resolved() -> list[dict[str, Any]]:
        page = (await live.api.get("/v1/alerts?state=resolved", headers=headers)).json()
        return [a for a in page["items"] if a["alert_id"] == alert["alert_id"]]

    [done] = await eventually(resolved)
    assert done["state"] == "resolved"
    assert await health_of(live, headers, "provider", "twilio") == "ok"
    emails = await eventually(
        lambda: _now(e for e in [emails_to(live, owner_email)] if len(e) == 2)
    )
    subjects = [email["subject"] for email in emails[0]]
    assert subjects[1].startswith("[keepwarm] Resolved: Twilio rejected")


async def test_an_operator_acknowledges_from_the_api_and_a_resolved_alert_is_409(
    live: Live, owner_org: tuple[str, dict[str, str], str]
) -> None:
    org_id, headers, _ = owner_org
    live.fake.revoke_credentials("twilio")
    await check(live, org_id)
    await check(live, org_id)

    async def fired() -> list[dict[str, Any]]:
        page = (await live.api.get("/v1/alerts?state=open", headers=headers)).json()
        return [a for a in page["items"] if a["subject"] == "twilio"]

    [alert] = await eventually(fired)
    operators = (await live.api.get("/v1/operators", headers=headers)).json()["items"]
    url = f"/v1/alerts/{alert['alert_id']}/acknowledge"
    assert (await live.api.post(url, json={}, headers=headers)).status_code == 422  # who?
    acked = await live.api.post(url, json={"operator_id": operators[0]["id"]}, headers=headers)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "Molly")
    again = await live.api.post(url, json={"operator_id": operators[0]["id"]}, headers=headers)
    assert again.status_code == 200
    assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
    _, other_headers = await live.org()  # another org can't see it, let alone acknowledge it
    theirs = await live.api.post(
        url, json={"operator_id": operators[0]["id"]}, headers=other_headers
    )
    assert theirs.status_code == 404

    live.fake.restore_credentials("twilio")
    await check(live, org_id)
    await check(live, org_id)

    async def resolved() -> bool:
        page = (await live.api.get("/v1/alerts?state=resolved", headers=headers)).json()
        return any(a["alert_id"] == alert["alert_id"] for a in page["items"])

    await eventually(resolved)


async def test_silences_are_created_listed_and_lifted(
    live: Live, owner_org: tuple[str, dict[str, str], str]
) -> None:
    _, headers, _ = owner_org
    bad = await live.api.post(
        "/v1/silences", json={"until": "2020-01-01T00:00:00Z"}, headers=headers
    )
    assert bad.status_code == 422
    made = await live.api.post(
        "/v1/silences",
        json={"rule": "provider", "until": "2099-01-01T00:00:00Z", "reason": "Moving numbers"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["created_by"] == "API key"
    listed = (await live.api.get("/v1/silences", headers=headers)).json()["items"]
    assert [s["id"] for s in listed] == [silence["id"]]
    assert (
        await live.api.delete(f"/v1/silences/{silence['id']}", headers=headers)
    ).status_code == 204
    assert (await live.api.get(f"/v1/silences/{silence['id']}", headers=headers)).status_code == 404
