"""What a lead's workflow asks before it writes: its lead recorded with the first touch
planned, and the next step of its sequence, each with the compliance gate's pre-check at the
workflow's time (a touch the gate would hold back waits on a durable timer instead)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlmodel import Session

from models.payloads import NextStep, RecordedLead
from models.services.gate import gate_verdict
from models.services.intake import record_lead
from models.services.outbound import reachable_channel
from models.services.sequences import next_step
from models.store.leads import get_lead


def record_lead_and_plan(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    workflow_id: str,
    receipt_id: str,
    now: datetime | None,
) -> RecordedLead:
    """Record the lead from its receipt; given the workflow's ``now``, say whether the gate
    holds its first touch back (and until when) and what its sequence's first step is."""
    recorded = record_lead(
        session, org_id=org_id, lead_id=lead_id, workflow_id=workflow_id, receipt_id=receipt_id
    )
    if recorded.first_touch is None or now is None:
        return recorded
    verdict = gate_verdict(
        session, org_id=org_id, lead_id=lead_id, channel=recorded.first_touch, now=now
    )
    recorded = dataclasses.replace(recorded, hold_until=verdict.until, hold_reason=verdict.reason)
    if recorded.sequence is None:
        return recorded
    first = next_step(
        session, org_id=org_id, name=recorded.sequence, index=0, lead_id=lead_id, anchor=now
    )
    return dataclasses.replace(recorded, first_step=first, sequence_anchor=now)


def plan_next_step(
    session: Session,
    *,
    org_id: str,
    sequence: str,
    index: int,
    lead_id: str | None,
    anchor: datetime | None,
    now: datetime | None,
) -> NextStep | None:
    """Step ``index`` of the sequence as it stands now; given the lead and ``now``, with the
    gate's pre-check of sending it then."""
    step = next_step(
        session, org_id=org_id, name=sequence, index=index, lead_id=lead_id, anchor=anchor
    )
    if step is None or now is None or lead_id is None:
        return step
    # The gate of the channel the step will go on: its own, else its fallback's.
    contact_id = get_lead(session, org_id=org_id, lead_id=lead_id).contact_id
    channel, _ = reachable_channel(
        session, org_id=org_id, contact_id=contact_id, channels=(step.channel, *step.fallback)
    )
    verdict = gate_verdict(
        session, org_id=org_id, lead_id=lead_id, channel=channel or step.channel, now=now
    )
    return dataclasses.replace(step, hold_until=verdict.until, hold_reason=verdict.reason)
