"""The Alert workflow on the time-skipping server: holds before it tells anyone, tells once,
climbs, stops when someone has it, honours quotas and silences, and closes the loop."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.database import session_scope
from models.schemas import OrgSettings
from models.services.alerts import add_silence
from models.tables import Alert, AlertNotice, Message, Operator, Org
from models.values import AlertState, HealthStatus, OperatorRole
from tests.workflows.conftest import Harness
from workflows.alert import (
    Acknowledgement,
    AlertInput,
    AlertView,
    AlertWorkflow,
    Observation,
    alert_workflow_id,
)

OWNER_EMAIL = "owner@shine-cleaning.example.com"
OWNER_PHONE = "+447700900111"
BACKUP_EMAIL = "ops@shine-cleaning.example.com"


@pytest.fixture
def time_env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """This module's tests wait on long timers: a server of their own."""
    return own_time_env


@pytest.fixture(autouse=True)
def owner(harness: Harness) -> None:
    """The org's owner (the default contact) and its senders."""
    with session_scope(harness.engine) as session:
        session.add(
            Operator(
                id=f"op_{uuid.uuid4().hex}",
                org_id=harness.org_id,
                name="Molly Owner",
                role=OperatorRole.OWNER,
                phone=OWNER_PHONE,
                email=OWNER_EMAIL,
            )
        )
    configure(harness, sms_from="+14155552671", email_from="alerts@shine-cleaning.example.com")


def configure(harness: Harness, **alerts_or_settings: object) -> None:
    """Change the org's settings (``alerts`` is merged into the alert settings)."""
    with session_scope(harness.engine) as session:
        org = session.get(Org, harness.org_id)
        assert org is not None
        settings = OrgSettings.model_validate(org.settings).model_dump(mode="json")
        alerts = alerts_or_settings.pop("alerts", None)
        settings.update(alerts_or_settings)
        if isinstance(alerts, dict):
            settings["alerts"] = {**settings["alerts"], **alerts}
        org.settings = OrgSettings.model_validate(settings).model_dump(mode="json")
        session.add(org)


async def start(
    harness: Harness, *, rule: str = "send_failures", subject: str = "sms"
) -> WorkflowHandle[AlertWorkflow, AlertView]:
    return await harness.env.client.start_workflow(
        AlertWorkflow.run,
        AlertInput(org_id=harness.org_id, rule=rule, subject=subject),
        id=alert_workflow_id(harness.org_id, rule, subject),
        task_queue=harness.task_queue,
    )


async def observe(
    harness: Harness,
    handle: WorkflowHandle[AlertWorkflow, AlertView],
    status: HealthStatus,
    summary: str = "Texts are failing",
) -> AlertView:
    at = await harness.env.get_current_time()
    return await handle.execute_update(
        AlertWorkflow.observe,
        Observation(status=status, summary=summary, detail="36 of 1,000 failed.", at=at),
    )


async def state(harness: Harness, handle: WorkflowHandle[AlertWorkflow, AlertView]) -> AlertView:
    """The alert's state once the workflow has acted on what it was told."""
    await harness.env.sleep(timedelta(seconds=1))
    return await handle.query(AlertWorkflow.state)


def notices(harness: Harness) -> list[AlertNotice]:
    with session_scope(harness.engine) as session:
        return list(
            session.exec(
                select(AlertNotice)
                .where(AlertNotice.org_id == harness.org_id)
                .order_by(col(AlertNotice.created_at), col(AlertNotice.step))
            )
        )


def sent(harness: Harness) -> list[tuple[str, str | None, str]]:
    """(channel, to, first words) of every alert message the org sent."""
    with session_scope(harness.engine) as session:
        rows = session.exec(
            select(Message)
            .where(
                Message.org_id == harness.org_id,
                col(Message.idempotency_key).startswith("alert/"),
            )
            .order_by(col(Message.created_at), col(Message.id))
        )
        return [(m.channel, m.to_address, " ".join(m.body.split()[:3])) for m in rows]


