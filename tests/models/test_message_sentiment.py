"""A customer's message carries its sentiment from the moment it is recorded, and the agents'
satisfaction reads it: the same figure as scoring the text, for stored and older rows alike
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from models.database import session_scope
from models.reads.agents import agents
from models.rules.needs_person import sentiment
from models.schemas import OrgSettings
from models.services.inbound import record_inbound_message
from models.services.orgs import create_org
from models.tables import Message, utcnow
from models.values import Channel, Direction, MessageStatus, Sender, new_id

UNHAPPY = "This is terrible, I am not happy at all"
HAPPY = "Thanks so much, that was great!"


def new_org(engine: Engine) -> str:
    with session_scope(engine) as session:
        org, _ = create_org(session, name="Shine", settings=OrgSettings())
        return org.id


def inbound(engine: Engine, org_id: str, body: str, phone: str) -> str:
    with session_scope(engine) as session:
        return record_inbound_message(
            session,
            org_id=org_id,
            channel=Channel.SMS,
            from_phone=phone,
            to_address="+447400123456",
            body=body,
            provider_message_id="SM" + new_id("x")[-32:],
            consent=None,
            source="twilio",
        ).message_id


def test_an_inbound_message_is_recorded_with_its_sentiment(engine: Engine) -> None:
    org_id = new_org(engine)

    unhappy = inbound(engine, org_id, UNHAPPY, "+447911123456")
    happy = inbound(engine, org_id, HAPPY, "+447911654321")

    with session_scope(engine) as session:
        scores = {
            message_id: row.sentiment
            for message_id in (unhappy, happy)
            if (row := session.get(Message, message_id)) is not None
        }
    assert scores == {unhappy: sentiment(UNHAPPY), happy: sentiment(HAPPY)}
    low, high = scores[unhappy], scores[happy]
    assert low is not None and high is not None and low < 0 < high


def test_satisfaction_is_the_same_from_stored_scores_and_from_older_rows(engine: Engine) -> None:
    org_id = new_org(engine)
    inbound(engine, org_id, UNHAPPY, "+447911123456")
    inbound(engine, org_id, HAPPY, "+447911654321")
    older = "ok see you Thursday " * 150  # longer than what is scored: the start counts
    with session_scope(engine) as session:
        # A row from before the score was stored (or written another way): none.
        session.add(
            Message(
                id=new_id("msg"),
                org_id=org_id,
                channel=Channel.SMS,
                direction=Direction.INBOUND,
                sender=Sender.CUSTOMER,
                body=older,
                status=MessageStatus.RECEIVED,
                created_at=utcnow() - timedelta(minutes=5),
            )
        )

    with session_scope(engine) as session:
        (messaging,) = agents(session, org_id=org_id, start=None, end=None, now=utcnow()).items

    moods = [(sentiment(body) + 1) / 2 for body in (HAPPY, UNHAPPY, older)]
    assert messaging.satisfaction_sample == 3
    assert messaging.satisfaction == round(sum(moods) / len(moods), 4)
