"""Intake: record the submission, then start the person's Lead workflow or tell the open one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Database
from api.errors import ApiError
from models.ids import lead_workflow_id
from models.services.intake import prepare_intake
from models.tables import Org
from models.values import Stage, new_id
from workflows import search_attributes as sa
from workflows.lead import IntakeReceived, LeadInput, LeadResult, LeadWorkflow
from workflows.task_queues import LEADS

log = logging.getLogger("keepwarm.intake")

#: How often to try when the person's open lead is closing at the same moment.
START_ATTEMPTS = 8
#: Waiting for a worker to take a repeat submission; past this the client should retry.
UPDATE_TIMEOUT_S = 10.0


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """The outcome of an intake."""

    lead_id: str
    workflow_id: str
    duplicate: bool


async def accept_intake(
    *,
    client: Client,
    database: Database,
    org: Org,
    event_id: str | None,
    source: str | None,
    payload: dict[str, Any],
    kind: str = "lead",
) -> Accepted:
    """Record the receipt, then start the Lead workflow or hand the receipt to the open one.

    ``payload`` is the validated submission with ``email`` and ``phone`` already normalised.
    Safe to repeat: the same ``event_id`` again, or the same person while their lead is open,
    answers with that lead and ``duplicate=True`` and never causes a second first touch.
    """
    prepared = await database.run(
        prepare_intake, org_id=org.id, event_id=event_id, kind=kind, payload=payload
    )
    workflow_id = prepared.open_workflow_id or lead_workflow_id(
        org_id=org.id, org_secret=org.id_secret, contact_key=prepared.contact_key
    )
    if prepared.lead_id is not None:  # a replay of an event that already made its lead
        return Accepted(lead_id=prepared.lead_id, workflow_id=workflow_id, duplicate=True)
    received = IntakeReceived(receipt_id=prepared.receipt_id)
    for attempt in range(START_ATTEMPTS):
        lead_id = new_id("lead")
        try:
            await client.start_workflow(
                LeadWorkflow.run,
                LeadInput(org_id=org.id, lead_id=lead_id, receipt_id=prepared.receipt_id),
                id=workflow_id,
                task_queue=LEADS,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.ORG_ID, org.id),
                        SearchAttributePair(sa.LEAD_STAGE, Stage.NEW.value),
                    ]
                ),
                memo={"lead_id": lead_id},
                static_summary=f"Lead from {(source or 'direct')[:60]}",
            )
            return Accepted(
                lead_id=lead_id, workflow_id=workflow_id, duplicate=not prepared.new_receipt
            )
        except WorkflowAlreadyStartedError as running:
            run_id = running.run_id
        # Pinned to the run that refused the start, so the answer can't come from a later one.
        handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=LeadResult)
        try:
            answer = await asyncio.wait_for(
                handle.execute_update(LeadWorkflow.submit_intake, received),
                timeout=UPDATE_TIMEOUT_S,
            )
        except WorkflowUpdateFailedError:
            await asyncio.sleep(0.1 * (attempt + 1))  # that lead is closing: open a new one
            continue
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                continue  # it closed in between: start a new lead
            raise
        except TimeoutError:
            raise ApiError(
                503, "The submission is recorded but no worker took it yet; retry shortly."
            ) from None
        # The request that created the receipt is the original even if another one started
        # the run with it; anything landing on a lead started by another receipt is a repeat.
        duplicate = not prepared.new_receipt if answer.started_this_lead else True
        return Accepted(lead_id=answer.lead_id, workflow_id=workflow_id, duplicate=duplicate)
    raise ApiError(503, "The person's lead is closing right now; retry shortly.")
