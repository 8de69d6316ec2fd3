"""SQLModel tables. Every row carries ``org_id``: tenancy is enforced in every query.

Timestamps are timezone-aware UTC (``UtcDateTime`` restores the zone SQLite drops).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = False) -> Any:
    column: Column[datetime] = Column(UtcDateTime(), nullable=nullable)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


#: The lead list's value sort key: a lead without a value sorts after every lead with one.
#: One expression for the index and the query, so PostgreSQL and SQLite match them.
VALUE_SORT_KEY = "coalesce(value, -1.0)"


def _trigram(name: str, column: str) -> Index:
    """A trigram index on ``column`` for substring search (``ILIKE '%q%'``) on PostgreSQL.

    SQLite has no such index; there it is declared empty (``WHERE 0``) only so both databases
    keep one schema, and a search scans, which the embedded scale affords.
    """
    return Index(
        name,
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
        sqlite_where=false(),
    )


def _wait_index(name: str, *columns: str, reached: str = "first_contact_at") -> Index:
    """An index of the org's touched leads (of ``columns``) ordered by their wait to the first
    touch (or to ``reached``: the first call), for PostgreSQL: speed to lead's k-th wait read
    off it in order (``models.reads.pipeline``, ``models.reads.agents``), without sorting
    every wait. Declared empty on SQLite, like ``_trigram``: its percentiles number the
    window's waits instead."""
    return Index(
        name,
        "org_id",
        *columns,
        text(f"({reached} - created_at)"),
        postgresql_include=["created_at", reached],
        postgresql_where=text(f"{reached} IS NOT NULL"),
        sqlite_where=false(),
    )


def _choice(default: str) -> Any:
    # A server default too, so rows that existed before the column was added get it.
    return Field(default=default, max_length=16, sa_column_kwargs={"server_default": default})


class Org(SQLModel, table=True):
    """A business using keepwarm. ``settings`` holds the validated ``OrgSettings``."""

    __tablename__ = "orgs"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    api_key_hash: str = Field(max_length=64, unique=True)
    api_key_prefix: str = Field(max_length=16)
    #: Keys the hashes in workflow ids, so an id can't be matched to a phone by brute force.
    id_secret: str = Field(max_length=64)
    settings: dict[str, Any] = _json()
    created_at: datetime = _ts()


