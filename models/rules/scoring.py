"""Intent scoring: the org's rules turn a lead's value, source and words into a score and an
intent. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.schemas import ScoringRules
from models.values import Intent


@dataclass(frozen=True, kw_only=True)
class Scored:
    """A lead's score, its intent and every rule that contributed."""

    score: int
    intent: Intent
    reasons: tuple[str, ...]


def score_lead(
    rules: ScoringRules,
    *,
    value: float | None,
    source: str | None,
    message: str | None,
    returning_customer: bool,
) -> Scored:
    """Apply ``rules``: base, the highest value tier reached, the source, each word or phrase
    found in the message (whole words, any case, counted once) and a returning customer;
    clamped to 0-100. A message with an explicit request (``rules.requests``) and no
    phrase worth less than nothing lifts the score to ``engaged`` at least."""
    total = rules.base
    reasons = [f"base {rules.base:+d}"]
    if value is not None:
        tier = max(
            (t for t in rules.value_tiers if value >= t.min), key=lambda t: t.min, default=None
        )
        if tier is not None and tier.points:
            total += tier.points
            reasons.append(f"value {value:g} ≥ {tier.min:g} {tier.points:+d}")
    if source:
        points = {k.lower(): v for k, v in rules.sources.items()}.get(source.strip().lower())
        if points:
            total += points
            reasons.append(f"source {source.strip().lower()} {points:+d}")
    if message:
        for phrase, points in sorted(rules.words.items()):
            if points and _mentions(message, phrase):
                total += points
                reasons.append(f"mentions {phrase.lower()!r} {points:+d}")
    if returning_customer and rules.returning_customer:
        total += rules.returning_customer
        reasons.append(f"returning customer {rules.returning_customer:+d}")
    score = max(0, min(100, total))
    asked = next((word for word in rules.requests if message and _mentions(message, word)), None)
    # "Just looking, what's the price?" is not a request: a phrase worth less says so.
    hedged = any(
        points < 0 and message and _mentions(message, phrase)
        for phrase, points in rules.words.items()
    )
    if asked is not None and not hedged and score < rules.thresholds.engaged:
        score = rules.thresholds.engaged
        reasons.append(f"asks for {asked.lower()!r}: at least engaged")
    return Scored(score=score, intent=_intent(rules, score), reasons=tuple(reasons))


def _mentions(message: str, phrase: str) -> bool:
    words = r"\s+".join(re.escape(part) for part in phrase.lower().split())
    return re.search(rf"(?<!\w){words}(?!\w)", message.lower()) is not None


def _intent(rules: ScoringRules, score: int) -> Intent:
    thresholds = rules.thresholds
    if score >= thresholds.high_value:
        return Intent.HIGH_VALUE
    if score >= thresholds.engaged:
        return Intent.ENGAGED
    if score >= thresholds.window_shopper:
        return Intent.WINDOW_SHOPPER
    return Intent.BROWSING
