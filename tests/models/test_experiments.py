"""Experiments in the data layer, on SQLite and PostgreSQL: a lead's variant is decided by the
lead and kept, a step's touch is tagged with it, the results count known data exactly, and a
step the person can't be reached for is skipped (one note, no failed message) or falls back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from models.database import session_scope
from models.errors import NotFound
from models.payloads import NextStep
from models.reads.experiments import sequence_results
from models.rules.experiments import MIN_SAMPLE, bucket, choose
from models.schemas import OrgSettings, QuietHours, SequenceIn, SequenceStep, Variant
from models.services.bookings import book
from models.services.intake import record_lead
from models.services.orgs import create_org, patch_org_settings
from models.services.outbound import StepClaim, StepTag, claim_step_touch
from models.services.sequences import next_step, put_sequence, sequence_definition
from models.store.consent import record_consent_change
from models.store.leads import set_stage
from models.store.messages import accept_message
from models.store.receipts import record_intake_receipt
from models.tables import Lead, Message, TimelineEvent, utcnow
from models.values import (
    Channel,
    Direction,
    Intent,
    MessageStatus,
    Sender,
    Stage,
    TimelineKind,
    new_id,
)

SEQUENCE = "quote-follow-up"


def experiment(
    *, weights: list[float] | None = None, fallback: list[Channel] | None = None
) -> SequenceIn:
    return SequenceIn(
        applies_to=list(Intent),
        steps=[
            SequenceStep(
                after=timedelta(hours=1),
                channel=Channel.SMS,
                variants=[
                    Variant(name="a", template="Hi {first_name}, shall we book you in?"),
                    Variant(name="b", template="{first_name}, a slot opened up this week."),
                ],
                weights=weights,
            ),
            SequenceStep(
                after=timedelta(days=1),
                channel=Channel.SMS,
                template="Last check from {org_name}",
                fallback=fallback or [],
            ),
        ],
        max_attempts=2,
    )


@dataclass
class Shop:
    engine: Engine
    org_id: str

    def lead(self, *, email: bool = False) -> str:
        with session_scope(self.engine) as session:
            payload: dict[str, object] = {
                "name": "Grace Hopper",
                "phone": f"+4479111{uuid.uuid4().int % 100000:05d}",
                "consent": {"sms": True, "email": True},
            }
            if email:
                payload["email"] = f"grace-{uuid.uuid4().hex[:8]}@example.com"
            receipt, _ = record_intake_receipt(
                session, org_id=self.org_id, event_id=None, kind="lead", payload=payload
            )
            lead_id = f"lead_{uuid.uuid4().hex}"
            record_lead(
                session,
                org_id=self.org_id,
                lead_id=lead_id,
                workflow_id=f"wf-{lead_id}",
                receipt_id=receipt.id,
            )
            return lead_id

    def step(self, lead_id: str, index: int) -> NextStep:
        with session_scope(self.engine) as session:
            step = next_step(
                session, org_id=self.org_id, name=SEQUENCE, index=index, lead_id=lead_id
            )
            assert step is not None
            return step

    def send(self, lead_id: str, index: int) -> StepClaim:
        """Claim step ``index``'s touch as the send activity does, and record it sent."""
        step = self.step(lead_id, index)
        with session_scope(self.engine) as session:
            definition = sequence_definition(session, org_id=self.org_id, name=SEQUENCE)
            assert definition is not None
            claimed = claim_step_touch(
                session,
                org_id=self.org_id,
                lead_id=lead_id,
                channel=step.channel,
                fallback=tuple(definition.steps[index].fallback),
                idempotency_key=f"wf-{lead_id}/nudge-1/{index + 1}",
                text=step.template,
                tag=StepTag(
                    sequence=SEQUENCE,
                    step=index + 1,
                    variant=step.variant,
                    experiment=step.experiment,
                ),
            )
            if claimed.claim is not None:
                accept_message(
                    session, message=claimed.claim.message, status=MessageStatus.SIMULATED
                )
            return claimed

    def reply(self, lead_id: str, body: str = "yes please") -> None:
        with session_scope(self.engine) as session:
            lead = session.get(Lead, lead_id)
            assert lead is not None
            outbound = session.exec(select(Message).where(Message.lead_id == lead_id)).first()
            assert outbound is not None
            session.add(
                Message(
                    id=new_id("msg"),
                    org_id=self.org_id,
                    lead_id=lead_id,
                    thread_id=outbound.thread_id,
                    channel=Channel.SMS,
                    direction=Direction.INBOUND,
                    sender=Sender.CUSTOMER,
                    body=body,
                    status=MessageStatus.RECEIVED,
                    created_at=utcnow() + timedelta(seconds=5),
                )
            )

    def book(self, lead_id: str) -> None:
        with session_scope(self.engine) as session:
            book(
                session,
                org_id=self.org_id,
                lead_id=lead_id,
                event_id=uuid.uuid4().hex,
                starts_at=datetime.now(UTC) + timedelta(days=3),
                ends_at=None,
                provider_id=None,
                service="deep clean",
                address=None,
                note=None,
            )
            # What the lead's workflow does when it hears of the booking.
            set_stage(
                session, org_id=self.org_id, lead_id=lead_id, stage=Stage.CONVERTED, reason="booked"
            )

    def messages(self, lead_id: str) -> list[Message]:
        with session_scope(self.engine) as session:
            return list(session.exec(select(Message).where(Message.lead_id == lead_id)))

    def notes(self, lead_id: str) -> list[str]:
        with session_scope(self.engine) as session:
            return [
                event.summary
                for event in session.exec(
                    select(TimelineEvent).where(
                        TimelineEvent.lead_id == lead_id,
                        TimelineEvent.kind == TimelineKind.TOUCH_SKIPPED,
                    )
                )
            ]


