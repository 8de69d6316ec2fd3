"""Who needs a person: an inbound message that reads as a complaint, one whose sentiment is
negative, or any message of a VIP opens an escalation on its thread."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from models.values import EscalationReason, Priority

#: Words and phrases that make an inbound message read as a complaint (whole words, any
#: case). Deliberately plain: a person reads every flag, so a false alarm costs a glance.
COMPLAINT_WORDS = (
    "complaint",
    "complain",
    "refund",
    "terrible",
    "awful",
    "disgusting",
    "unacceptable",
    "furious",
    "angry",
    "rude",
    "scam",
    "lawyer",
    "worst",
    "disappointed",
    "never again",
    "money back",
)


#: A message whose VADER compound score is at or below this reads as negative ("I'm not
#: happy" is -0.46, "No thanks" -0.34, "The job was awful and your staff were rude" -0.72).
NEGATIVE_SENTIMENT = -0.45
#: Characters of a message scored (a long email's gist is in its start).
SENTIMENT_CHARS = 2000
#: Characters of the message quoted in the escalation's summary.
QUOTED_CHARS = 300


@functools.cache
def _sentiment_model() -> SentimentIntensityAnalyzer:
    """VADER's lexicon (7,500 rated words, negation and emphasis rules), loaded once."""
    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """How negative or positive ``text`` reads: VADER's compound score, -1 to 1."""
    return float(_sentiment_model().polarity_scores(text[:SENTIMENT_CHARS])["compound"])


def complaint_words(text: str) -> list[str]:
    """The complaint words ``text`` contains, in the order listed."""
    lowered = f" {' '.join(re.findall(r'[a-z]+', text.lower()))} "
    return [word for word in COMPLAINT_WORDS if f" {word} " in lowered]


@dataclass(frozen=True, kw_only=True)
class NeedsPerson:
    """Why a message needs a person, as the escalation it opens."""

    reason: EscalationReason
    priority: Priority
    summary: str


def needs_person(
    text: str, *, customer_value: float | None, vip_value: float | None
) -> NeedsPerson | None:
    """Whether an inbound message needs a person, and why.

    In order: complaint words (high priority), negative sentiment (medium), a VIP, a
    contact worth at least the org's ``vip_value`` (medium).

    Args:
        text: The message.
        customer_value: What the contact is worth (``None``: not known, no VIP rule).
        vip_value: The org's VIP threshold (``None``: the org has no VIP rule).

    Returns:
        The escalation to open, or ``None`` when the message can wait for the AI.
    """
    quoted = text[:QUOTED_CHARS]
    words = complaint_words(text)
    if words:
        return NeedsPerson(
            reason=EscalationReason.COMPLAINT,
            priority=Priority.HIGH,
            summary=f"Inbound message reads as a complaint ({', '.join(words)}): {quoted}",
        )
    score = sentiment(text)
    if score <= NEGATIVE_SENTIMENT:
        return NeedsPerson(
            reason=EscalationReason.NEGATIVE_SENTIMENT,
            priority=Priority.MEDIUM,
            summary=f"Inbound message reads as negative (sentiment {score:.2f}): {quoted}",
        )
    if vip_value is None or customer_value is None or customer_value < vip_value:
        return None
    return NeedsPerson(
        reason=EscalationReason.VIP,
        priority=Priority.MEDIUM,
        summary=(
            f"Message from a VIP (value {customer_value:.0f}, VIP from {vip_value:.0f}): {quoted}"
        ),
    )