class Contact(SQLModel, table=True):
    """A person, resolved from one or more identities."""

    __tablename__ = "contacts"
    __table_args__ = (_trigram("ix_contacts_name_trgm", "name"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", index=True, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()


class Identity(SQLModel, table=True):
    """An identifier (email, E.164 phone, platform id) that points at one contact."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("org_id", "kind", "value", name="uq_identity_org_kind_value"),
        _trigram("ix_identities_value_trgm", "value"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", index=True, max_length=40)
    kind: str = Field(max_length=32)
    value: str = Field(max_length=320)
    created_at: datetime = _ts()
    #: Set when a provider said the number can't be reached (a misdialled or unallocated
    #: number): nothing is sent or dialled to it again.
    invalid_at: datetime | None = _ts(nullable=True)
    invalid_reason: str | None = Field(default=None, max_length=200)


class ConsentRecord(SQLModel, table=True):
    """One consent change for a contact and channel, with where it came from."""

    __tablename__ = "consent_records"

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", index=True, max_length=40)
    channel: str = Field(max_length=16)
    granted: bool
    source: str = Field(max_length=64)
    evidence: str = Field(max_length=200)
    recorded_at: datetime = _ts()


#: When a thread last moved: its last message, or its opening while it has none.
THREAD_ACTIVITY = "coalesce(last_message_at, created_at)"


class Thread(SQLModel, table=True):
    """The one conversation a business has with a contact, across channels: an inbox entry.

    ``last_message_at`` and ``last_inbound_at`` follow the messages written on it
    (``store.threads.touch_thread``); an inbound message makes it ``unread`` again.
    """

    __tablename__ = "threads"
    __table_args__ = (
        # The inbox's default order (``sort=recent``, keyset pages) read straight off an index;
        # on PostgreSQL it carries what the agents read of the threads that moved in a window
        # (``reads.agents``), so they read the index, not the (often updated) rows.
        Index(
            "ix_threads_org_activity",
            "org_id",
            text(THREAD_ACTIVITY),
            "id",
            postgresql_include=[
                "contact_id",
                "last_inbound_at",
                "last_human_at",
                "held_since",
                "last_message_at",
                "created_at",
            ],
        ),
        Index("ix_threads_org_status", "org_id", "status"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", index=True, max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", unique=True, max_length=40)
    created_at: datetime = _ts()
    #: ``unread``, ``assigned`` or ``resolved``.
    status: str = _choice("unread")
    #: ``ai`` or ``human``: who answers the contact now.
    handled_by: str = _choice("ai")
    #: ``low``, ``medium``, ``high`` or ``urgent``.
    priority: str = _choice("low")
    #: The operator the thread is assigned to.
    assigned_to: str | None = Field(default=None, max_length=40)
    last_message_at: datetime | None = _ts(nullable=True)
    last_inbound_at: datetime | None = _ts(nullable=True)
    #: The takeover lock: the operator holding the thread, since when, and their last message.
    held_by: str | None = Field(default=None, max_length=40)
    held_since: datetime | None = _ts(nullable=True)
    last_human_at: datetime | None = _ts(nullable=True)


class IntakeReceipt(SQLModel, table=True):
    """An accepted intake submission, recorded by the API before its workflow hears of it.

    The payload (which holds personal data) stays here; workflows only carry the receipt id.
    """

    __tablename__ = "intake_receipts"
    __table_args__ = (UniqueConstraint("org_id", "event_id", name="uq_intake_org_event"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    event_id: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = _json()
    lead_id: str | None = Field(default=None, max_length=40)
    received_at: datetime = _ts()


class Lead(SQLModel, table=True):
    """One sales opportunity with a contact, worked by one Lead workflow run."""

    __tablename__ = "leads"
    __table_args__ = (
        # A window's leads; on PostgreSQL with what the agents' cohorts read (``reads.agents``).
        Index(
            "ix_leads_org_created",
            "org_id",
            "created_at",
            postgresql_include=[
                "first_contact_at",
                "first_call_at",
                "replied_at",
                "taken_over_at",
            ],
        ),
        # The lead list: a page in each documented sort, with or without its filters, is a
        # range of one of these, read in order (``reads.leads``).
        Index("ix_leads_org_recent", "org_id", "created_at", "id"),
        Index("ix_leads_org_score", "org_id", "score", "created_at", "id"),
        Index("ix_leads_org_value", "org_id", text(VALUE_SORT_KEY), "created_at", "id"),
        Index("ix_leads_org_stage_recent", "org_id", "stage", "created_at", "id"),
        Index("ix_leads_org_source_recent", "org_id", "source", "created_at", "id"),
        _trigram("ix_leads_message_trgm", "message"),
        # The pipeline report reads only these columns: an index-only scan of the window.
        Index(
            "ix_leads_org_report",
            "org_id",
            "created_at",
            "source",
            "stage",
            "value",
            "first_contact_at",
            "first_contact_channel",
        ),
        # The pipeline report's counts over all time (or of one source): the org's leads in
        # group order, with what is counted (``reads.pipeline.lead_figures``).
        Index(
            "ix_leads_org_groups",
            "org_id",
            "source",
            "first_contact_channel",
            "stage",
            postgresql_include=["first_contact_at", "value"],
        ),
        # A contact's first lead, whose source earns the contact's revenue.
        Index("ix_leads_contact_first", "contact_id", "created_at", "id", "source"),
        _wait_index("ix_leads_wait"),
        _wait_index("ix_leads_wait_source", "source"),
        _wait_index("ix_leads_wait_channel", "first_contact_channel"),
        _wait_index("ix_leads_call_wait", reached="first_call_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", index=True, max_length=40)
    workflow_id: str = Field(max_length=200, index=True)
    stage: str = Field(max_length=16)
    score: int = 0
    intent: str | None = Field(default=None, max_length=32)
    source: str | None = Field(default=None, max_length=100)
    value: float | None = None
    message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    fields: dict[str, Any] = _json()
    timezone: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    first_contact_at: datetime | None = _ts(nullable=True)
    #: The channel of that first touch (speed to lead by channel reads it with the time).
    first_contact_channel: str | None = Field(default=None, max_length=16)
    #: What the agents' figures count (``store.agent_days``), each stamped once, when it first
    #: happens: the first call placed to the lead; the contact's first message after the
    #: first touch; the first time a person stepped in on the contact's thread (a message
    #: or a hold) since the lead came in.
    first_call_at: datetime | None = _ts(nullable=True)
    replied_at: datetime | None = _ts(nullable=True)
    taken_over_at: datetime | None = _ts(nullable=True)


class TimelineEvent(SQLModel, table=True):
    """Something that happened to a lead, in words an operator can read."""

    __tablename__ = "timeline_events"
    __table_args__ = (
        Index("ix_timeline_lead_at", "lead_id", "at"),
        Index(
            "ix_timeline_booking_at",
            "booking_id",
            "at",
            postgresql_where=text("booking_id IS NOT NULL"),
            sqlite_where=text("booking_id IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str = Field(foreign_key="leads.id", max_length=40)
    kind: str = Field(max_length=32)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    data: dict[str, Any] = _json()
    at: datetime = _ts()
    #: The booking it is about, if any: the booking's own timeline.
    booking_id: str | None = Field(default=None, max_length=40)


class Message(SQLModel, table=True):
    """A message in or out. Outbound rows are written before the provider call.

    ``idempotency_key`` (``{workflow_id}/{step}``) is unique, so a retried send finds its row.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_org_created", "org_id", "created_at"),
        Index("ix_messages_org_provider_id", "org_id", "provider_message_id"),
        # The inbox: a thread's latest message, and whether it has one on a channel.
        Index("ix_messages_thread_created", "thread_id", "created_at", "id"),
        Index("ix_messages_thread_channel", "thread_id", "channel"),
        # The agents' count and cost of AI messages in a window: a range of a channel's
        # entries in each, sent live (what costs) or not (``reads.agents``) ...
        Index(
            "ix_messages_ai_sent_live",
            "org_id",
            "channel",
            "created_at",
            postgresql_where=text(
                "sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL AND mode = 'live'"
            ),
            sqlite_where=text(
                "sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL AND mode = 'live'"
            ),
        ),
        Index(
            "ix_messages_ai_sent_other",
            "org_id",
            "channel",
            "created_at",
            postgresql_where=text(
                "sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL "
                "AND (mode IS NULL OR mode <> 'live')"
            ),
            sqlite_where=text(
                "sender = 'ai' AND direction = 'outbound' AND sent_at IS NOT NULL "
                "AND (mode IS NULL OR mode <> 'live')"
            ),
        ),
        # ... and the latest failed send (an agent's last provider error).
        Index(
            "ix_messages_failed",
            "org_id",
            "created_at",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
        _trigram("ix_messages_body_trgm", "body"),
        # A sequence's results: its steps' sends by step and variant in a window.
        Index(
            "ix_messages_sequence_step",
            "org_id",
            "sequence",
            "step",
            "sent_at",
            postgresql_where=text("sequence IS NOT NULL"),
            sqlite_where=text("sequence IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str | None = Field(default=None, foreign_key="leads.id", index=True, max_length=40)
    thread_id: str | None = Field(default=None, foreign_key="threads.id", index=True, max_length=40)
    channel: str = Field(max_length=16)
    direction: str = Field(max_length=16)
    sender: str = Field(max_length=16)
    #: The operator who wrote it (``sender == "human"``).
    operator_id: str | None = Field(default=None, max_length=40)
    to_address: str | None = Field(default=None, max_length=320)
    from_address: str | None = Field(default=None, max_length=320)
    body: str = Field(sa_column=Column(Text, nullable=False))
    #: Email subject, fixed at claim so a retry sends exactly what the first attempt did.
    #: WhatsApp has none: ``template:{content_sid} {variables}`` there marks a template send
    #: (``rules.whatsapp.whatsapp_template``), fixed at claim the same way.
    subject: str | None = Field(default=None, max_length=300)
    status: str = Field(max_length=16)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=300)
    provider_message_id: str | None = Field(default=None, max_length=100)
    error: str | None = Field(default=None, max_length=500)
    #: ``dry_run`` or ``live``, fixed when the row is claimed so retries don't switch modes.
    mode: str | None = Field(default=None, max_length=16)
    created_at: datetime = _ts()
    #: Set just before the first provider call: a retry that finds it set reconciles first.
    attempted_at: datetime | None = _ts(nullable=True)
    #: When the compliance gate let an automated touch through (what the touch budget counts).
    touched_at: datetime | None = _ts(nullable=True)
    sent_at: datetime | None = _ts(nullable=True)
    #: When the status last moved (delivery reports).
    status_at: datetime | None = _ts(nullable=True)
    #: A customer's message: its VADER compound score (-1 to 1, ``rules.needs_person.
    #: sentiment``), scored when it is recorded. Empty on rows from before (and other rows):
    #: readers score those themselves.
    sentiment: float | None = None
    #: A sequence step's touch: the sequence, the step (from 1) and the variant the lead was
    #: given (an experiment's step; ``None`` otherwise). What ``reads.experiments`` counts.
    sequence: str | None = Field(default=None, max_length=60)
    step: int | None = None
    variant: str | None = Field(default=None, max_length=20)
    #: Which version of the experiment (``rules.experiments.experiment_key`` of the step's
    #: variants when claimed): edited texts start new figures, not the old ones'.
    experiment: str | None = Field(default=None, max_length=16)


class Sequence(SQLModel, table=True):
    """An org's nudge sequence (``SequenceIn`` in ``definition``), by name.

    Running sequences read it before each step, so an edit reaches every lead that has not
    yet reached the changed step; steps already sent are never sent again.
    """

    __tablename__ = "sequences"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_sequence_org_name"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    name: str = Field(max_length=60)
    definition: dict[str, Any] = _json()
    updated_at: datetime = _ts()


class WebhookReceipt(SQLModel, table=True):
    """A verified provider webhook, recorded before it is routed.

    ``(org_id, provider, event_id)`` is unique: a provider's retry of the same event finds this
    row and changes nothing. ``routed_at`` is set once every workflow it concerns was told, so a
    retry after a failed signal routes it again (workflows drop what they have already seen).
    """

    __tablename__ = "webhook_receipts"
    __table_args__ = (
        UniqueConstraint("org_id", "provider", "event_id", name="uq_webhook_org_provider_event"),
        # The sweeper's query: the few receipts still unrouted, oldest first.
        Index(
            "ix_webhook_receipts_unrouted",
            "received_at",
            postgresql_where=text("routed_at IS NULL"),
            sqlite_where=text("routed_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    provider: str = Field(max_length=16)
    event_id: str = Field(max_length=200)
    event_type: str = Field(max_length=64)
    payload: dict[str, Any] = _json()
    received_at: datetime = _ts()
    routed_at: datetime | None = _ts(nullable=True)
    #: Sweeps that failed to route it for a reason of its own (not an outage).
    route_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    #: After such a failure the sweeper leaves it alone until then (backing off).
    next_route_at: datetime | None = _ts(nullable=True)


class Call(SQLModel, table=True):
    """An outbound AI voice call. Written before the provider call, like a message."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_org_provider_id", "org_id", "provider_call_id"),
        Index("ix_calls_org_outcome", "org_id", "outcome"),
        # The agents' and call statistics' windows (on PostgreSQL with what the agents read).
        Index(
            "ix_calls_org_created",
            "org_id",
            "created_at",
            postgresql_include=["lead_id", "placed_at", "outcome", "cost"],
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str | None = Field(default=None, foreign_key="leads.id", index=True, max_length=40)
    #: The workflow that waits for this call's end-of-call report.
    workflow_id: str = Field(max_length=200)
    attempt: int = 1
    idempotency_key: str = Field(unique=True, max_length=300)
    mode: str = Field(max_length=16)
    to_address: str | None = Field(default=None, max_length=32)
    status: str = Field(max_length=16)
    provider_call_id: str | None = Field(default=None, max_length=100)
    ended_reason: str | None = Field(default=None, max_length=100)
    summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duration_s: float | None = None
    cost: float | None = None
    error: str | None = Field(default=None, max_length=500)
    #: ``answered``, ``no_answer``, ``busy``, ``voicemail``, ``invalid_number``, ``failed``
    #: (``models.calls.outcome_of``), from ``ended_reason``.
    outcome: str | None = Field(default=None, max_length=16)
    #: The hour of day, in the recipient's timezone, when the call was placed: the answer-rate
    #: statistics that place retries (by part of the day) are kept by it.
    local_hour: int | None = None
    #: The day of the week then, in the recipient's timezone (0 Monday .. 6 Sunday): weekday
    #: and weekend answer rates are kept apart. ``None`` on calls from before it was recorded.
    local_weekday: int | None = None
    created_at: datetime = _ts()
    #: When the compliance gate let the call through (what the budget and call cap count).
    touched_at: datetime | None = _ts(nullable=True)
    attempted_at: datetime | None = _ts(nullable=True)
    placed_at: datetime | None = _ts(nullable=True)
    ended_at: datetime | None = _ts(nullable=True)


class Payment(SQLModel, table=True):
    """Money moving for a lead, as Stripe reported it (one row per Stripe event).

    ``amount`` is in the currency's smallest unit, as Stripe sends it: what was paid, what
    failed to be collected, or, for a refund, what this event refunded (``amount_refunded``
    is the charge's running total Stripe reports). Revenue reports read the rows by
    ``occurred_at``, the event's own time.
    """

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("org_id", "stripe_event_id", name="uq_payment_org_event"),
        Index("ix_payments_org_occurred", "org_id", "occurred_at"),
        Index("ix_payments_org_intent", "org_id", "payment_intent"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str | None = Field(default=None, foreign_key="leads.id", index=True, max_length=40)
    #: The lead's contact, the customer (a merge moves it with the lead): revenue reports
    #: group by it without a join to every lead.
    contact_id: str | None = Field(default=None, max_length=40)
    #: The source of that contact's first lead, which earns the revenue (set when recorded;
    #: a merge, the only thing that can change a contact's first lead, sets it again).
    source: str | None = Field(default=None, max_length=100)
    stripe_event_id: str = Field(max_length=100)
    stripe_object_id: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    amount: int | None = None
    currency: str | None = Field(default=None, max_length=8)
    #: A refund's charge: everything refunded on it so far (Stripe's ``amount_refunded``).
    amount_refunded: int | None = None
    #: The PaymentIntent behind it, when Stripe names one: how a refund finds its payment.
    payment_intent: str | None = Field(default=None, max_length=100)
    #: The Stripe subscription an invoice bills, or a Checkout Session started.
    subscription: str | None = Field(default=None, max_length=100)
    #: The invoice a Checkout Session created: its own event carries the money, so the
    #: session's row is not counted again.
    invoice: str | None = Field(default=None, max_length=100)
    #: When it happened (the Stripe event's ``created``), not when it reached keepwarm.
    occurred_at: datetime = _ts()
    created_at: datetime = _ts()


class Subscription(SQLModel, table=True):
    """A Stripe subscription of a lead's contact, as its latest ``customer.subscription.*``
    event left it.

    ``amount`` is what one billing period costs in the smallest currency unit (every item's
    price times its quantity); ``interval`` (``day``, ``week``, ``month``, ``year``) and
    ``interval_count`` make the period, so MRR is the amount spread over a month. It counts
    from ``started_at`` until ``ended_at``. ``event_at`` is the time of the event that last
    changed the row: an older event arriving late changes nothing.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("org_id", "stripe_subscription_id", name="uq_subscription_org_stripe"),
        Index("ix_subscriptions_org_started", "org_id", "started_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str | None = Field(default=None, foreign_key="leads.id", max_length=40)
    stripe_subscription_id: str = Field(max_length=100)
    status: str = Field(max_length=32)
    currency: str | None = Field(default=None, max_length=8)
    amount: int | None = None
    interval: str | None = Field(default=None, max_length=8)
    interval_count: int = 1
    started_at: datetime | None = _ts(nullable=True)
    ended_at: datetime | None = _ts(nullable=True)
    #: Why it was cancelled, as Stripe says (``cancellation_details.reason``:
    #: ``cancellation_requested``, ``payment_failed``, ``payment_disputed``).
    cancellation_reason: str | None = Field(default=None, max_length=64)
    event_at: datetime = _ts()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Escalation(SQLModel, table=True):
    """Something a person must look at: the needs-attention queue (``GET /v1/attention``).

    ``dedupe_key`` (unique per org) keeps one open item per cause, e.g. one identity
    conflict per lead.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("org_id", "dedupe_key", name="uq_escalation_org_dedupe"),
        Index("ix_escalations_org_status_due", "org_id", "status", "sla_due_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str | None = Field(default=None, foreign_key="leads.id", max_length=40)
    thread_id: str | None = Field(default=None, max_length=40)
    contact_id: str | None = Field(default=None, max_length=40)
    reason: str = Field(max_length=64)
    priority: str = Field(max_length=16)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=16)
    level: int = 0
    dedupe_key: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = _json()
    opened_at: datetime = _ts()
    sla_due_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution: str | None = Field(default=None, max_length=500)
    #: When a person said they have it (it stops climbing), and who.
    acknowledged_at: datetime | None = _ts(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=64)


class Operator(SQLModel, table=True):
    """A person of the business who answers threads: an ``operator`` or the ``owner``.

    ``last_seen_at`` is their inbox's last heartbeat (``models.operators.online``).
    """

    __tablename__ = "operators"
    __table_args__ = (Index("ix_operators_email", "email"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    #: E.164, where an escalation is texted.
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=320)
    role: str = Field(max_length=16)
    last_seen_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    #: argon2id; ``None`` until they accept their invite (they can't sign in before).
    password_hash: str | None = Field(default=None, max_length=200)
    #: Wrong passwords in a row; at ``SIGN_IN_LOCK_AFTER`` sign-in locks until ``locked_until``.
    failed_sign_ins: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    locked_until: datetime | None = _ts(nullable=True)
    #: Removed by the owner: no sign-in, no sessions, no escalations; their history stays.
    removed_at: datetime | None = _ts(nullable=True)
    #: The thread their inbox shows ("who else is viewing"), with ``last_seen_at`` its time.
    viewing_thread_id: str | None = Field(default=None, max_length=40)


class OperatorInvite(SQLModel, table=True):
    """A one-time link (``/app/invite/{token}``) that lets an operator choose a password.

    Only the token's SHA-256 is stored; the link is shown once, when it is made.
    """

    __tablename__ = "operator_invites"

    token_hash: str = Field(primary_key=True, max_length=64)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    operator_id: str = Field(foreign_key="operators.id", index=True, max_length=40)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)


class OperatorSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table its SHA-256.

    Revoked at sign-out, when the operator is removed, or when they sign in again from the
    same browser (the token rotates at every sign-in); expires on its own.
    """

    __tablename__ = "operator_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    operator_id: str = Field(foreign_key="operators.id", index=True, max_length=40)
    #: Sent back in forms that are not htmx requests (double submit against CSRF).
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    #: Moved at most every few minutes: idle sessions expire sooner than ``expires_at``.
    last_used_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)
    user_agent: str | None = Field(default=None, max_length=300)


class UiEvent(SQLModel, table=True):
    """The live pages' outbox: one row per changed subject, written in the transaction of
    the change (``models.outbox``), tailed by every API process and sent to open pages as
    Server-Sent Events. Rows are an invalidation ("thread X changed"), never the data."""

    __tablename__ = "ui_events"
    __table_args__ = (
        Index("ix_ui_events_org_id", "org_id", "id"),
        Index("ix_ui_events_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    org_id: str = Field(max_length=40)
    #: ``thread``, ``lead``, ``escalation``, ``contact`` or ``alert``: ``UiEventKind``.
    kind: str = Field(max_length=16)
    subject_id: str = Field(max_length=40)
    created_at: datetime = _ts()


class HealthSample(SQLModel, table=True):
    """One check's verdict at one run of the health check (``HealthCheck``). ``org_id`` is
    empty for what the whole deployment shares (providers, workers, backlog, failed runs).
    ``GET /v1/health`` reads the latest of each check and subject."""

    __tablename__ = "health_samples"
    __table_args__ = (
        Index("ix_health_samples_latest", "org_id", "check", "subject", "checked_at"),
        Index("ix_health_samples_checked_at", "checked_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(default="", max_length=40)
    check: str = Field(max_length=32)
    subject: str = Field(max_length=64)
    #: ``HealthStatus``.
    status: str = Field(max_length=16)
    summary: str = Field(max_length=300)
    detail: str = Field(default="", max_length=1000)
    value: float | None = None
    checked_at: datetime = _ts()


class Alert(SQLModel, table=True):
    """One episode of an alert, written by its ``Alert`` workflow
    (``alert-{org}-{rule}-{subject}``; a later episode of the same condition is a new row and
    a new run). Rows the workflow never notified about (``fired_at`` empty) are not shown."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_org_state", "org_id", "state", "opened_at"),
        Index("ix_alerts_workflow", "workflow_id", "opened_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    workflow_id: str = Field(max_length=200)
    rule: str = Field(max_length=32)
    subject: str = Field(max_length=64)
    #: ``HealthStatus``: warning or critical (the worst seen while open).
    severity: str = Field(max_length=16)
    #: ``AlertState``.
    state: str = Field(max_length=16)
    summary: str = Field(max_length=300)
    detail: str = Field(default="", max_length=1000)
    #: Short code a person texts back to acknowledge (``ACK 4821``).
    code: str = Field(max_length=8)
    opened_at: datetime = _ts()
    fired_at: datetime | None = _ts(nullable=True)
    acknowledged_at: datetime | None = _ts(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=120)
    resolved_at: datetime | None = _ts(nullable=True)
    #: The workflow's revision of this row (``AlertEpisode.revision``).
    revision: int = Field(default=0)
    updated_at: datetime = _ts()


class AlertNotice(SQLModel, table=True):
    """One notice of an alert to one person: sent (its ``messages`` row), or held back by a
    silence, the SMS quota or a missing contact. ``(alert_id, step)`` is unique, so a retried
    notice is recorded once."""

    __tablename__ = "alert_notices"
    __table_args__ = (
        UniqueConstraint("alert_id", "step", name="uq_alert_notice_step"),
        Index("ix_alert_notices_org_channel", "org_id", "channel", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    alert_id: str = Field(foreign_key="alerts.id", max_length=40)
    #: ``rung-0-email-0``, ``recovery-email-0`` ...
    step: str = Field(max_length=60)
    channel: str = Field(max_length=16)
    to_address: str | None = Field(default=None, max_length=320)
    message_id: str | None = Field(default=None, max_length=40)
    #: ``sent``, ``silenced``, ``over_quota`` or ``no_contact`` (the message's own status
    #: says whether a sent one was delivered).
    outcome: str = Field(max_length=16)
    created_at: datetime = _ts()


class Silence(SQLModel, table=True):
    """ "Not now": notices of matching alerts are held back between ``starts_at`` and
    ``until`` (a maintenance window starts later). Empty ``rule`` / ``subject`` match any."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_org_until", "org_id", "until"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    rule: str | None = Field(default=None, max_length=32)
    subject: str | None = Field(default=None, max_length=64)
    starts_at: datetime = _ts()
    until: datetime = _ts()
    reason: str | None = Field(default=None, max_length=300)
    created_by: str | None = Field(default=None, max_length=120)
    created_at: datetime = _ts()


class SettingsChange(SQLModel, table=True):
    """One change an owner made to the org's settings (the Settings pages' audit list): who,
    when, which section, and a plain summary of before and after. Secrets are never stored;
    nothing here is a secret (senders, windows, sequences, scoring, the provider mode)."""

    __tablename__ = "settings_changes"
    __table_args__ = (Index("ix_settings_changes_org", "org_id", "changed_at"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    #: The operator who made it; ``None`` when made with the org's API key.
    operator_id: str | None = Field(default=None, max_length=40)
    #: Their name as it was then (the row stays readable after they are removed).
    actor: str = Field(max_length=200)
    #: ``general``, ``quiet_hours``, ``sequences``, ``scoring``, ``provider_mode``...
    section: str = Field(max_length=32)
    summary: str = Field(max_length=500)
    changed_at: datetime = _ts()


class AgentDay(SQLModel, table=True):
    """One of an org's running totals for one UTC day: what ``GET /v1/agents`` adds up over a
    window's whole days instead of reading every message, call and lead of them.

    ``metric`` names the total (``models.store.agent_days``): AI sends by channel, live or
    not, on the day the message was written; calls ended, answered and their cost, on the
    day the call was written; leads touched, called, replied and taken over, on the day the
    lead came in. Each is moved in the transaction that records what it counts.
    """

    __tablename__ = "agent_days"

    org_id: str = Field(foreign_key="orgs.id", max_length=40, primary_key=True)
    day: date = Field(primary_key=True)
    metric: str = Field(max_length=40, primary_key=True)
    count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    #: A sum that is not a count (a call's cost, in its currency).
    amount: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})


class LeadGroup(SQLModel, table=True):
    """How many of an org's leads share a source, first-touch channel, stage and whether they
    were touched, and their value (``models.store.lead_groups``): the pipeline report over
    all time adds up these rows instead of counting every lead. ``""`` stands for no source
    or no channel."""

    __tablename__ = "lead_groups"

    org_id: str = Field(foreign_key="orgs.id", max_length=40, primary_key=True)
    source: str = Field(max_length=100, primary_key=True)
    channel: str = Field(max_length=16, primary_key=True)
    stage: str = Field(max_length=16, primary_key=True)
    touched: bool = Field(primary_key=True)
    leads: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    value_sum: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    #: Of them, the leads with a value.
    valued: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class Provider(SQLModel, table=True):
    """A person who does the org's visits (a cleaner, a technician). Names are unique within
    the org, so the owner's pages and a booking's ``provider_id`` never mix two up."""

    __tablename__ = "providers"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_provider_org_name"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=320)
    created_at: datetime = _ts()


class Booking(SQLModel, table=True):
    """A visit a lead booked: when, who does it, where it stands, and what the customer said.

    Its ``Appointment`` workflow (``workflow_id``) confirms and reminds; ``version`` counts
    the moves, so the workflow takes each once and a late signal never undoes a later move.
    ``reminders`` is the workflow's current plan (what the booking's page shows).
    """

    __tablename__ = "bookings"
    __table_args__ = (
        Index("ix_bookings_org_starts", "org_id", "starts_at"),
        Index("ix_bookings_provider_starts", "provider_id", "starts_at"),
        Index("ix_bookings_contact", "contact_id", "starts_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str = Field(foreign_key="leads.id", max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", max_length=40)
    #: The intake receipt of ``booking:{event_id}`` (the same event again is this booking).
    receipt_id: str = Field(max_length=40, unique=True)
    workflow_id: str = Field(max_length=200)
    provider_id: str | None = Field(default=None, foreign_key="providers.id", max_length=40)
    starts_at: datetime = _ts()
    ends_at: datetime | None = _ts(nullable=True)
    service: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: ``scheduled``, ``confirmed``, ``completed``, ``no_show`` or ``cancelled``.
    status: str = Field(default="scheduled", max_length=16)
    version: int = 1
    reminders: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    confirmed_at: datetime | None = _ts(nullable=True)
    on_my_way_at: datetime | None = _ts(nullable=True)
    arrived_at: datetime | None = _ts(nullable=True)
    completed_at: datetime | None = _ts(nullable=True)
    no_show_at: datetime | None = _ts(nullable=True)
    cancelled_at: datetime | None = _ts(nullable=True)
    cancel_reason: str | None = Field(default=None, max_length=500)
    #: The customer asked to move it (replied R) and nobody has moved it since.
    reschedule_requested_at: datetime | None = _ts(nullable=True)
    #: When the rating request was claimed (a 1-5 reply from then on is the rating).
    rating_requested_at: datetime | None = _ts(nullable=True)
    rating: int | None = None
    rated_at: datetime | None = _ts(nullable=True)
    #: The customer complained about the visit (an escalation opened for it).
    complained: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class PaymentRequest(SQLModel, table=True):
    """A request that a lead pay an amount: its Stripe payment link, and where it stands.

    Its ``PaymentFollowup`` workflow (``workflow_id``) creates the link, sends it, reminds
    and follows up a failed payment; Stripe's signed events mark it paid (or failed).
    """

    __tablename__ = "payment_requests"
    __table_args__ = (
        Index("ix_payment_requests_org_created", "org_id", "created_at"),
        Index("ix_payment_requests_lead", "lead_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    lead_id: str = Field(foreign_key="leads.id", max_length=40)
    contact_id: str = Field(foreign_key="contacts.id", max_length=40)
    #: The intake receipt of ``payment-request:{event_id}`` (the same event again is this).
    receipt_id: str = Field(max_length=40, unique=True)
    workflow_id: str = Field(max_length=200)
    #: In the currency's smallest unit (cents), as Stripe takes it.
    amount: int
    currency: str = Field(max_length=3)
    description: str = Field(max_length=200)
    due_at: datetime = _ts()
    #: ``open``, ``paid`` or ``unpaid`` (given up after the last reminder).
    status: str = Field(default="open", max_length=16)
    #: ``dry_run`` or ``live``, fixed when the request is made.
    mode: str = Field(max_length=16)
    stripe_link_id: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=500)
    paid_at: datetime | None = _ts(nullable=True)
    #: Failed payments so far (``invoice.payment_failed``), and the last one's time.
    failures: int = 0
    failed_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SenderPace(SQLModel, table=True):
    """A sender's pace (``models.rules.pacing``): when its next send may leave. One row per
    number, WhatsApp sender, email domain or Vapi phone number that has a pace; locked by
    every paced send from it."""

    __tablename__ = "sender_paces"

    #: ``{channel}:{address}`` (``rules.pacing.sender_key``).
    sender: str = Field(primary_key=True, max_length=340)
    next_at: datetime | None = _ts(nullable=True)
    #: The gap between sends ``next_at`` was counted with (a pace changed since: recounted).
    gap_s: float | None = None


class PacedSend(SQLModel, table=True):
    """A send waiting for its sender's pace: its lead's score orders the queue (hottest
    first), then how long it has waited. Removed when it goes."""

    __tablename__ = "paced_sends"
    __table_args__ = (Index("ix_paced_sends_queue", "sender", "priority", "since"),)

    #: The send's idempotency key.
    key: str = Field(primary_key=True, max_length=300)
    sender: str = Field(max_length=340)
    org_id: str = Field(foreign_key="orgs.id", max_length=40)
    priority: int
    since: datetime = _ts()
    #: When it was told to come back; one that never does stops counting after a while.
    due_at: datetime = _ts()
