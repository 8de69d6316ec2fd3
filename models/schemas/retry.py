"""Admin retry (API.md "Admin retry"): the class of a failed send's error, a retry's request
and answer, and the workflow runs that failed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, StrictBool

from models.schemas.fields import StrictModel


class SendErrorClass(StrEnum):
    """What a failed send's error says, read from the class its text starts with
    (``credentials_rejected: ...``); ``unknown`` for a failure keepwarm decided itself (no
    address, no adapter, an opt-out) or a row older than the classes."""

    CREDENTIALS_REJECTED = "credentials_rejected"
    SUSPENDED = "suspended"
    DOWN = "down"
    BUSINESS_REFUSAL = "business_refusal"
    UNKNOWN = "unknown"


class RetryIn(StrictModel):
    """``POST /v1/messages/{message_id}/retry``; the body may be left out."""

    #: Send again although the provider refused this message itself (``business_refusal``),
    #: once its cause is fixed (a sender domain verified, a region enabled). An opted-out
    #: recipient is never sent to, forced or not.
    force: StrictBool = False


class RetryAccepted(BaseModel):
    """A retry on its way: its workflow, and whether an earlier request already started it."""

    message_id: str
    #: ``retry-{message_id}``: the workflow that sends it again (Temporal Web UI).
    workflow_id: str
    #: An earlier request retried it already (it is on its way or went): nothing new starts.
    duplicate: bool


class FailedWorkflow(BaseModel):
    """A workflow run of the org that failed or timed out."""

    workflow_type: str
    workflow_id: str
    run_id: str
    status: str = Field(description="`failed` or `timed_out`.")
    started_at: datetime | None
    closed_at: datetime | None
    #: Why it failed, with its innermost cause (an activity's error), when Temporal says.
    failure: str | None
    #: The run's history in the Temporal Web UI, where an operator can Reset it; ``None``
    #: when the deployment doesn't know the UI's address.
    temporal_url: str | None


class FailedWorkflowList(BaseModel):
    """``GET /v1/workflows/failed``: the latest first."""

    items: list[FailedWorkflow]
