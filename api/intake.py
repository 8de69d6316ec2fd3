"""Intake: record the submission, then start the person's Lead workflow or tell the open one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from api import temporal
from api.deps import Database
from api.errors import ApiError
from models.ids import lead_workflow_id
from models.services.intake import prepare_intake
from models.tables import Org
from models.values import new_id
from workflows.lead import IntakeReceived

log = logging.getLogger("keepwarm.intake")

#: How often to try when the person's open lead is closing at the same moment.
START_ATTEMPTS = 8


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
        running = await temporal.start_lead(
            client,
            org_id=org.id,
            lead_id=lead_id,
            receipt_id=prepared.receipt_id,
            workflow_id=workflow_id,
            source=source,
        )
        if running is None:
            return Accepted(
                lead_id=lead_id, workflow_id=workflow_id, duplicate=not prepared.new_receipt
            )
        answer = await temporal.submit_intake(
            client,
            workflow_id=workflow_id,
            run_id=running.run_id,
            received=received,
        )
        if answer is None:
            await asyncio.sleep(0.1 * (attempt + 1))  # that lead is closing: open a new one
            continue
        # The request that created the receipt is the original even if another one started
        # the run with it; anything landing on a lead started by another receipt is a repeat.
        duplicate = not prepared.new_receipt if answer.started_this_lead else True
        return Accepted(lead_id=answer.lead_id, workflow_id=workflow_id, duplicate=duplicate)
    raise ApiError(503, "The person's lead is closing right now; retry shortly.")
