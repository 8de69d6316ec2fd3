"""What makes an inbound message page a person: complaint words, negative sentiment."""

from __future__ import annotations

import pytest

from models import attention


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
    assert attention.complaint_words(text) == words


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
    assert attention.sentiment(text) <= attention.NEGATIVE_SENTIMENT


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
    assert attention.sentiment(text) > attention.NEGATIVE_SENTIMENT