def shop(engine: Engine, body: SequenceIn) -> Shop:
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Shine",
            settings=OrgSettings(
                timezone="UTC",
                quiet_hours=QuietHours(sms=None, whatsapp=None, voice=None, email=None),
            ),
        )
        put_sequence(session, org_id=org.id, name=SEQUENCE, body=body)
        return Shop(engine=engine, org_id=org.id)


def test_a_lead_gets_the_variant_its_id_decides_and_the_touch_names_it(engine: Engine) -> None:
    here = shop(engine, experiment())
    leads = [here.lead() for _ in range(12)]

    for lead_id in leads:
        here.send(lead_id, 0)

    for lead_id in leads:
        expected = choose(["a", "b"], [1, 1], bucket(lead_id, SEQUENCE, "1"))
        [message] = here.messages(lead_id)
        assert (message.sequence, message.step, message.variant) == (SEQUENCE, 1, expected)
        assert message.body.startswith("Hi Grace" if expected == "a" else "Grace, a slot")
        with session_scope(engine) as session:
            sent = session.exec(
                select(TimelineEvent).where(
                    TimelineEvent.lead_id == lead_id, TimelineEvent.kind == TimelineKind.TOUCH_SENT
                )
            ).one()
        assert f"(step 1 of {SEQUENCE}, variant {expected}, " in sent.summary


def test_a_lead_keeps_its_variant_whatever_the_allocation_says_later(engine: Engine) -> None:
    here = shop(engine, experiment(weights=[0.001, 1000]))
    lead_id = here.lead()
    here.send(lead_id, 0)
    assert here.messages(lead_id)[0].variant == "b"

    with session_scope(engine) as session:
        put_sequence(
            session, org_id=here.org_id, name=SEQUENCE, body=experiment(weights=[1000, 0.001])
        )

    # A retry or a replay after the change reads the step again: the lead still gets b.
    assert here.step(lead_id, 0).variant == "b"
    assert here.step(here.lead(), 0).variant == "a"


