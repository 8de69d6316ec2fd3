"""Intent scoring: the org's rules, applied the same way every time, with their reasons."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.rules.scoring import score_lead
from models.schemas import OrgSettingsPatch, ScoringRules
from models.values import Intent

RULES = ScoringRules()


def score(**facts: object) -> tuple[int, Intent, tuple[str, ...]]:
    values: dict[str, object] = {
        "value": None,
        "source": None,
        "message": None,
        "returning_customer": False,
    }
    values.update(facts)
    scored = score_lead(RULES, **values)  # type: ignore[arg-type]
    return scored.score, scored.intent, scored.reasons


def test_a_bare_lead_is_browsing_with_only_the_base() -> None:
    assert score() == (10, Intent.BROWSING, ("base +10",))


def test_every_rule_that_fires_is_a_reason() -> None:
    points, intent, reasons = score(
        value=300, source="Referral", message="Need a QUOTE asap please", returning_customer=True
    )

    assert points == 10 + 25 + 20 + 20 + 10 + 15
    assert intent == Intent.HIGH_VALUE
    assert reasons == (
        "base +10",
        "value 300 ≥ 250 +25",
        "source referral +20",
        "mentions 'asap' +20",
        "mentions 'quote' +10",
        "returning customer +15",
    )


def test_only_the_highest_value_tier_counts() -> None:
    assert score(value=49)[0] == 10
    assert score(value=50)[0] == 20
    assert score(value=5000)[0] == 50


def test_words_match_whole_words_and_phrases_once() -> None:
    assert score(message="Rebooking urgently")[0] == 10  # not "book", not "urgent"
    assert score(message="book book BOOK")[2][:2] == ("base +10", "mentions 'book' +10")
    assert score(message="I'm just   looking, thanks")[:2] == (0, Intent.BROWSING)  # -15, clamped


def test_a_quote_request_is_warm_enough_to_text_first() -> None:
    # The intake form from issue 19: a website form with "Need a quote for a deep clean"
    # scored 30 (a window shopper, emailed first); an explicit request is at least engaged.
    points, intent, reasons = score(source="website_form", message="Need a quote for a deep clean")

    assert (points, intent) == (45, Intent.ENGAGED)
    assert reasons[-1] == "asks for 'quote': at least engaged"
    assert score(message="Can I book Tuesday?")[1] == Intent.ENGAGED
    # A hedged question is not a request; a message without one is scored as before.
    assert score(message="Just looking, what's your price?")[1] == Intent.BROWSING
    assert score(message="Please cancel my booking")[1] == Intent.BROWSING
    assert score(source="website_form", message="Nice site")[:2] == (20, Intent.WINDOW_SHOPPER)
    # An org that lists no request words keeps its plain score.
    plain = ScoringRules(requests=[])
    assert (
        score_lead(
            plain,
            value=None,
            source="website_form",
            message="Need a quote",
            returning_customer=False,
        ).intent
        == Intent.WINDOW_SHOPPER
    )


def test_the_score_is_clamped_to_100() -> None:
    points, intent, _ = score(
        value=10_000, source="referral", message="urgent asap today quote book price"
    )
    assert (points, intent) == (100, Intent.HIGH_VALUE)


@pytest.mark.parametrize(
    ("value", "intent"),
    [(None, Intent.BROWSING), (50, Intent.WINDOW_SHOPPER), (250, Intent.WINDOW_SHOPPER)],
)
def test_thresholds_pick_the_intent(value: float | None, intent: Intent) -> None:
    assert score(value=value)[1] == intent


def test_an_orgs_own_rules_and_thresholds_apply() -> None:
    rules = ScoringRules(
        base=0,
        sources={"instagram": 50},
        words={"wedding": 30},
        thresholds={"high_value": 80, "engaged": 50, "window_shopper": 10},
    )
    scored = score_lead(
        rules,
        value=None,
        source="instagram",
        message="for my wedding",
        returning_customer=False,
    )
    assert (scored.score, scored.intent) == (80, Intent.HIGH_VALUE)


@pytest.mark.parametrize(
    "scoring",
    [
        {"thresholds": {"high_value": 40, "engaged": 45, "window_shopper": 20}},
        {"base": 500},
        {"words": {"": 5}},
        {"value_tiers": [{"min": -1, "points": 5}]},
        {"unknown_rule": 1},
        {"requests": ["Quote", "quote "]},
        {"requests": [""]},
    ],
)
def test_bad_rules_are_refused(scoring: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OrgSettingsPatch.model_validate({"scoring": scoring})
