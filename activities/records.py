"""Activities that write a lead's records: contact, lead row, stage changes, timeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError
from temporalio import activity

from activities.errors import RecordInvalid, RecordMissing, SendDeferred
from models.database import transaction
from models.errors import EscalationMissing, NotFound, ThreadMissing
from models.payloads import NextStep, RecordedLead
from models.rules.compliance import Deferred
from models.services.first_touch import plan_next_step, record_lead_and_plan
from models.services.intake import attach_intake
from models.services.pacing import note_hold
from models.store.leads import set_stage
from models.values import Channel, Stage

T = TypeVar("T")


def record(engine: Engine, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """``fn(session, **kwargs)`` in one transaction (deadlocks retried, bounded:
    ``models.database.transaction``), its business failures as named, non-retryable errors.

    A missing row or a value the database refuses won't change on retry; a lost connection
    will, so it stays retryable (Temporal retries the activity)."""
    return transaction(engine, fn, translate=_named, **kwargs)


def _named(error: BaseException) -> BaseException | None:
    """A business failure as the named, non-retryable error a workflow sees."""
    if isinstance(error, NotFound | EscalationMissing | ThreadMissing):
        return RecordMissing(f"no such record: {error}")
    if isinstance(error, DataError):
        # Only the driver's class of error: its text could quote personal data.
        return RecordInvalid(f"the database refused a value ({type(error.orig).__name__})")
    return None


def record_stage_change(
    engine: Engine, *, org_id: str, lead_id: str, stage: Stage, reason: str
) -> None:
    """A lead's stage change and its reason on its timeline, in one transaction."""
    record(engine, set_stage, org_id=org_id, lead_id=lead_id, stage=stage, reason=reason)


def held_back(
    engine: Engine, deferred: Deferred, *, org_id: str, lead_id: str, channel: Channel, key: str
) -> SendDeferred:
    """A touch the compliance gate or its sender's pace held back at its claim: noted on the
    lead's timeline (a pace's wait once per touch, however often it waits again), its place
    in the sender's queue kept (held for another reason, given up), and the error that tells
    the workflow until when (it waits on a durable timer)."""
    verdict = deferred.verdict
    assert verdict.until is not None and verdict.reason is not None
    record(
        engine,
        note_hold,
        org_id=org_id,
        lead_id=lead_id,
        channel=channel,
        deferred=deferred,
        key=key,
    )
    return SendDeferred(verdict.reason, verdict.until)


@dataclass(frozen=True, kw_only=True)
class RecordLeadInput:
    """Record the lead a Lead workflow run works, from its intake receipt."""

    org_id: str
    lead_id: str
    workflow_id: str
    receipt_id: str
    #: The workflow's time: with it, the answer includes the sequence's first step, due
    #: ``after`` from then.
    now: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AttachIntakeInput:
    """Note a later submission from the same person on their open lead."""

    org_id: str
    lead_id: str
    receipt_id: str


@dataclass(frozen=True, kw_only=True)
class NextStepInput:
    """Which step of which sequence a NudgeSequence run takes next."""

    org_id: str
    sequence: str
    index: int
    #: With both, the answer says when the step is due in the lead's local time.
    lead_id: str | None = None
    anchor: datetime | None = None
    #: With ``lead_id``: the workflow's time, for the compliance gate's pre-check.
    now: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class RecordStageInput:
    """Move a lead to a stage, with the reason an operator will read."""

    org_id: str
    lead_id: str
    stage: Stage
    reason: str


class LeadRecordActivities:
    """Writes to the app database on behalf of Lead workflows."""

    def __init__(self, *, engine: Engine) -> None:
        """Use ``engine`` for every write."""
        self._engine = engine

    @activity.defn(name="record_lead")
    def record_lead(self, input: RecordLeadInput) -> RecordedLead:
        """Resolve the contact and create the lead; answer which channel the first touch takes."""
        return record(
            self._engine,
            record_lead_and_plan,
            org_id=input.org_id,
            lead_id=input.lead_id,
            workflow_id=input.workflow_id,
            receipt_id=input.receipt_id,
            now=input.now,
        )

    @activity.defn(name="attach_intake")
    def attach_intake(self, input: AttachIntakeInput) -> None:
        """Put a repeat submission on the lead's timeline (once per receipt)."""
        record(
            self._engine,
            attach_intake,
            org_id=input.org_id,
            lead_id=input.lead_id,
            receipt_id=input.receipt_id,
        )

    @activity.defn(name="next_sequence_step")
    def next_sequence_step(self, input: NextStepInput) -> NextStep | None:
        """The sequence's step ``index`` as it stands now (edits apply from the next step);
        given ``now``, with the compliance gate's pre-check of sending it then."""
        return record(
            self._engine,
            plan_next_step,
            org_id=input.org_id,
            sequence=input.sequence,
            index=input.index,
            lead_id=input.lead_id,
            anchor=input.anchor,
            now=input.now,
        )

    @activity.defn(name="record_stage")
    def record_stage(self, input: RecordStageInput) -> None:
        """Record a stage change and its reason on the lead's timeline."""
        record_stage_change(
            self._engine,
            org_id=input.org_id,
            lead_id=input.lead_id,
            stage=input.stage,
            reason=input.reason,
        )
