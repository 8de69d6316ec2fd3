"""What the API answers when read: leads, timelines, calls, messages, the pipeline, call
statistics, and the error envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
)

from models.schemas.retry import SendErrorClass
from models.values import (
    CallOutcome,
    CallStatus,
    Channel,
    Direction,
    Intent,
    MessageStatus,
    Sender,
    Stage,
)


class LeadSummary(BaseModel):
    """A lead in a list."""

    lead_id: str
    name: str | None
    stage: Stage
    score: int
    intent: Intent | None
    source: str | None
    value: float | None
    created_at: datetime
    first_contact_at: datetime | None


class LeadList(BaseModel):
    """A page of leads."""

    items: list[LeadSummary]
    next_cursor: str | None


class ContactPublic(BaseModel):
    """A contact with every identity and the current consent per channel."""

    id: str
    name: str | None
    emails: list[str]
    phones: list[str]
    identities: list[dict[str, str]]
    consent: dict[str, bool | None]


class TimelineItem(BaseModel):
    """One line of a lead's timeline."""

    at: datetime
    kind: str
    summary: str
    data: dict[str, Any]


class Attempts(BaseModel):
    """Touches used and allowed."""

    used: int
    cap: int


class LiveStatus(BaseModel):
    """What the lead's workflow says right now."""

    workflow_id: str
    status: str
    next_action: str | None = None
    next_action_at: datetime | None = None
    attempts: Attempts | None = None
    waiting_reason: str | None = None


class CallPublic(BaseModel):
    """One AI voice call keepwarm placed for a lead, as far as it has gone."""

    call_id: str
    attempt: int
    status: CallStatus
    #: Set with the end-of-call report, from Vapi's ``ended_reason`` (kept verbatim).
    outcome: CallOutcome | None
    ended_reason: str | None
    duration_s: float | None
    cost: float | None
    summary: str | None
    placed_at: datetime | None
    ended_at: datetime | None


class LeadDetail(LeadSummary):
    """``GET /v1/leads/{lead_id}``."""

    workflow_id: str
    message: str | None
    fields: dict[str, Any]
    contact: ContactPublic
    timeline: list[TimelineItem]
    live: LiveStatus | None
    #: Oldest first.
    calls: list[CallPublic]


class MessagePublic(BaseModel):
    """A message in or out."""

    id: str
    lead_id: str | None
    thread_id: str | None
    channel: Channel
    direction: Direction
    sender: Sender
    #: The operator who wrote it (``sender == "human"``).
    operator_id: str | None = None
    body: str
    status: MessageStatus
    idempotency_key: str | None
    created_at: datetime
    #: Why it failed (``status == "failed"``), its class first (``down: ...``).
    error: str | None = None
    #: The class of a failed send's error, for deciding on a retry; ``null`` unless failed.
    error_class: SendErrorClass | None = None
    #: A sequence step's touch: the sequence, the step (from 1) and, in an experiment, the
    #: variant the lead was given.
    sequence: str | None = None
    step: int | None = None
    variant: str | None = None


class MessageList(BaseModel):
    """``GET /v1/messages``."""

    items: list[MessagePublic]


class Percentiles(BaseModel):
    """Seconds from intake to the first outbound touch; ``None`` without data."""

    p50_s: float | None
    p90_s: float | None


class LeadValue(BaseModel):
    """The value of the leads in the report."""

    total: float
    average: float | None


class CallHour(BaseModel):
    """The ended calls placed at one local hour of the recipient's day."""

    hour: int
    calls: int
    answered: int
    answer_rate: float


class CallStats(BaseModel):
    """``GET /v1/calls/stats``: how the org's AI voice calls went.

    ``ended`` calls have an end-of-call report, and so an outcome, a duration and a cost;
    the rates and averages are over them (calls still ringing or never placed have none).
    """

    calls: int
    ended: int
    by_outcome: dict[str, int]
    #: Answered / ended; ``None`` when no call has ended.
    answer_rate: float | None
    total_cost: float
    #: Total cost / ended calls.
    cost_per_call: float | None
    #: Total cost (unanswered attempts included) / answered calls: the price of a conversation.
    cost_per_answered_call: float | None
    average_duration_s: float | None
    #: Ended calls by the recipient's local hour when placed, hours without any left out.
    by_local_hour: list[CallHour]


class ErrorDetail(BaseModel):
    """One problem with the request."""

    field: str | None = None
    message: str


class ErrorInfo(BaseModel):
    """The error itself."""

    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The envelope every error is returned in."""

    error: ErrorInfo


LeadSort = Literal["recent", "oldest", "score", "value"]
