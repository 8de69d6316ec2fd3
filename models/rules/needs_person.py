"""Who needs a person: complaint words and negative sentiment (VADER, a lexicon model loaded
once). Pure."""

from __future__ import annotations

import functools
import re

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

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
