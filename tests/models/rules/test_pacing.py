"""Pacing's rules: a sender's sends leave one gap apart, small timer delays don't slow the
pace, a quiet spell gives no burst, and a wait says why in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from models.rules.pacing import (
    STALE_GRACE,
    decide,
    interval,
    pace_reason,
    sender_key,
    stale_after,
)
from models.values import Channel

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_an_idle_sender_sends_at_once_and_the_next_waits_a_gap() -> None:
    first = decide(next_at=None, gap=SECOND, ahead=0, now=NOW)
    assert first.go and first.next_at == NOW + SECOND
    second = decide(next_at=first.next_at, gap=SECOND, ahead=0, now=NOW)
    assert not second.go and second.until == NOW + SECOND


def test_a_send_waits_one_gap_per_send_ahead_of_it() -> None:
    held = decide(next_at=NOW + SECOND, gap=SECOND, ahead=3, now=NOW)
    assert not held.go and held.until == NOW + 4 * SECOND and held.ahead == 3
    # Even when the slot has come, someone better waiting goes first.
    due = decide(next_at=NOW - SECOND / 2, gap=SECOND, ahead=1, now=NOW)
    assert not due.go and due.until == NOW + SECOND


def test_a_slot_taken_a_little_late_keeps_the_pace() -> None:
    late = decide(next_at=NOW - timedelta(milliseconds=300), gap=SECOND, ahead=0, now=NOW)
    assert late.go and late.next_at == NOW + timedelta(milliseconds=700)


def test_a_quiet_spell_gives_no_burst() -> None:
    quiet = decide(next_at=NOW - timedelta(hours=1), gap=SECOND, ahead=0, now=NOW)
    assert quiet.go and quiet.next_at == NOW + SECOND
    assert not decide(next_at=quiet.next_at, gap=SECOND, ahead=0, now=NOW).go


@given(
    st.lists(st.integers(min_value=0, max_value=3000), min_size=2, max_size=60),
    st.sampled_from([0.5, 1.0, 3.0, 100.0]),
)
def test_sends_never_beat_the_rate_over_any_run(delays_ms: list[int], per_second: float) -> None:
    """Whenever sends ask (each one some delay after the last answer), n sends take at least
    (n - 1) gaps, less one gap of slack for a late first slot."""
    gap = interval(per_second)
    next_at, now, sent = None, NOW, []
    for delay in delays_ms:
        now += timedelta(milliseconds=delay)
        slot = decide(next_at=next_at, gap=gap, ahead=0, now=now)
        if not slot.go:
            assert slot.until is not None
            now = slot.until
            slot = decide(next_at=next_at, gap=gap, ahead=0, now=now)
        assert slot.go
        sent.append(now)
        next_at = slot.next_at
    for i in range(len(sent)):
        for j in range(i + 1, len(sent)):
            assert sent[j] - sent[i] >= gap * (j - i - 1)


def test_a_wait_says_which_sender_how_fast_and_how_many_are_ahead() -> None:
    assert (
        pace_reason(channel=Channel.SMS, address="+15550001111", per_second=1, ahead=12)
        == "paced: +15550001111 sends 1 a second; 12 ahead"
    )
    assert (
        pace_reason(
            channel=Channel.EMAIL, address="Shine <hi@Demo.Example>", per_second=0.2, ahead=0
        )
        == "paced: demo.example sends one every 5 seconds"
    )
    # An org with no sender set (a dry run) is not named by its id.
    assert (
        pace_reason(channel=Channel.SMS, address=None, per_second=2, ahead=1)
        == "paced: the SMS sender sends 2 a second; 1 ahead"
    )


def test_each_org_paces_its_own_number_or_email_domain() -> None:
    assert sender_key(Channel.SMS, "+15550001111", org_id="org_1") == "org_1:sms:+15550001111"
    assert (
        sender_key(Channel.EMAIL, "Demo Cleaning <hi@Demo.Example>", org_id="org_1")
        == sender_key(Channel.EMAIL, "bob@demo.example", org_id="org_1")
        == "org_1:email:demo.example"
    )
    # Another org sending from the same domain has a queue of its own.
    assert sender_key(Channel.EMAIL, "bob@demo.example", org_id="org_2") != sender_key(
        Channel.EMAIL, "bob@demo.example", org_id="org_1"
    )
    assert sender_key(Channel.VOICE, None, org_id="org_1") == "org_1:voice:-"


def test_a_waiter_past_its_turn_is_given_up_after_two_gaps_and_fifteen_seconds_at_least() -> None:
    assert stale_after(timedelta(seconds=10)) == timedelta(seconds=20)
    assert stale_after(timedelta(milliseconds=10)) == STALE_GRACE == timedelta(seconds=15)
