"""Intake: record the submission, then start the person's Lead workflow or tell the open one."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Database
from models import store
from models.values import Stage, new_id
from workflows import search_attributes as sa
from workflows.lead import IntakeReceived, LeadInput, LeadWorkflow
from workflows.task_queues import LEADS

log = logging.getLogger("keepwarm.intake")

#: A running lead can close between "already started" and our signal; try again this often.
START_ATTEMPTS = 3


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """The outcome of an intake."""

    lead_id: str
    workflow_id: str
    duplicate: bool


def lead_workflow_id(*, org_id: str, contact_key: str) -> str:
    """``lead-{org}-{hash}``: stable per person, free of personal data."""
    digest = hashlib.sha256(f"{org_id}\x00{contact_key}".encode()).hexdigest()[:24]
    return f"lead-{org_id}-{digest}"


async def accept_intake(
    *,
    client: Client,
    database: Database,
    org_id: str,
    event_id: str | None,
    source: str | None,
    payload: dict[str, Any],
) -> Accepted:
    """Record the receipt, then start or signal the Lead workflow. Safe to repeat.

    ``payload`` is the validated submission with ``email`` and ``phone`` already normalised.

    The same ``event_id`` again, or the same person while their lead is open, answers with
    the open (or original) lead and ``duplicate=True``; it never causes a second first touch.
    """
    receipt, new_receipt = await database.run(
        store.record_intake_receipt, org_id=org_id, event_id=event_id, kind="lead", payload=payload
    )
    # A replayed event goes where the original went, even if its body differs.
    original = receipt.payload
    contact_key = store.contact_key(email=original.get("email"), phone=original.get("phone"))
    workflow_id = lead_workflow_id(org_id=org_id, contact_key=contact_key)
    if not new_receipt and receipt.lead_id is not None:
        return Accepted(lead_id=receipt.lead_id, workflow_id=workflow_id, duplicate=True)
    for _ in range(START_ATTEMPTS):
        lead_id = new_id("lead")
        try:
            await client.start_workflow(
                LeadWorkflow.run,
                LeadInput(org_id=org_id, lead_id=lead_id, receipt_id=receipt.id),
                id=workflow_id,
                task_queue=LEADS,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.ORG_ID, org_id),
                        SearchAttributePair(sa.LEAD_STAGE, Stage.NEW.value),
                    ]
                ),
                memo={"lead_id": lead_id},
                static_summary=f"Lead from {(source or 'direct')[:60]}",
            )
            return Accepted(lead_id=lead_id, workflow_id=workflow_id, duplicate=not new_receipt)
        except WorkflowAlreadyStartedError:
            pass
        handle = client.get_workflow_handle_for(LeadWorkflow.run, workflow_id)
        try:
            await handle.signal(LeadWorkflow.intake_received, IntakeReceived(receipt_id=receipt.id))
            description = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                continue  # it closed in between: start a new lead
            raise
        open_lead_id = await description.memo_value("lead_id", type_hint=str)
        return Accepted(lead_id=open_lead_id, workflow_id=workflow_id, duplicate=True)
    raise RuntimeError(f"could not start or signal {workflow_id}")
