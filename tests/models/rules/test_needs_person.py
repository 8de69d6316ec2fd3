"""What makes an inbound message page a person: complaint words, negative sentiment, VIPs."""

from __future__ import annotations

import pytest

from models.rules import needs_person
from models.rules.needs_person import NeedsPerson
from models.values import EscalationReason, Priority


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("This is TERRIBLE. I want my money back!", ["terrible", "money back"]),
        ("Very disappointed with the service", ["disappointed"]),
        ("I'm complaining about the terrible-ness", ["terrible"]),
        ("Can you do Saturday?", []),
        ("Refundable deposit?", []),  # whole words only
    ],
)
def test_complaint_words_are_whole_words_in_any_case(text: str, words: list[str]) -> None:
    assert needs_person.complaint_words(text) == words


@pytest.mark.parametrize(
    "text",
    [
        "The job was awful and your staff were rude",
        "I'm not happy",
        "I hate waiting",
        "This is TERRIBLE. I want my money back!",
    ],
)
def test_negative_messages_read_as_negative(text: str) -> None:
    assert needs_person.sentiment(text) <= needs_person.NEGATIVE_SENTIMENT


@pytest.mark.parametrize(
    "text",
    [
        "Can you do Saturday?",
        "No thanks",  # a polite no is not a complaint
        "Thanks!",
        "Is anyone there? I need a person.",
        "Could you also do the windows?",
        "I'm happy with it, not upset at all",
    ],
)
def test_ordinary_messages_page_nobody(text: str) -> None:
    assert needs_person.sentiment(text) > needs_person.NEGATIVE_SENTIMENT


def test_complaint_words_come_first_at_high_priority() -> None:
    verdict = needs_person.needs_person(
        "This is TERRIBLE. I want my money back!", customer_value=5000, vip_value=1000
    )

    assert verdict == NeedsPerson(
        reason=EscalationReason.COMPLAINT,
        priority=Priority.HIGH,
        summary="Inbound message reads as a complaint (terrible, money back): "
        "This is TERRIBLE. I want my money back!",
    )


def test_a_negative_message_without_complaint_words_is_medium() -> None:
    verdict = needs_person.needs_person("I'm not happy", customer_value=None, vip_value=None)

    assert verdict is not None
    assert (verdict.reason, verdict.priority) == ("negative_sentiment", "medium")
    assert verdict.summary.startswith("Inbound message reads as negative (sentiment -0.")


@pytest.mark.parametrize(
    ("value", "threshold", "vip"),
    [(1000.0, 1000.0, True), (999.0, 1000.0, False), (5000.0, None, False), (None, 10.0, False)],
)
def test_any_message_of_a_vip_needs_a_person(
    value: float | None, threshold: float | None, vip: bool
) -> None:
    verdict = needs_person.needs_person(
        "Can you do Saturday?", customer_value=value, vip_value=threshold
    )

    if vip:
        assert verdict == NeedsPerson(
            reason=EscalationReason.VIP,
            priority=Priority.MEDIUM,
            summary="Message from a VIP (value 1000, VIP from 1000): Can you do Saturday?",
        )
    else:
        assert verdict is None


def test_the_summary_quotes_the_start_of_a_long_message() -> None:
    verdict = needs_person.needs_person("refund " * 100, customer_value=None, vip_value=None)

    assert verdict is not None
    assert verdict.summary.endswith(("refund " * 100)[:300])
