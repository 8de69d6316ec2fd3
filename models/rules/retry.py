"""Retrying a failed send by hand: the class of its error, and when a retry is refused. Pure.

A retry sends the same row again (same text, same address, same key), so it is refused where
sending it again can't help or must not happen:

- the person opted out of the channel: never, forced or not (consent is read again when the
  retry sends, as for an operator's reply);
- the provider refused the message itself (``business_refusal``: an invalid number, an
  unverified sender domain): only with ``force``, once the cause is fixed, as the same
  request would be refused again;
- an email the provider accepted and then failed to deliver (a bounce): never, as it would
  bounce again and hurt the sender's reputation (an SMS a carrier failed to deliver may go
  again: handsets come back);
- an automated touch of a lead that has converted since: a follow-up would reach a customer;
- free WhatsApp text outside the customer's 24-hour session: WhatsApp refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.schemas.retry import SendErrorClass
from models.values import Channel, Direction, Sender, Stage


class RetryRefused(Exception):
    """The message can't be retried (``code`` names why, the message what to do)."""

    def __init__(self, code: str, message: str) -> None:
        """``code`` (snake_case) and what the admin can do about it."""
        super().__init__(message)
        self.code = code


def send_error_class(error: str | None) -> SendErrorClass:
    """The class a failed send's error text starts with (``down: Twilio answered 503``),
    else ``unknown``."""
    head, colon, _ = (error or "").partition(":")
    if not colon:
        return SendErrorClass.UNKNOWN
    try:
        return SendErrorClass(head.strip())
    except ValueError:
        return SendErrorClass.UNKNOWN


@dataclass(frozen=True, kw_only=True)
class RetryFacts:
    """What the retry rule reads about a failed message and its recipient."""

    direction: str
    channel: str
    sender: str
    error: str | None
    #: The provider accepted it before it failed (a delivery report said so).
    accepted: bool
    #: The recipient's consent on the message's channel (``None``: a person of the business,
    #: or never asked).
    consent: bool | None
    #: The stage of the lead it was sent for, if any.
    lead_stage: str | None
    #: Free WhatsApp text while the customer's 24-hour session is closed.
    whatsapp_closed: bool


def retry_refusal(facts: RetryFacts, *, force: bool) -> RetryRefused | None:
    """Why the failed message may not be sent again (see the module), or ``None``."""
    if facts.direction != Direction.OUTBOUND:
        return RetryRefused("not_outbound", "Only messages keepwarm sent can be retried.")
    if facts.consent is False:
        return RetryRefused(
            "opted_out",
            f"The person opted out of {facts.channel}: nothing is sent to them there again "
            "unless they opt back in.",
        )
    if facts.accepted and facts.channel == Channel.EMAIL:
        return RetryRefused(
            "bounced",
            "The provider took this email and it was not delivered (a bounce): it would bounce "
            "again. Correct the address instead.",
        )
    if send_error_class(facts.error) == SendErrorClass.BUSINESS_REFUSAL and not force:
        return RetryRefused(
            "business_refusal",
            f"The provider refused this message itself ({facts.error}); the same message "
            'would be refused again. Fix the cause first, then retry with {"force": true}.',
        )
    if facts.sender == Sender.AI and facts.lead_stage == Stage.CONVERTED:
        return RetryRefused(
            "lead_converted",
            "The lead has converted since: this automated follow-up would reach a customer.",
        )
    if facts.whatsapp_closed:
        return RetryRefused(
            "whatsapp_session_closed",
            "WhatsApp allows free text only within 24 h of the customer's last WhatsApp "
            "message; reply by SMS or email instead.",
        )
    return None
