"""The AI agents an org runs, as the Command Center shows them (API.md "Analytics",
``GET /v1/agents``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from models.values import ProviderHealth


class AgentKind(StrEnum):
    """What an agent does: texts and emails (the org's sequences), or calls (a Vapi assistant)."""

    MESSAGING = "messaging"
    VOICE = "voice"


class AgentStatus(StrEnum):
    """How an agent is doing now."""

    #: Handling conversations, or calls under way or due.
    ACTIVE = "active"
    #: Nothing under way.
    IDLE = "idle"
    #: Its latest send failed for a provider reason within the last hour.
    ERROR = "error"


class Quantiles(BaseModel):
    """Nearest-rank percentiles in seconds (rounded to milliseconds); ``null`` without data."""

    p50: float | None
    p90: float | None


class AgentError(BaseModel):
    """The agent's latest send that failed for a provider reason."""

    at: datetime
    #: ``twilio``, ``resend`` or ``vapi``.
    provider: str
    #: ``credentials_rejected``, ``suspended`` or ``down``.
    kind: ProviderHealth
    #: The error as recorded on the message or call.
    detail: str


class AgentSummary(BaseModel):
    """One agent: what it is doing now and how it did in the window (docs/api.md "Agents"
    defines every figure)."""

    agent: str = Field(description='Its name: "Texting & email AI", "Voice AI".')
    kind: AgentKind
    #: The Vapi assistant (voice), when the org has set one.
    assistant_id: str | None
    status: AgentStatus
    context: str = Field(
        description="What it is doing, in words: "
        '"handling 3 conversations · 2 calls in retry, next in 4 min · 1 waiting for a person".'
    )
    #: Conversations (messaging) or calls (voice) under way now.
    active_conversations: int
    success_rate: float | None
    #: Lead created to first touch.
    response_time_s: Quantiles
    #: A customer's message to the AI's next message on the thread (messaging only).
    reply_time_s: Quantiles
    #: The messages (messaging) or ended calls (voice) of the window.
    interactions: int
    cost_per_interaction: float | None
    currency: str
    #: Mean sentiment of customer replies, 0 (very negative) to 1 (very positive).
    satisfaction: float | None
    #: Replies the mean is over (the latest of the window, at most 200).
    satisfaction_sample: int
    takeover_rate: float | None
    last_error: AgentError | None


class AgentList(BaseModel):
    """``GET /v1/agents``: the messaging agent first, then the voice agent if the org has one."""

    items: list[AgentSummary]
