"""What keepwarm's own messages say (first touches, nudges, confirmations, the missed-call
text-back) and which of the org's numbers or addresses sends them. Pure."""

from __future__ import annotations

from datetime import timedelta

from models.schemas import (
    OrgSettings,
)
from models.values import (
    Channel,
)

TEMPLATES: dict[str, str] = {
    "first_touch": (
        "Hi {first_name}, thanks for getting in touch with {org_name}! "
        "We'll help with your request shortly. Reply here with any questions."
    ),
    # After a call went to voicemail: once per sequence, by the call-retry loop.
    "voicemail_text_back": (
        "Hi {first_name}, it's {org_name}: we just tried to call you about your enquiry. "
        "Reply here, or call us back whenever suits you."
    ),
}


#: Email subjects, per template.
SUBJECTS: dict[str, str] = {
    "first_touch": "Thanks for getting in touch with {org_name}",
}


def sender_address(settings: OrgSettings, channel: Channel) -> str | None:
    """The org's own number or mailbox that ``channel`` sends from (``None`` for a call)."""
    return {
        Channel.SMS: settings.sms_from,
        Channel.WHATSAPP: settings.whatsapp_from,
        Channel.EMAIL: settings.email_from,
    }.get(channel)


#: Keyword confirmations, by kind: what the person is told, once per keyword message.
CONFIRMATIONS = {
    "stop": "{org_name}: you are unsubscribed and will get no more messages. Reply START to "
    "resubscribe.",
    "start": "{org_name}: you are resubscribed. Reply HELP for help, STOP to unsubscribe.",
    "help": "{org_name}: reply STOP to unsubscribe. Msg&data rates may apply.",
}


#: The ``ConfirmationInput.kind`` of a missed call's text-back.
MISSED_CALL = "missed_call"


#: What someone whose call nobody picked up is texted. Plain GSM-7 characters (a hyphen, not
#: a dash), so it stays one SMS segment.
TEXT_BACK = (
    "Sorry we missed your call - {org_name} here. How can we help? Reply here and we'll get "
    "back to you."
)


#: At most one text-back to a caller's number in this long, however often they call.
TEXT_BACK_SPACING = timedelta(minutes=20)


def fill_safe(text: str) -> str:
    """Words someone wrote (a service, a description, a link), made safe to put inside a
    template the send fills with ``str.format_map``: their braces stay braces."""
    return text.replace("{", "{{").replace("}", "}}")