def alert_rows(harness: Harness) -> list[Alert]:
    with session_scope(harness.engine) as session:
        return list(session.exec(select(Alert).where(Alert.org_id == harness.org_id)))


async def test_a_single_bad_sample_never_notifies(harness: Harness) -> None:
    handle = await start(harness)
    view = await observe(harness, handle, HealthStatus.CRITICAL)
    assert view.state == AlertState.PENDING

    await harness.env.sleep(timedelta(minutes=20))  # no second sample: it went away unseen
    result = await handle.result()

    assert result.state == AlertState.PENDING
    assert result.alert_id is None
    assert alert_rows(harness) == []
    assert sent(harness) == []


async def test_a_good_sample_while_pending_ends_it_quietly(harness: Harness) -> None:
    handle = await start(harness)
    await observe(harness, handle, HealthStatus.WARNING)
    await observe(harness, handle, HealthStatus.OK)

    await handle.result()
    assert alert_rows(harness) == []
    assert sent(harness) == []


async def test_a_flapping_check_notifies_once_and_recovers_once(harness: Harness) -> None:
    handle = await start(harness)
    await observe(harness, handle, HealthStatus.WARNING)
    await observe(harness, handle, HealthStatus.WARNING)
    assert (await state(harness, handle)).state == AlertState.FIRING
    for status in [HealthStatus.OK, HealthStatus.WARNING] * 3:  # flapping
        await harness.env.sleep(timedelta(minutes=5))
        await observe(harness, handle, status)
    await harness.env.sleep(timedelta(hours=2))
    assert sent(harness) == [("email", OWNER_EMAIL, "keepwarm warning: Texts")]

    await observe(harness, handle, HealthStatus.OK)
    view = await observe(harness, handle, HealthStatus.OK)
    assert view.state == AlertState.RESOLVED
    result = await handle.result()

    assert result.state == AlertState.RESOLVED
    assert sent(harness) == [
        ("email", OWNER_EMAIL, "keepwarm warning: Texts"),
        ("email", OWNER_EMAIL, "Resolved after 2"),
    ]
    [row] = alert_rows(harness)
    assert row.state == AlertState.RESOLVED
    assert row.resolved_at is not None and row.fired_at is not None
    assert row.resolved_at - row.fired_at >= timedelta(hours=2)


async def test_an_unacknowledged_critical_climbs_to_sms_then_the_backup(
    harness: Harness,
) -> None:
    configure(harness, alerts={"email": [OWNER_EMAIL, BACKUP_EMAIL]})
    handle = await start(harness, rule="workers", subject="workflow")
    await observe(harness, handle, HealthStatus.CRITICAL, "Workers missing")
    await observe(harness, handle, HealthStatus.CRITICAL, "Workers missing")
    await harness.env.sleep(timedelta(minutes=1))
    assert [channel for channel, _, _ in sent(harness)] == ["email"]

    await harness.env.sleep(timedelta(minutes=15))
    assert sent(harness)[1] == ("sms", OWNER_PHONE, "keepwarm critical: Workers")

    await harness.env.sleep(timedelta(minutes=15))
    assert [(channel, to) for channel, to, _ in sent(harness)] == [
        ("email", OWNER_EMAIL),
        ("sms", OWNER_PHONE),
        ("email", BACKUP_EMAIL),
    ]
    await harness.env.sleep(timedelta(hours=3))
    assert len(sent(harness)) == 3  # bounded: the ladder has three rungs


async def test_acknowledge_stops_the_ladder(harness: Harness) -> None:
    handle = await start(harness, rule="workers", subject="workflow")
    await observe(harness, handle, HealthStatus.CRITICAL, "Workers missing")
    await observe(harness, handle, HealthStatus.CRITICAL, "Workers missing")
    await harness.env.sleep(timedelta(minutes=5))

    view = await handle.execute_update(
        "acknowledge", Acknowledgement(by="Molly Owner"), result_type=AlertView
    )
    assert view.state == AlertState.ACKNOWLEDGED
    [row] = alert_rows(harness)  # the row says so by the time the update answers
    assert row.state == AlertState.ACKNOWLEDGED
    assert row.acknowledged_by == "Molly Owner"

    await harness.env.sleep(timedelta(hours=1))
    assert [channel for channel, _, _ in sent(harness)] == ["email"]


