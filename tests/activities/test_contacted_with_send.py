"""A Lead's first touch records the lead contacted in the send's own transaction, on SQLite
and PostgreSQL: once however often the send is retried, also when a delivery report settled
the message first, with the pipeline's counts as a full recount gives them."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from activities.messages import MessageActivities, SendMessageResult
from models.database import session_scope
from models.store import lead_groups
from models.tables import Lead, LeadGroup, TimelineEvent
from models.values import Channel, MessageStatus, Stage, TimelineKind
from tests.activities.sending import send_touch_one
from tests.models.test_takeover import lead_of
from workers.registry import dry_run_adapters


def first_touch(
    engine: Engine, org_id: str, lead_id: str, *, stage: Stage | None = Stage.CONTACTED
) -> SendMessageResult:
    """The send a Lead workflow run makes: with ``stage``, the lead moves once it has gone."""
    adapters = dry_run_adapters()
    sending = MessageActivities(
        engine=engine, senders=adapters.senders, public_url=adapters.public_url
    )
    return send_touch_one(
        sending,
        org_id,
        lead_id,
        stage_when_sent=stage,
        stage_reason="first touch sent by sms",
    )


def stage_notes(engine: Engine, lead_id: str) -> list[str]:
    with session_scope(engine) as session:
        return [
            event.summary
            for event in session.exec(
                select(TimelineEvent)
                .where(
                    TimelineEvent.lead_id == lead_id,
                    TimelineEvent.kind == TimelineKind.STAGE_CHANGED,
                )
                .order_by(col(TimelineEvent.at))
            )
        ]


def counts(engine: Engine, org_id: str) -> list[tuple[object, ...]]:
    """The org's pipeline counts as kept, in key order."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(LeadGroup).where(LeadGroup.org_id == org_id, LeadGroup.leads != 0)
        ).all()
        return sorted(
            (row.source, row.channel, row.stage, row.touched, row.leads, row.valued) for row in rows
        )


def test_the_send_moves_the_lead_to_contacted_once(engine: Engine) -> None:
    org_id, lead_id, _ = lead_of(engine)

    sent = first_touch(engine, org_id, lead_id)
    again = first_touch(engine, org_id, lead_id)  # a retry after the commit

    assert (sent.status, sent.repeated) == (MessageStatus.SIMULATED, False)
    assert again.repeated
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert lead.stage == Stage.CONTACTED
        assert lead.first_contact_channel == Channel.SMS
    assert stage_notes(engine, lead_id) == ["new → contacted: first touch sent by sms"]
    kept = counts(engine, org_id)
    with session_scope(engine) as session:
        lead_groups.rebuild(session, org_id=org_id)
    assert kept == counts(engine, org_id) == [("", "sms", "contacted", True, 1, 0)]


def test_a_message_settled_before_the_stage_change_still_moves_the_lead(engine: Engine) -> None:
    org_id, lead_id, _ = lead_of(engine)
    # Settled without the stage change (as a delivery report that got there first leaves it).
    first_touch(engine, org_id, lead_id, stage=None)
    assert stage_notes(engine, lead_id) == []

    again = first_touch(engine, org_id, lead_id)

    assert (again.status, again.repeated) == (MessageStatus.SIMULATED, True)
    assert stage_notes(engine, lead_id) == ["new → contacted: first touch sent by sms"]
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert lead.stage == Stage.CONTACTED
