"""Keyword texts: STOP, START and HELP change consent or ask for help; YES is a reply."""

from __future__ import annotations

import pytest

from models.rules.keywords import InboundText, classify


@pytest.mark.parametrize("body", ["STOP", " stop ", "Unsubscribe", "stopall", "QUIT", "optout"])
def test_an_opt_out_word_withdraws_consent_and_is_answered(body: str) -> None:
    assert classify(body) == InboundText(consent=False, keyword="stop", answer=True)


@pytest.mark.parametrize("body", ["START", "unstop"])
def test_an_opt_in_word_restores_consent(body: str) -> None:
    assert classify(body) == InboundText(consent=True, keyword="start", answer=True)


def test_yes_gives_consent_but_is_a_reply_to_the_lead() -> None:
    assert classify("yes") == InboundText(consent=True, keyword=None, answer=False)


@pytest.mark.parametrize("body", ["HELP", "info"])
def test_help_asks_for_the_help_reply_and_leaves_consent(body: str) -> None:
    assert classify(body) == InboundText(consent=None, keyword="help", answer=True)


@pytest.mark.parametrize("body", ["Please stop calling me at work", "Start on Monday?", ""])
def test_a_sentence_is_a_conversation(body: str) -> None:
    assert classify(body) == InboundText()


@pytest.mark.parametrize(
    ("opt_out_type", "expected"),
    [
        ("STOP", InboundText(consent=False, keyword="stop", answer=False)),
        ("start", InboundText(consent=True, keyword="start", answer=False)),
        ("HELP", InboundText(consent=None, keyword="help", answer=False)),
    ],
)
def test_twilio_advanced_opt_out_classifies_and_has_already_answered(
    opt_out_type: str, expected: InboundText
) -> None:
    assert classify("arrêt", opt_out_type=opt_out_type) == expected


def test_yes_is_a_reply_even_when_twilio_calls_it_an_opt_in() -> None:
    assert classify("YES", opt_out_type="START") == InboundText(
        consent=True, keyword=None, answer=False
    )