async def test_an_alert_about_twilio_never_goes_by_sms(harness: Harness) -> None:
    handle = await start(harness, rule="provider", subject="twilio")
    await observe(harness, handle, HealthStatus.CRITICAL, "Twilio rejected the credentials")
    await observe(harness, handle, HealthStatus.CRITICAL, "Twilio rejected the credentials")
    await harness.env.sleep(timedelta(minutes=20))

    assert [(channel, to) for channel, to, _ in sent(harness)] == [
        ("email", OWNER_EMAIL),
        ("email", OWNER_EMAIL),
    ]


async def test_the_sms_quota_holds(harness: Harness) -> None:
    configure(harness, alerts={"sms_per_month": 1})
    handles = [
        await start(harness, rule="workers", subject="workflow"),
        await start(harness, rule="workers", subject="activity"),
    ]
    for handle in handles:
        await observe(harness, handle, HealthStatus.CRITICAL, "Workers missing")
        await observe(harness, handle, HealthStatus.CRITICAL, "Workers missing")
    await harness.env.sleep(timedelta(minutes=20))

    texts = [notice for notice in notices(harness) if notice.channel == "sms"]
    assert sorted(notice.outcome for notice in texts) == ["over_quota", "sent"]
    assert [channel for channel, _, _ in sent(harness)].count("sms") == 1
    # The text the quota held back went by email instead: 2 firing emails + 1 fallback.
    assert [channel for channel, _, _ in sent(harness)].count("email") == 3


async def test_a_silence_mutes_notices_but_keeps_the_alert(harness: Harness) -> None:
    now = datetime.now(UTC)
    with session_scope(harness.engine) as session:
        add_silence(
            session,
            org_id=harness.org_id,
            rule="send_failures",
            subject=None,
            starts_at=now - timedelta(days=1),
            until=now + timedelta(days=30),
            reason="Changing the Twilio number",
            created_by="Molly Owner",
        )
    handle = await start(harness)
    await observe(harness, handle, HealthStatus.WARNING)
    await observe(harness, handle, HealthStatus.WARNING)
    await harness.env.sleep(timedelta(minutes=5))

    assert (await state(harness, handle)).state == AlertState.FIRING
    [row] = alert_rows(harness)
    assert row.state == AlertState.FIRING
    assert [notice.outcome for notice in notices(harness)] == ["silenced"]
    assert sent(harness) == []


async def test_a_notice_a_silence_held_back_goes_when_the_silence_ends(harness: Harness) -> None:
    now = await harness.env.get_current_time()
    with session_scope(harness.engine) as session:
        add_silence(
            session,
            org_id=harness.org_id,
            rule=None,
            subject=None,
            starts_at=now - timedelta(minutes=1),
            until=now + timedelta(hours=1),
            reason="Maintenance window",
            created_by="Molly Owner",
        )
    handle = await start(harness)
    await observe(harness, handle, HealthStatus.WARNING)
    await observe(harness, handle, HealthStatus.WARNING)
    await harness.env.sleep(timedelta(minutes=30))
    assert sent(harness) == []  # the window holds it back

    await harness.env.sleep(timedelta(minutes=40))  # the window is over; still wrong

    assert sent(harness) == [("email", OWNER_EMAIL, "keepwarm warning: Texts")]
    assert [n.outcome for n in notices(harness)] == ["silenced", "sent"]


async def test_an_evaluation_delivered_twice_counts_once(harness: Harness) -> None:
    handle = await start(harness)
    at = await harness.env.get_current_time()
    bad = Observation(status=HealthStatus.CRITICAL, summary="Texts are failing", at=at)
    await handle.execute_update(AlertWorkflow.observe, bad)
    view = await handle.execute_update(AlertWorkflow.observe, bad)  # a retried delivery

    assert view.bad_in_a_row == 1
    assert (await state(harness, handle)).state == AlertState.PENDING