def test_results_count_known_data_exactly(engine: Engine) -> None:
    here = shop(engine, experiment())
    by_variant: dict[str, list[str]] = {"a": [], "b": []}
    while min(len(leads) for leads in by_variant.values()) < 6:
        lead_id = here.lead()
        variant = here.step(lead_id, 0).variant
        assert variant is not None
        if len(by_variant[variant]) < 6:
            here.send(lead_id, 0)
            by_variant[variant].append(lead_id)
    # a: 2 of 6 replied, 1 booked (a booking converts the lead); b: 3 replied, 2 booked.
    for lead_id in by_variant["a"][:2] + by_variant["b"][:3]:
        here.reply(lead_id)
    for lead_id in by_variant["a"][:1] + by_variant["b"][:2]:
        here.book(lead_id)
    # A keyword is not an answer: STOP from a lead of a is not a reply.
    here.reply(by_variant["a"][4], body=" stop ")
    # A step-2 send for one lead of a (its reply came after step 1 only: step 2 is later).
    here.send(by_variant["a"][5], 1)

    with session_scope(engine) as session:
        results = sequence_results(session, org_id=here.org_id, name=SEQUENCE)
        none = sequence_results(
            session, org_id=here.org_id, name=SEQUENCE, start=utcnow() + timedelta(hours=1)
        )

    first, second = results.steps
    assert first.experiment and not second.experiment
    figures = {
        v.name: (v.sent, v.replied, v.booked, v.converted, v.reply_rate) for v in first.variants
    }
    assert figures == {"a": (6, 2, 1, 1, 0.3333), "b": (6, 3, 2, 2, 0.5)}
    assert first.verdict.startswith("not enough data yet: 6 and 6 sends")
    assert sum(v.probability_best or 0 for v in first.variants) == pytest.approx(1, abs=0.001)
    assert [(v.name, v.sent, v.replied) for v in second.variants] == [(None, 1, 0)]
    assert second.verdict == "no experiment: one version only"
    assert results.min_sample == MIN_SAMPLE
    assert [v.sent for step in none.steps for v in step.variants] == [0, 0, 0]
    with session_scope(engine) as session, pytest.raises(NotFound):
        sequence_results(session, org_id=here.org_id, name="no-such-sequence")


def test_a_step_on_a_withdrawn_channel_is_skipped_once_with_no_message(engine: Engine) -> None:
    here = shop(engine, experiment())
    lead_id = here.lead(email=True)
    here.send(lead_id, 0)
    withdraw_sms(engine, here.org_id, lead_id)

    first = here.send(lead_id, 1)
    again = here.send(lead_id, 1)  # a retried activity

    assert first.skipped == again.skipped == "sms withdrawn"
    assert len(here.messages(lead_id)) == 1  # no failed row
    assert here.notes(lead_id) == [f"Step 2 of {SEQUENCE} skipped: sms withdrawn"]


def test_a_step_with_a_fallback_goes_by_email_after_stop(engine: Engine) -> None:
    here = shop(engine, experiment(fallback=[Channel.EMAIL]))
    lead_id, no_email = here.lead(email=True), here.lead()
    for lead in (lead_id, no_email):
        here.send(lead, 0)
        withdraw_sms(engine, here.org_id, lead)

    claimed = here.send(lead_id, 1)
    skipped = here.send(no_email, 1)

    assert claimed.claim is not None
    assert claimed.claim.message.channel == Channel.EMAIL
    assert claimed.claim.message.body == "Last check from Shine"
    assert skipped.skipped == "sms withdrawn; no email address"
    assert here.notes(lead_id) == []


def withdraw_sms(engine: Engine, org_id: str, lead_id: str) -> None:
    """The person texts STOP: SMS consent withdrawn on the lead's contact (email left as is)."""
    with session_scope(engine) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        record_consent_change(
            session,
            org_id=org_id,
            contact_id=lead.contact_id,
            channel=Channel.SMS,
            granted=False,
            source="STOP",
            evidence="test",
        )


def test_an_edited_text_starts_new_figures_and_live_counts_no_rehearsal(engine: Engine) -> None:
    here = shop(engine, experiment())
    for _ in range(8):
        lead_id = here.lead()
        here.send(lead_id, 0)
        here.reply(lead_id)
    edited = experiment()
    assert edited.steps[0].variants is not None
    edited.steps[0].variants[1] = Variant(name="b", template="{first_name}, 20 % off this week")

    with session_scope(engine) as session:
        put_sequence(session, org_id=here.org_id, name=SEQUENCE, body=edited)
        after_edit = sequence_results(session, org_id=here.org_id, name=SEQUENCE).steps[0]
        patch_org_settings(session, org_id=here.org_id, changes={"provider_mode": "live"})
        live = sequence_results(session, org_id=here.org_id, name=SEQUENCE)

    rows = [(v.name, v.earlier, v.sent, v.replied) for v in after_edit.variants]
    a_sent = next(sent for name, earlier, sent, _ in rows if name == "a" and not earlier)
    # b's old text keeps its figures apart; the new b starts from none. a is unchanged but
    # its experiment is a new one too: a comparison is only fair within one version.
    assert ("b", False, 0, 0) in rows
    assert a_sent == 0
    assert sum(sent for _, earlier, sent, _ in rows if earlier) == 8
    assert all(replied == sent for _, earlier, sent, replied in rows if earlier)
    assert live.mode == "live"
    assert [v.sent for step in live.steps for v in step.variants] == [0, 0, 0]
