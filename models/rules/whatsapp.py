"""WhatsApp's 24-hour session: free text inside it, the org's approved template outside it,
and how a template send is stored on its message. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from models.tables import (
    Message,
)
from models.values import (
    Channel,
)

#: WhatsApp's customer service window: free text only this long after the customer's last
#: WhatsApp message, an approved template otherwise.
WHATSAPP_SESSION = timedelta(hours=24)


#: Why a WhatsApp touch outside the session fails when the org has no template.
WHATSAPP_NO_TEMPLATE = (
    "WhatsApp: more than 24 h since the customer's last message and no whatsapp_template_sid is set"
)


#: A WhatsApp row's ``subject`` (WhatsApp has none) starting with this was claimed as a
#: template send: ``template:{content_sid} {content_variables}``, the exact values Twilio gets.
WHATSAPP_TEMPLATE_MARK = "template:"


#: Template variables are short; this keeps the marker inside the 300-character column.
_TEMPLATE_VARIABLE_MAX = 60


@dataclass(frozen=True, kw_only=True)
class WhatsAppTemplate:
    """The Content API template a WhatsApp message was claimed to go out as."""

    content_sid: str
    #: A JSON object of the template's variables (``{"1": first name}``), as Twilio takes it.
    content_variables: str


def whatsapp_template(message: Message) -> WhatsAppTemplate | None:
    """The template ``message`` goes out as, or ``None`` for free text (fixed at claim)."""
    if message.channel != Channel.WHATSAPP or not message.subject:
        return None
    if not message.subject.startswith(WHATSAPP_TEMPLATE_MARK):
        return None
    content_sid, _, variables = message.subject.removeprefix(WHATSAPP_TEMPLATE_MARK).partition(" ")
    return WhatsAppTemplate(content_sid=content_sid, content_variables=variables or "{}")
