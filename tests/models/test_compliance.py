"""The compliance gate: quiet hours in the recipient's local time, regions, the touch budget."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.rules.compliance import Deferred, next_open, recipient, window_for
from models.schemas import OrgSettings, QuietHours, TouchBudget
from models.services import outbound
from models.services.gate import check_gate
from models.services.intake import record_lead
from models.services.orgs import create_org
from models.services.outbound import claim_outbound_message
from models.store.receipts import record_intake_receipt
from models.values import Channel

LONDON = ZoneInfo("Europe/London")
DAYTIME = (time(8), time(21))


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def test_a_lead_at_half_past_ten_at_night_waits_for_eight_in_the_morning() -> None:
    opens = next_open(
        at(LONDON, 2026, 11, 23, 22, 30), zone=LONDON, window=DAYTIME, weekdays_only=False
    )
    assert opens == at(LONDON, 2026, 11, 24, 8, 0)


def test_inside_the_window_is_now() -> None:
    now = at(LONDON, 2026, 11, 23, 12, 0)
    assert next_open(now, zone=LONDON, window=DAYTIME, weekdays_only=False) == now


def test_eight_in_the_morning_is_local_across_a_dst_change() -> None:
    # Clocks go forward at 01:00 on Sunday 28 March 2027: 08:00 BST is 07:00 UTC.
    opens = next_open(
        at(LONDON, 2027, 3, 27, 22, 30), zone=LONDON, window=DAYTIME, weekdays_only=False
    )
    assert opens == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    # And back at 02:00 on Sunday 31 October 2027: 08:00 GMT is 08:00 UTC.
    opens = next_open(
        at(LONDON, 2027, 10, 30, 23, 0), zone=LONDON, window=DAYTIME, weekdays_only=False
    )
    assert opens == datetime(2027, 10, 31, 8, 0, tzinfo=UTC)


def test_weekdays_only_skips_the_weekend() -> None:
    friday_night = at(LONDON, 2026, 11, 27, 21, 30)
    opens = next_open(friday_night, zone=LONDON, window=DAYTIME, weekdays_only=True)
    assert opens == at(LONDON, 2026, 11, 30, 8, 0)  # Monday


def test_the_recipients_zone_and_region_come_from_the_phone_number() -> None:
    miami = recipient(phone="+13055551234", explicit=None, org_timezone="UTC")
    california = recipient(phone="+14155550123", explicit=None, org_timezone="UTC")
    told = recipient(phone="+13055551234", explicit="Asia/Tokyo", org_timezone="UTC")
    nothing = recipient(phone=None, explicit=None, org_timezone="Europe/Paris")

    assert (miami.timezone, miami.region) == ("America/New_York", "US-FL")
    assert (california.timezone, california.region) == ("America/Los_Angeles", "US")
    assert told.timezone == "Asia/Tokyo"
    assert (nothing.timezone, nothing.region) == ("Europe/Paris", None)


def test_a_stricter_region_narrows_the_window() -> None:
    org = OrgSettings()
    assert window_for(Channel.SMS, org, "US-FL") == (time(8), time(20))
    assert window_for(Channel.SMS, org, "US") == (time(8), time(21))
    assert window_for(Channel.EMAIL, org, "US-FL") is None  # email: any hour


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('gate')) / 'gate.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def lead_of(engine: Engine, *, budget: int, zone: str) -> tuple[str, str]:
    """A new org (its quiet hours on, the given budget) and a lead with SMS and email."""
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Shine",
            settings=OrgSettings(
                timezone="UTC", quiet_hours=QuietHours(), touch_budget=TouchBudget(per_24h=budget)
            ),
        )
        receipt, _ = record_intake_receipt(
            session,
            org_id=org.id,
            event_id=None,
            kind="lead",
            payload={
                "name": "Ada",
                "email": f"{uuid.uuid4().hex[:8]}@example.com",
                "phone": "+447911123456",
                "timezone": zone,
                "consent": {"sms": True, "email": True},
            },
        )
        lead_id = f"lead_{uuid.uuid4().hex}"
        record_lead(
            session,
            org_id=org.id,
            lead_id=lead_id,
            workflow_id=f"wf-{lead_id}",
            receipt_id=receipt.id,
        )
        return org.id, lead_id


def claim_touch(
    engine: Engine, *, org_id: str, lead_id: str, key: str, channel: Channel, now: datetime
) -> None:
    """Claim the lead's touch ``key`` on ``channel`` at ``now`` in a transaction of its own
    (``Deferred`` if the gate holds it back)."""
    with session_scope(engine) as session:
        claim_outbound_message(
            session,
            org_id=org_id,
            lead_id=lead_id,
            channel=channel,
            idempotency_key=f"{lead_id}/{key}",
            template="first_touch",
            now=now,
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone=st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]),
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    budget=st.integers(min_value=1, max_value=4),
    arrivals=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3 * 24 * 60),  # minutes after start
            st.integers(min_value=0, max_value=2),  # which of three workflows
            st.sampled_from([Channel.SMS, Channel.EMAIL]),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_a_contact_never_gets_more_than_the_budget_or_a_text_at_night(
    engine: Engine,
    zone: str,
    start: datetime,
    budget: int,
    arrivals: list[tuple[int, int, Channel]],
) -> None:
    """Three workflows ask for touches at random times; every deferred one asks again when
    the gate says. Whatever the order: at most ``budget`` touches in any 24 hours, and no
    text outside 08:00-21:00 in the contact's timezone."""
    org_id, lead_id = lead_of(engine, budget=budget, zone=zone)
    local = ZoneInfo(zone)
    counter = itertools.count()
    queue = [
        (start + timedelta(minutes=minutes), next(counter), f"wf{flow}/{n}", channel)
        for n, (minutes, flow, channel) in enumerate(arrivals)
    ]
    heapq.heapify(queue)
    sent: list[tuple[datetime, Channel]] = []
    horizon = start + timedelta(days=30)
    while queue:
        now, _, key, channel = heapq.heappop(queue)
        assert now < horizon, "a touch was held back for a month"
        try:
            claim_touch(engine, org_id=org_id, lead_id=lead_id, key=key, channel=channel, now=now)
        except Deferred as deferred:
            assert deferred.verdict.until is not None and deferred.verdict.until > now
            heapq.heappush(queue, (deferred.verdict.until, next(counter), key, channel))
            continue
        sent.append((now, channel))

    assert len(sent) == len(arrivals)  # every touch goes out in the end
    times = sorted(moment for moment, _ in sent)
    for i, moment in enumerate(times):
        in_window = [t for t in times[i:] if t < moment + timedelta(hours=24)]
        assert len(in_window) <= budget
    for moment, channel in sent:
        if channel == Channel.SMS:
            assert time(8) <= moment.astimezone(local).time() < time(21)


