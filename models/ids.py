"""Workflow ids and message keys derived from business keys, in one place.

No personal data is in any of them: a person appears only as an HMAC of their contact key, and
everything else is keepwarm's own ids. A key stored unique with a message (or escalation)
makes its side effect happen once, however often a workflow or webhook asks again.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # workflows import ids: keep the tables (and SQLAlchemy) out of them
    from models.tables import Escalation


def lead_workflow_id(*, org_id: str, org_secret: str, contact_key: str) -> str:
    """``lead-{org}-{hmac}``: stable per person, and no phone or email can be read back out.

    Keyed by the org's secret, so the hash can't be reversed by trying every phone number.
    """
    digest = hmac.new(org_secret.encode(), contact_key.encode(), hashlib.sha256).hexdigest()
    return f"lead-{org_id}-{digest[:24]}"


def human_reply_workflow_id(org_id: str, message_id: str) -> str:
    """The HumanReply workflow that sends an operator's reply: ``reply-{org}-{message}``."""
    return f"reply-{org_id}-{message_id}"


def notification_key(escalation_id: str, level: int) -> str:
    """The message that tells an operator of an escalation at ``level``, once."""
    return f"escalation/{escalation_id}/notify-{level}"


def confirmation_key(inbound_message_id: str) -> str:
    """keepwarm's one answer to a STOP, START or HELP message."""
    return f"confirm/{inbound_message_id}"


#: Prefix of a missed call's text-back key (``text-back/{inbound message}``).
TEXT_BACK_KEY = "text-back/"
#: Prefix of a takeover's idle-release notice key.
TAKEOVER_NOTICE_KEY = "takeover/"


def takeover_notice_key(thread_id: str, held_since: datetime) -> str:
    """The one notice an operator gets when their idle hold on a thread is released."""
    return f"{TAKEOVER_NOTICE_KEY}{thread_id}/{held_since:%Y%m%dT%H%M%S%f}"


def calls_exhausted_key(call_loop_workflow_id: str) -> str:
    """The one escalation a call loop opens when every attempt went unanswered."""
    return f"calls-exhausted/{call_loop_workflow_id}"


def identity_conflict_key(lead_id: str) -> str:
    """The one identity-conflict item a lead's intake opens."""
    return f"identity_conflict:{lead_id}"


def ladder_id(row: Escalation) -> str:
    """The Escalation workflow's id: ``escalation-{org}-{thread}`` (one ladder per
    conversation), else by the item."""
    return thread_ladder_id(row.org_id, row.thread_id or row.id)


def thread_ladder_id(org_id: str, thread_id: str) -> str:
    """The id of the Escalation workflow of a thread's escalations."""
    return f"escalation-{org_id}-{thread_id}"


def takeover_workflow_id(org_id: str, thread_id: str) -> str:
    """The thread's Takeover workflow: ``takeover-{org}-{thread}``."""
    return f"takeover-{org_id}-{thread_id}"


def lead_message_key(lead_workflow_id: str, lead_id: str, step: str) -> str:
    """A Lead workflow's own message (its first touch): ``{workflow}/{lead}/{step}``."""
    return f"{lead_workflow_id}/{lead_id}/{step}"


def sequence_key_prefix(lead_workflow_id: str, lead_id: str, sequence: str) -> str:
    """The prefix of every key a lead's run of ``sequence`` writes."""
    return f"{lead_workflow_id}/{lead_id}/{sequence}"


def nudge_workflow_id(lead_id: str, run: int) -> str:
    """The lead's ``run``-th NudgeSequence child: ``{lead}/nudge-{n}``."""
    return f"{lead_id}/nudge-{run}"


def step_key(key_prefix: str, step_number: int) -> str:
    """Sequence step ``step_number`` (from 1): its message, or its call loop's key prefix."""
    return f"{key_prefix}/{step_number}"


def voicemail_text_back_key(key_prefix: str) -> str:
    """The one text-back a sequence sends after a voicemail."""
    return f"{key_prefix}/voicemail-text-back"


def call_loop_workflow_id(lead_id: str, step_number: int) -> str:
    """The CallRetry child of a voice step: ``{lead}/calls-{n}``."""
    return f"{lead_id}/calls-{step_number}"


def call_key(key_prefix: str, attempt: int) -> str:
    """Call attempt ``attempt`` of a call loop: ``{prefix}/call-{n}``."""
    return f"{key_prefix}/call-{attempt}"


def appointment_workflow_id(org_id: str, booking_id: str) -> str:
    """A booking's Appointment workflow: ``appointment-{org}-{booking}``."""
    return f"appointment-{org_id}-{booking_id}"


def appointment_message_key(workflow_id: str, step: str) -> str:
    """One appointment message: ``{workflow_id}/{step}`` (``reminder-v2-86400``...)."""
    return f"{workflow_id}/{step}"


def payment_workflow_id(org_id: str, request_id: str) -> str:
    """A payment request's PaymentFollowup workflow: ``payment-{org}-{request}``."""
    return f"payment-{org_id}-{request_id}"
