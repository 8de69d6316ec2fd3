"""Enums and small value types shared by every package."""

from __future__ import annotations

import uuid
from enum import StrEnum


class ProviderMode(StrEnum):
    """Whether outbound messages leave the machine."""

    DRY_RUN = "dry_run"
    LIVE = "live"


class Channel(StrEnum):
    """A way of reaching a person."""

    SMS = "sms"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    VOICE = "voice"


def consent_channel(channel: Channel) -> Channel:
    """The channel whose consent governs ``channel``: WhatsApp shares SMS consent."""
    return Channel.SMS if channel == Channel.WHATSAPP else channel


class Stage(StrEnum):
    """Where a lead stands in its lifecycle (DESIGN.md "Lead lifecycle")."""

    NEW = "new"
    CONTACTED = "contacted"
    ENGAGED = "engaged"
    QUOTED = "quoted"
    CONVERTED = "converted"
    GHOSTING = "ghosting"
    LOST = "lost"
    OPTED_OUT = "opted_out"


CLOSED_STAGES = frozenset({Stage.CONVERTED, Stage.LOST, Stage.OPTED_OUT})


class Intent(StrEnum):
    """How likely a lead is to buy, from intent scoring."""

    HIGH_VALUE = "high_value"
    ENGAGED = "engaged"
    WINDOW_SHOPPER = "window_shopper"
    BROWSING = "browsing"


class Direction(StrEnum):
    """Which way a message travelled."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Sender(StrEnum):
    """Who wrote a message."""

    CUSTOMER = "customer"
    AI = "ai"
    HUMAN = "human"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    """A message's delivery state. ``simulated`` is a dry-run send."""

    PENDING = "pending"
    SIMULATED = "simulated"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    #: An inbound message, as the provider handed it over.
    RECEIVED = "received"


#: How far along each status is; a delivery report only ever moves a message forward.
#: A failure ends a message that has not been delivered; a delivered one stays delivered.
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.PENDING: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.SIMULATED: 3,
    MessageStatus.RECEIVED: 3,
}


#: Statuses after which a send must never be attempted again.
SETTLED_STATUSES = frozenset(
    {MessageStatus.SIMULATED, MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.DELIVERED}
)


class IdentityKind(StrEnum):
    """A kind of identifier that can point at a contact."""

    EMAIL = "email"
    PHONE = "phone"
    STRIPE_CUSTOMER = "stripe_customer"
    SHOPIFY_CUSTOMER = "shopify_customer"
    INSTAGRAM = "instagram"


#: Platform ids an intake may carry in ``fields``, and the identity kind each links.
PLATFORM_ID_FIELDS: dict[str, IdentityKind] = {
    "stripe_customer_id": IdentityKind.STRIPE_CUSTOMER,
    "shopify_customer_id": IdentityKind.SHOPIFY_CUSTOMER,
    "instagram_id": IdentityKind.INSTAGRAM,
}


class TimelineKind(StrEnum):
    """What a timeline entry records."""

    INTAKE = "intake"
    REPEAT_INTAKE = "repeat_intake"
    STAGE_CHANGED = "stage_changed"
    TOUCH_SENT = "touch_sent"
    TOUCH_SKIPPED = "touch_skipped"
    TOUCH_DEFERRED = "touch_deferred"
    DELIVERY = "delivery"
    ENGAGEMENT = "engagement"
    REPLY = "reply"
    CONSENT = "consent"
    CALL = "call"
    PAYMENT = "payment"
    SCORED = "scored"
    IDENTITY_CONFLICT = "identity_conflict"
    CONTACT_MERGED = "contact_merged"
    BOOKING = "booking"
    ESCALATION = "escalation"
    TAKEOVER = "takeover"


class BookingStatus(StrEnum):
    """Where a booked visit stands."""

    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


#: A visit still ahead (its reminders may go, the customer may confirm or ask to move it).
UPCOMING_BOOKINGS = frozenset({BookingStatus.SCHEDULED, BookingStatus.CONFIRMED})


class VisitEvent(StrEnum):
    """What the provider (or a field app) reports about a visit."""

    ON_MY_WAY = "on_my_way"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