def test_two_claims_for_one_person_at_the_same_moment_count_the_budget_one_at_a_time(
    any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workflows claim a touch for the same person at once, with a budget of one a day:
    one goes and the other is held back, on SQLite (no row locks) as on PostgreSQL. Each
    claim pauses after passing the gate until the other has passed it too (or for a second,
    if the other is made to wait for the first): a claim that read the budget before the
    other wrote its touch would let both go."""
    engine = make_engine(any_db_url)
    org_id, lead_id = lead_of(engine, budget=1, zone="Europe/London")
    now = at(LONDON, 2026, 11, 23, 12, 0)
    both_checked = threading.Barrier(2)

    def check_then_pause(*args: Any, **kwargs: Any) -> Any:
        verdict = check_gate(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=1.0)
        return verdict

    monkeypatch.setattr(outbound, "check_gate", check_then_pause)
    outcomes: list[str] = []

    def claim(key: str) -> None:
        try:
            claim_touch(
                engine, org_id=org_id, lead_id=lead_id, key=key, channel=Channel.SMS, now=now
            )
            outcomes.append("sent")
        except Deferred:
            outcomes.append("held back")

    racers = [threading.Thread(target=claim, args=(key,)) for key in ("wf0/1", "wf1/1")]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    engine.dispose()
    assert sorted(outcomes) == ["held back", "sent"]
