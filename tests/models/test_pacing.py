"""Per-sender pacing at claim time, on SQLite and PostgreSQL: a paced sender's touches and
sequence steps leave one gap apart, hottest lead first, a hotter lead that arrives later cuts
in, a send that never comes back (or is held for another reason) stops holding the queue,
another org is never held, a visit's message never waits, and the lead's timeline says once
why it waits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from activities.records import held_back
from models.database import session_scope
from models.rules.compliance import Deferred, Verdict
from models.rules.pacing import stale_after
from models.schemas import OrgSettings, QuietHours, SendPacing
from models.services.orgs import create_org, patch_org_settings
from models.services.outbound import StepTag, claim_outbound_message, claim_step_touch
from models.store.orgs import get_org
from models.tables import Lead, PacedSend, TimelineEvent, utcnow
from models.values import Channel, TimelineKind
from tests.models.test_experiments import Shop

SECOND = timedelta(seconds=1)


@pytest.fixture
def start() -> datetime:
    """A moment ahead of the clock: the pace then follows the times the test gives."""
    return utcnow().replace(microsecond=0) + timedelta(hours=1)


@dataclass
class Sender:
    """An org whose texts go from ``number``, paced at ``per_second``."""

    engine: Engine
    org_id: str
    sent: list[tuple[str, datetime]] = field(default_factory=list)

    def lead(self, score: int) -> str:
        lead_id = Shop(engine=self.engine, org_id=self.org_id).lead()
        with session_scope(self.engine) as session:
            lead = session.get(Lead, lead_id)
            assert lead is not None
            lead.score = score
            session.add(lead)
        return lead_id

    def ask(
        self, lead_id: str, at: datetime, *, transactional: bool = False, step: bool = False
    ) -> datetime | None:
        """Claim the lead's first touch (with ``step``, its sequence's first step) at ``at``
        as the send activity does: ``None`` if it went, else until when it waits (its place
        kept, the wait noted)."""
        key = f"wf-{lead_id}/{'nudge-1/1' if step else 'first-touch'}"
        try:
            with session_scope(self.engine) as session:
                if step:
                    claim_step_touch(
                        session,
                        org_id=self.org_id,
                        lead_id=lead_id,
                        channel=Channel.SMS,
                        fallback=(),
                        idempotency_key=key,
                        text="Still keen, {first_name}?",
                        tag=StepTag(sequence="hot", step=1),
                        now=at,
                    )
                else:
                    claim_outbound_message(
                        session,
                        org_id=self.org_id,
                        lead_id=lead_id,
                        channel=Channel.SMS,
                        idempotency_key=key,
                        template="first_touch",
                        now=at,
                        transactional=transactional,
                    )
        except Deferred as deferred:
            error = held_back(
                self.engine,
                deferred,
                org_id=self.org_id,
                lead_id=lead_id,
                channel=Channel.SMS,
                key=key,
            )
            assert deferred.verdict.until is not None
            assert error.type == "SendDeferred"
            return deferred.verdict.until
        self.sent.append((lead_id, at))
        return None

    def drain(self, due: dict[str, datetime]) -> None:
        """Every waiting send comes back at its turn (the earliest first) until all went."""
        while due:
            lead_id = min(due, key=lambda lead: due[lead])
            until = self.ask(lead_id, due[lead_id])
            if until is None:
                del due[lead_id]
            else:
                assert until > due[lead_id]
                due[lead_id] = until


def paced_org(engine: Engine, *, number: str, per_second: float = 1) -> Sender:
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Shine",
            settings=OrgSettings(
                timezone="UTC",
                sms_from=number,
                quiet_hours=QuietHours(sms=None, whatsapp=None, voice=None, email=None),
                pacing=SendPacing(sms=per_second),
            ),
        )
        return Sender(engine=engine, org_id=org.id)


def unique_number() -> str:
    return f"+4479112{uuid.uuid4().int % 10**5:05d}"


def test_a_held_batch_leaves_one_a_second_hottest_first(engine: Engine, start: datetime) -> None:
    shop = paced_org(engine, number=unique_number())
    scores = [10, 30, 50, 70, 90]
    leads = {score: shop.lead(score) for score in scores}
    due: dict[str, datetime] = {}
    for score in scores:  # all due together, the coldest asking first
        until = shop.ask(leads[score], start)
        if until is not None:
            due[leads[score]] = until
    assert shop.sent == [(leads[10], start)]  # the sender was idle: the first goes at once
    shop.drain(due)

    assert [lead for lead, _ in shop.sent] == [leads[s] for s in (10, 90, 70, 50, 30)]
    assert [at for _, at in shop.sent] == [start + i * SECOND for i in range(5)]
    with session_scope(engine) as session:
        assert session.exec(select(PacedSend).where(PacedSend.org_id == shop.org_id)).all() == []


def test_a_hotter_lead_arriving_later_goes_before_colder_ones_waiting(
    engine: Engine, start: datetime
) -> None:
    shop = paced_org(engine, number=unique_number())
    cold, warm, hot = shop.lead(10), shop.lead(40), shop.lead(95)
    assert shop.ask(cold, start) is None
    due = {warm: shop.ask(warm, start)}
    assert due[warm] == start + SECOND
    assert shop.ask(hot, start + SECOND / 2) == start + SECOND
    due[hot] = start + SECOND
    shop.drain({lead: at for lead, at in due.items() if at is not None})
    assert [lead for lead, _ in shop.sent] == [cold, hot, warm]


def test_a_send_that_never_comes_back_stops_holding_the_queue(
    engine: Engine, start: datetime
) -> None:
    shop = paced_org(engine, number=unique_number())
    first, gone, patient = shop.lead(10), shop.lead(90), shop.lead(20)
    assert shop.ask(first, start) is None
    assert shop.ask(gone, start) == start + SECOND  # its lead replied: it never asks again
    assert shop.ask(patient, start) == start + 2 * SECOND
    # Just past the gone one's turn, the patient one still waits for it, a little.
    assert shop.ask(patient, start + 2 * SECOND) is not None
    assert shop.ask(patient, start + SECOND + stale_after(SECOND) + SECOND / 10) is None


def test_a_touch_held_for_another_reason_leaves_the_queue(engine: Engine, start: datetime) -> None:
    shop = paced_org(engine, number=unique_number())
    first, hot, cold = shop.lead(10), shop.lead(90), shop.lead(20)
    assert shop.ask(first, start) is None
    assert shop.ask(hot, start) == start + SECOND
    # At its turn the gate holds the hot one back (a takeover): it no longer waits in line.
    held_back(
        engine,
        Deferred(Verdict(until=start + timedelta(hours=1), reason="taken over")),
        org_id=shop.org_id,
        lead_id=hot,
        channel=Channel.SMS,
        key=f"wf-{hot}/first-touch",
    )
    assert shop.ask(cold, start + SECOND) is None


def test_a_sequence_step_keeps_its_place_like_a_first_touch(
    engine: Engine, start: datetime
) -> None:
    shop = paced_org(engine, number=unique_number())
    first, hot, cold = shop.lead(10), shop.lead(90), shop.lead(20)
    assert shop.ask(first, start) is None
    assert shop.ask(hot, start, step=True) == start + SECOND
    # A colder first touch asking later queues behind the hot lead's step.
    assert shop.ask(cold, start + SECOND / 2) == start + 2 * SECOND
    shop.drain({hot: start + SECOND, cold: start + 2 * SECOND})
    assert [lead for lead, _ in shop.sent] == [first, hot, cold]


def test_another_org_on_the_same_number_has_a_queue_of_its_own(
    engine: Engine, start: datetime
) -> None:
    number = unique_number()
    one, sharing = paced_org(engine, number=number), paced_org(engine, number=number)
    assert one.ask(one.lead(10), start) is None
    assert one.ask(one.lead(10), start) == start + SECOND  # its own number: queued
    # The other org can neither slow nor reorder the first one's sends.
    assert sharing.ask(sharing.lead(99), start) is None


def test_a_visits_message_never_waits_but_uses_a_turn(engine: Engine, start: datetime) -> None:
    shop = paced_org(engine, number=unique_number())
    assert shop.ask(shop.lead(10), start) is None
    assert shop.ask(shop.lead(10), start, transactional=True) is None  # went at once
    assert shop.ask(shop.lead(99), start) == start + 2 * SECOND  # after both


def test_an_unpaced_sender_never_waits(engine: Engine, start: datetime) -> None:
    shop = paced_org(engine, number=unique_number())
    with session_scope(engine) as session:
        patch_org_settings(session, org_id=shop.org_id, changes={"pacing": {"sms": None}})
    for _ in range(5):
        assert shop.ask(shop.lead(10), start) is None


def test_the_timeline_says_once_why_a_touch_waits(engine: Engine, start: datetime) -> None:
    shop = paced_org(engine, number=unique_number(), per_second=0.5)
    assert shop.ask(shop.lead(10), start) is None
    waiting = shop.lead(20)
    assert shop.ask(waiting, start) == start + 2 * SECOND
    assert shop.ask(waiting, start + SECOND) == start + 2 * SECOND  # asked again too soon
    with session_scope(engine) as session:
        notes = session.exec(
            select(TimelineEvent.summary).where(
                TimelineEvent.lead_id == waiting,
                TimelineEvent.kind == TimelineKind.TOUCH_DEFERRED,
            )
        ).all()
    number = shop_number(engine, shop.org_id)
    assert notes == [f"SMS held back: paced: {number} sends one every 2 seconds"]


def shop_number(engine: Engine, org_id: str) -> str:
    with session_scope(engine) as session:
        number = get_org(session, org_id=org_id).settings["sms_from"]
        assert isinstance(number, str)
        return number


def test_a_pace_made_faster_takes_effect_at_once(engine: Engine, start: datetime) -> None:
    shop = paced_org(engine, number=unique_number(), per_second=0.001)  # one every 1,000 s
    assert shop.ask(shop.lead(10), start) is None
    waiting = shop.lead(10)
    assert shop.ask(waiting, start) == start + timedelta(seconds=1000)
    with session_scope(engine) as session:
        patch_org_settings(session, org_id=shop.org_id, changes={"pacing": {"sms": 1}})
    assert shop.ask(waiting, start) == start + SECOND
    assert shop.ask(waiting, start + SECOND) is None
