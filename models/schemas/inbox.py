"""The inbox and operators: threads, their messages and escalations, takeover and reply, and
operators with presence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from models.schemas.fields import E164, Email, NonBlankText, StrictModel, Text
from models.values import (
    Channel,
    Direction,
    HandledBy,
    MessageStatus,
    OperatorRole,
    Priority,
    Sender,
    ThreadStatus,
)

ThreadPriority = Priority
#: ``recent``: latest message first; ``oldest_unread``: unread threads first, the one waiting
#: longest since its last inbound message at the top; ``priority``: urgent to low, then
#: recent; ``value``: the contact's lifetime value, highest first, then recent.
ThreadSort = Literal["recent", "oldest_unread", "priority", "value"]


class LastMessage(BaseModel):
    """The latest message of a thread, its body cut to a preview."""

    body: str
    channel: Channel
    direction: Direction
    created_at: datetime


class ThreadSummary(BaseModel):
    """A thread in the inbox."""

    thread_id: str
    contact_id: str
    name: str | None
    status: ThreadStatus
    handled_by: HandledBy
    priority: ThreadPriority
    assigned_to: str | None
    #: Channels the thread has messages on, in ``Channel`` order.
    channels: list[Channel]
    last_message: LastMessage | None
    last_message_at: datetime | None
    #: ``status == "unread"``.
    unread: bool
    #: The contact's lifetime value: the sum of the ``value`` of their converted leads.
    value: float
    #: Escalations of this thread not yet resolved (open or acknowledged).
    open_escalations: int
    #: The operator holding the thread (a takeover: the AI writes nothing), and since when.
    held_by: str | None = None
    held_since: datetime | None = None


class ThreadList(BaseModel):
    """``GET /v1/threads``: a page of the inbox."""

    items: list[ThreadSummary]
    next_cursor: str | None


class ThreadContact(BaseModel):
    """Who the thread is with."""

    id: str
    name: str | None
    emails: list[str]
    phones: list[str]


class ThreadMessage(BaseModel):
    """A message of a thread."""

    id: str
    channel: Channel
    direction: Direction
    sender: Sender
    #: The operator who wrote it (``sender == "human"``).
    operator_id: str | None = None
    body: str
    status: MessageStatus
    created_at: datetime
    #: A sequence step's touch: the sequence, the step (from 1) and, in an experiment, the
    #: variant the lead was given.
    sequence: str | None = None
    step: int | None = None
    variant: str | None = None


class ThreadEscalation(BaseModel):
    """An unresolved escalation of a thread."""

    escalation_id: str
    reason: str
    priority: str
    summary: str
    status: str
    level: int
    opened_at: datetime
    sla_due_at: datetime


class ThreadDetail(ThreadSummary):
    """``GET /v1/threads/{thread_id}``."""

    contact: ThreadContact
    #: The latest messages, oldest first (at most the request's ``limit``, 500 by default).
    messages: list[ThreadMessage]
    #: How many older messages ``messages`` leaves out.
    earlier_messages: int
    #: Unresolved escalations, the one whose SLA runs out first at the top.
    escalations: list[ThreadEscalation]
    #: When a takeover ends on its own if its operator writes nothing more.
    releases_at: datetime | None = None


OperatorId = Annotated[Text, Field(min_length=1, max_length=64)]
#: How an acting route learns who acts.
ACTING_OPERATOR = (
    "The operator who acts: required with the org's API key; left out from an operator's "
    "session (the session's operator acts; naming another is 403)."
)
ReplyChannel = Literal["sms", "whatsapp", "email"]


class TakeoverIn(StrictModel):
    """``POST /v1/threads/{id}/takeover`` and ``.../release``."""

    operator_id: OperatorId | None = Field(default=None, description=ACTING_OPERATOR)


class TakeoverOut(BaseModel):
    """Where a thread's takeover stands after ``takeover`` or ``release``."""

    thread_id: str
    #: ``None``: the AI has the conversation.
    held_by: str | None
    held_since: datetime | None
    #: When the hold ends on its own unless its operator writes again.
    releases_at: datetime | None
    #: Escalations of the thread the takeover acknowledged.
    acknowledged: list[str]
    #: ``False`` when the call changed nothing (a repeated takeover or release).
    changed: bool


class ReplyIn(StrictModel):
    """``POST /v1/threads/{id}/reply``."""

    operator_id: OperatorId | None = Field(default=None, description=ACTING_OPERATOR)
    body: NonBlankText = Field(min_length=1, max_length=1600)
    #: The thread's channel (the customer's last message's) unless given.
    channel: ReplyChannel | None = None
    #: The client's key for this reply: a retry with it sends nothing twice.
    idempotency_key: Text | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class ReplyOut(BaseModel):
    """``202``: the reply is recorded and on its way."""

    message_id: str
    thread_id: str
    channel: Channel
    status: MessageStatus
    #: When it goes: now, or when quiet hours end in the contact's local time.
    send_at: datetime
    #: The reply took the thread over (the operator didn't hold it).
    took_over: bool
    #: A retry of an earlier reply (same ``idempotency_key``): nothing new was sent.
    duplicate: bool


class OperatorCreate(StrictModel):
    """``POST /v1/operators``."""

    name: NonBlankText = Field(min_length=1, max_length=200)
    phone: E164 | None = None
    email: Email | None = Field(default=None, max_length=320)
    role: OperatorRole

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


class OperatorPublic(BaseModel):
    """An operator, and whether their inbox sent a heartbeat in the last 2 minutes."""

    id: str
    name: str
    phone: str | None
    email: str | None
    role: OperatorRole
    online: bool
    last_seen_at: datetime | None


class OperatorCreated(OperatorPublic):
    """``201`` for ``POST /v1/operators``: the operator and their one-time invite link."""

    #: ``/app/invite/{token}`` under the public URL: single use, 7 days; shown only here.
    #: ``None`` for an operator without an email (they get escalations but don't sign in).
    invite_url: str | None = None


class OperatorList(BaseModel):
    """``GET /v1/operators``."""

    items: list[OperatorPublic]
