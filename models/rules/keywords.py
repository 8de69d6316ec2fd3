"""Keyword texts: what an inbound SMS or WhatsApp message asks of keepwarm (STOP, START, HELP).

A keyword is the whole message, in any case. Twilio's Advanced Opt-Out, when it is on, says
which class it put the message in (``OptOutType``) and has already answered it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Whole-message keywords that withdraw SMS consent.
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
#: Whole-message keywords that restore it.
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
#: Opt-in words that are also answers to a question a message asked ("Reply YES"): replies.
OPT_IN_REPLIES = frozenset({"YES"})
#: Whole-message keywords that ask for the org's help reply.
HELP_WORDS = frozenset({"HELP", "INFO"})

Keyword = Literal["stop", "start", "help"]


@dataclass(frozen=True, kw_only=True)
class InboundText:
    """What an inbound text does besides being a message on the thread."""

    #: The consent it gives (``True``), withdraws (``False``) or leaves alone (``None``).
    consent: bool | None = None
    #: The keyword it is; ``None`` for a conversation (a reply to the lead).
    keyword: Keyword | None = None
    #: Whether keepwarm sends the keyword's confirmation (Twilio has not already).
    answer: bool = False


def classify(body: str, *, opt_out_type: str = "") -> InboundText:
    """Classify an inbound text by its ``body`` and Twilio's ``OptOutType`` (if any).

    Args:
        body: The message text.
        opt_out_type: Twilio's ``OptOutType`` (``STOP``, ``START``, ``HELP``) when Advanced
            Opt-Out is on, else empty.

    Returns:
        The consent change, the keyword and whether keepwarm answers it.
    """
    word = body.strip().upper()
    twilio_class = opt_out_type.upper()
    consent: bool | None = None
    keyword: Keyword | None = None
    if twilio_class == "STOP" or word in OPT_OUT_WORDS:
        consent, keyword = False, "stop"
    elif word in OPT_IN_REPLIES:
        consent = True  # an opt-in that is also an answer ("Reply YES"): a reply to the lead
    elif twilio_class == "START" or word in OPT_IN_WORDS:
        consent, keyword = True, "start"
    elif twilio_class == "HELP" or word in HELP_WORDS:
        keyword = "help"
    # With Twilio's Advanced Opt-Out on (OptOutType present), Twilio has already answered.
    return InboundText(
        consent=consent, keyword=keyword, answer=keyword is not None and not twilio_class
    )