class WebhookProvider(StrEnum):
    """A provider that posts signed webhooks to keepwarm."""

    TWILIO = "twilio"
    RESEND = "resend"
    STRIPE = "stripe"
    VAPI = "vapi"


class CallStatus(StrEnum):
    """Where an outbound call stands."""

    PENDING = "pending"
    SIMULATED = "simulated"
    QUEUED = "queued"
    ENDED = "ended"
    FAILED = "failed"


class CallOutcome(StrEnum):
    """What an ended call means for the call-retry loop (``models.calls.outcome_of``)."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    #: Misdialled or unallocated: never retried, and the number is marked invalid.
    INVALID_NUMBER = "invalid_number"
    #: Pipeline, carrier and unknown errors (the reason itself is kept verbatim).
    FAILED = "failed"


class ThreadStatus(StrEnum):
    """Where a conversation stands in the inbox."""

    #: The customer wrote last and nobody has answered or resolved it.
    UNREAD = "unread"
    #: An operator has it (a takeover).
    ASSIGNED = "assigned"
    #: Its last open escalation was resolved; the customer's next message reopens it.
    RESOLVED = "resolved"


class HandledBy(StrEnum):
    """Who writes to the customer on a thread: the AI, or a person who took it over."""

    AI = "ai"
    HUMAN = "human"


class Priority(StrEnum):
    """How soon a person must look: an escalation's, and its thread's (lowest first: a thread
    takes the highest of its open escalations)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class EscalationReason(StrEnum):
    """Why keepwarm itself put an item in the queue (an agent's flag names its own)."""

    IDENTITY_CONFLICT = "identity_conflict"
    COMPLAINT = "complaint"
    NEGATIVE_SENTIMENT = "negative_sentiment"
    VIP = "vip"
    CALL_ATTEMPTS_EXHAUSTED = "call_attempts_exhausted"
    #: A customer replied R to a visit's text: someone should find them a new time.
    RESCHEDULE_REQUEST = "reschedule_request"
    #: A customer rated a visit 2 or less.
    LOW_RATING = "low_rating"


class UiEventKind(StrEnum):
    """What changed, for the live pages: the subject whose fragments a page re-fetches."""

    THREAD = "thread"
    LEAD = "lead"
    ESCALATION = "escalation"
    CONTACT = "contact"
    #: An alert opened, fired, acknowledged or resolved (its id), or a run of the health
    #: checks judged the org (``health``).
    ALERT = "alert"


class OperatorRole(StrEnum):
    """An operator answers threads; the owner is also the escalation ladder's last rung."""

    OPERATOR = "operator"
    OWNER = "owner"


class EscalationStatus(StrEnum):
    """Where an item of the needs-attention queue stands."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class HealthStatus(StrEnum):
    """A health check's verdict (API.md "Health and alerts")."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    #: The check could not tell (its source did not answer).
    UNKNOWN = "unknown"


class ProviderHealth(StrEnum):
    """What a provider's answer says about the account, for probes and failed sends alike.

    ``BUSINESS_REFUSAL`` is the provider refusing this one request (a bad number, an opted-out
    recipient): the account is fine.
    """

    OK = "ok"
    #: 401/403: the key or token was revoked, rotated or mistyped.
    CREDENTIALS_REJECTED = "credentials_rejected"
    #: The account exists but the provider suspended or closed it.
    SUSPENDED = "suspended"
    #: 5xx, 429 after retries, timeouts, refused connections.
    DOWN = "down"
    BUSINESS_REFUSAL = "business_refusal"
    #: No credentials set for it in this deployment (nothing to probe).
    NOT_CONFIGURED = "not_configured"


class AlertState(StrEnum):
    """An alert's lifecycle (HEALTH.md): pending until its condition has held long enough,
    firing once notified, acknowledged by a person, recovering while its condition stays clear,
    resolved."""

    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RECOVERING = "recovering"
    RESOLVED = "resolved"


def new_id(prefix: str) -> str:
    """A random, prefixed identifier such as ``lead_3f2a...``."""
    return f"{prefix}_{uuid.uuid4().hex}"
