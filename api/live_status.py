"""What a lead's workflow says it is doing now (the Lead's ``status`` query, with its
sequence's ``progress``), for the lead view and the operators' pages.

The rest of a lead's view comes from the database, so Temporal being down or a workflow
failing its tasks costs only this part: ``None`` means "ask again later".
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import TemporalError

from api.deps import QUERY_TIMEOUT, TemporalConnection
from api.errors import ApiError
from models.schemas import Attempts, LiveStatus
from models.tables import Lead
from workflows.lead import LeadResult, LeadWorkflow
from workflows.nudge import NudgeSequenceWorkflow
from workflows.payloads import step_words

log = logging.getLogger("keepwarm.api.live_status")


async def lead_live_status(
    temporal: TemporalConnection, lead: Lead, timezone: str
) -> LiveStatus | None:
    """The workflow's own account of the lead, or ``None`` if it can't be asked right now.

    The rest of the lead view comes from the database, so Temporal being down or a workflow
    failing its tasks costs only this part.
    """
    try:
        client = await temporal.client()
    except ApiError:
        return None
    handle = client.get_workflow_handle(lead.workflow_id, result_type=LeadResult)
    try:
        description = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
        memo_lead = await description.memo_value("lead_id", default="", type_hint=str)
        if memo_lead != lead.id:
            # The person has a newer lead on the same workflow id; this one is over.
            return LiveStatus(workflow_id=lead.workflow_id, status="closed")
        execution = description.status.name.lower() if description.status else "unknown"
        if description.status != WorkflowExecutionStatus.RUNNING:
            return LiveStatus(workflow_id=lead.workflow_id, status=execution)
        answer = await asyncio.wait_for(
            handle.query(LeadWorkflow.status, rpc_timeout=QUERY_TIMEOUT),
            timeout=QUERY_TIMEOUT.total_seconds(),
        )
    except (TemporalError, TimeoutError) as error:
        log.info("live status of %s unavailable: %s", lead.workflow_id, error)
        return None
    live = LiveStatus(
        workflow_id=lead.workflow_id,
        status=execution,
        next_action=answer.next_action,
        next_action_at=answer.next_action_at,
        attempts=Attempts(used=answer.attempts_used, cap=answer.attempts_cap),
        waiting_reason=answer.waiting_reason,
    )
    if answer.nudge_workflow_id:
        return await _with_sequence(client, live, answer.nudge_workflow_id, timezone)
    return live


async def _with_sequence(
    client: Client, live: LiveStatus, nudge_id: str, timezone: str
) -> LiveStatus:
    """The lead's live status with its sequence's next step, in the contact's local time."""
    try:
        progress = await asyncio.wait_for(
            client.get_workflow_handle(nudge_id).query(
                NudgeSequenceWorkflow.progress, rpc_timeout=QUERY_TIMEOUT
            ),
            timeout=QUERY_TIMEOUT.total_seconds(),
        )
    except (TemporalError, TimeoutError) as error:
        log.info("sequence progress of %s unavailable: %s", nudge_id, error)
        return live
    if progress.next_at is None or progress.next_channel is None or not progress.steps_total:
        return live
    # The zone the sequence reckoned the step in (runs from before it reported one: ours).
    timezone = progress.timezone or timezone
    local = progress.next_at.astimezone(ZoneInfo(timezone))
    when = f"{local:%H:%M} {timezone}"
    if local.date() != datetime.now(ZoneInfo(timezone)).date():
        when = f"{local:%a %d %b} {when}"
    words = step_words(
        progress.next_channel,
        when=when,
        number=progress.steps_done + 1,
        total=progress.steps_total,
    )
    return live.model_copy(
        update={
            "next_action": words.next_action,
            "next_action_at": progress.next_at,
            "waiting_reason": words.waiting_reason,
            "attempts": Attempts(
                used=live.attempts.used + progress.sent if live.attempts else progress.sent,
                cap=(live.attempts.cap if live.attempts else 0) + progress.steps_total,
            ),
        }
    )
