"""Every workflow the API starts, signals or updates, and its one 503 policy.

Temporal that can't be reached (any RPC error but ``NOT_FOUND``) is an ``ApiError`` 503,
"Temporal is unavailable; retry shortly.": what the request recorded stays recorded, and the
client's retry tells the workflow. ``NOT_FOUND`` is no outage: a signal to a workflow that has
ended returns ``False`` and each caller decides what that means. A start whose workflow is
already running was a repeat and succeeds quietly (a lead's start says which run it found).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.api.failure.v1 import Failure
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHistoryEventFilterType,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.types import MethodSyncOrAsyncSingleParam

from api.errors import ApiError, error_response
from models.ids import human_reply_workflow_id, ladder_id, takeover_workflow_id, thread_ladder_id
from models.payloads import Acknowledgement, AlertView, ConfirmationInput, StoredMessageInput
from models.rules.messages import MISSED_CALL
from models.rules.takeover import Hold
from models.schemas.retry import FailedWorkflow
from models.tables import Escalation
from models.values import Stage
from workflows import search_attributes as sa
from workflows.appointment import (
    APPOINTMENT_CHANGED_SIGNAL,
    AppointmentInput,
    AppointmentWorkflow,
    BookingNews,
)
from workflows.confirmation import ConfirmationWorkflow
from workflows.escalation import EscalationWorkflow
from workflows.lead import IntakeReceived, LeadInput, LeadResult, LeadWorkflow
from workflows.payloads import (
    TAKEOVER_CHANGED_SIGNAL,
    EscalationAck,
    EscalationInput,
    HoldChanged,
    IntakeAnswer,
    TakeoverInput,
)
from workflows.payment import (
    PAYMENT_LINK_UPDATE,
    PaymentFollowupInput,
    PaymentFollowupWorkflow,
)
from workflows.retry import RetrySendInput, RetrySendWorkflow, retry_send_workflow_id
from workflows.takeover import HumanReplyWorkflow, TakeoverWorkflow
from workflows.task_queues import LEADS

log = logging.getLogger("keepwarm.api.temporal")
#: How long a new payment request's answer waits for its link before answering without it.
LINK_WAIT = timedelta(seconds=10)

#: What every 503 for Temporal says.
UNAVAILABLE = "Temporal is unavailable; retry shortly."
#: Waiting for a worker to take a repeat submission; past this the client should retry.
UPDATE_TIMEOUT_S = 10.0

ArgT = TypeVar("ArgT")
#: A workflow's signal method that takes one argument, e.g. ``LeadWorkflow.consent_changed``.
Signal = MethodSyncOrAsyncSingleParam[Any, ArgT, None]


def unavailable(message: str = UNAVAILABLE) -> ApiError:
    """The 503 for a Temporal call that failed (``message`` says what is already recorded)."""
    return ApiError(503, message)


def install_unavailable_handler(app: FastAPI) -> None:
    """Answer a Temporal error no caller handled with the same 503."""

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, error: RPCError) -> JSONResponse:
        log.warning("Temporal call failed: %s", error.message)
        return error_response(503, "dependency_unavailable", UNAVAILABLE)


# --- signals -------------------------------------------------------------------------------


async def tell(
    client: Client,
    workflow_id: str,
    signal: Signal[ArgT],
    arg: ArgT,
    *,
    message: str = UNAVAILABLE,
) -> bool:
    """Signal the workflow's current run; ``False`` if it has ended or never existed.

    Args:
        client: The app's Temporal client.
        workflow_id: The workflow to tell.
        signal: Its signal method.
        arg: The signal's one argument.
        message: The 503's message, when it should say what is already recorded.

    Raises:
        ApiError: 503 when Temporal can't be reached.
    """
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, arg)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise unavailable(message) from error
    return True


async def tell_if_reachable(
    client: Client, workflow_id: str, signal: Signal[ArgT], arg: ArgT
) -> bool:
    """Signal when the change is recorded and the workflow reads it again anyway: ``False``
    if it has ended, or if Temporal can't be reached (logged, no 503)."""
    try:
        return await tell(client, workflow_id, signal, arg)
    except ApiError as error:
        log.warning("could not tell %s: %s", workflow_id, error.__cause__)
        return False


# --- starts --------------------------------------------------------------------------------


async def start_escalation(client: Client, row: Escalation) -> None:
    """Start the item's ladder (a running one for the thread is left alone)."""
    try:
        await client.start_workflow(
            EscalationWorkflow.run,
            EscalationInput(org_id=row.org_id, escalation_id=row.id),
            id=ladder_id(row),
            task_queue=LEADS,
            search_attributes=sa.org_attributes(row.org_id),
            static_summary=f"Escalation: {row.reason.replace('_', ' ')} ({row.priority})",
        )
    except WorkflowAlreadyStartedError:
        return
    except RPCError as error:
        raise unavailable() from error


async def tell_ladder(
    client: Client, row: Escalation, signal: Signal[EscalationAck], operator_id: str
) -> None:
    """Tell the item's ladder it was acknowledged or resolved, if it has one running
    (identity conflicts have none)."""
    await tell(client, ladder_id(row), signal, EscalationAck(operator_id=operator_id))


async def confirm(client: Client, *, org_id: str, message_id: str, kind: str) -> None:
    """Start the workflow that answers a keyword or a missed call (once: a redelivery finds
    it started)."""
    text_back = kind == MISSED_CALL
    try:
        await client.start_workflow(
            ConfirmationWorkflow.run,
            ConfirmationInput(org_id=org_id, inbound_message_id=message_id, kind=kind),
            id=f"{'text-back' if text_back else 'confirm'}-{org_id}-{message_id}",
            task_queue=LEADS,
            search_attributes=sa.org_attributes(org_id),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary="missed-call text-back" if text_back else f"{kind.upper()} confirmation",
        )
    except WorkflowAlreadyStartedError:
        return
    except RPCError as error:
        raise unavailable() from error


async def hold_changed(client: Client, *, org_id: str, hold: Hold, operator_id: str) -> None:
    """Tell the thread's Takeover workflow to read the hold again, starting it if it is not
    running (a repeated call starts one that failed to start before). Escalations the
    takeover acknowledged stop climbing."""
    try:
        await client.start_workflow(
            TakeoverWorkflow.run,
            TakeoverInput(org_id=org_id, thread_id=hold.thread_id),
            id=takeover_workflow_id(org_id, hold.thread_id),
            task_queue=LEADS,
            start_signal=TAKEOVER_CHANGED_SIGNAL,
            start_signal_args=[HoldChanged(operator_id=operator_id, held=hold.held_by is not None)],
            static_summary="Takeover: an operator holds the conversation",
        )
        if hold.acknowledged:
            ladder = client.get_workflow_handle(thread_ladder_id(org_id, hold.thread_id))
            with contextlib.suppress(RPCError):  # its route reads the acknowledgement anyway
                await ladder.signal(
                    EscalationWorkflow.acknowledged, EscalationAck(operator_id=operator_id)
                )
    except RPCError as error:
        raise unavailable() from error


async def start_reply(client: Client, *, org_id: str, message_id: str) -> None:
    """Start sending an operator's stored reply (a retry of the same reply finds it on its
    way)."""
    try:
        await client.start_workflow(
            HumanReplyWorkflow.run,
            StoredMessageInput(org_id=org_id, message_id=message_id),
            id=human_reply_workflow_id(org_id, message_id),
            task_queue=LEADS,
            search_attributes=sa.org_attributes(org_id),
            static_summary="Operator's reply",
        )
    except WorkflowAlreadyStartedError:
        return
    except RPCError as error:
        raise unavailable() from error


async def start_appointment(
    client: Client, *, org_id: str, booking_id: str, lead_id: str, workflow_id: str
) -> None:
    """Start a booking's Appointment workflow (a retry finds it started).

    Raises:
        ApiError: 503 when Temporal can't be reached (the booking is recorded: a retry of
            the same ``event_id`` starts it).
    """
    await _appointment(
        client,
        AppointmentInput(org_id=org_id, booking_id=booking_id, lead_id=lead_id),
        workflow_id=workflow_id,
        news=None,
        message="The booking is recorded; retry the same request to send its confirmation.",
    )


async def _appointment(
    client: Client,
    input: AppointmentInput,
    *,
    workflow_id: str,
    news: BookingNews | None,
    message: str,
) -> None:
    """Start the Appointment workflow, or (with ``news``) signal it, starting it if it is
    not running; 503 with ``message`` when Temporal can't be reached."""
    try:
        await client.start_workflow(
            AppointmentWorkflow.run,
            input,
            id=workflow_id,
            task_queue=LEADS,
            search_attributes=sa.org_attributes(input.org_id),
            memo={"booking_id": input.booking_id, "lead_id": input.lead_id},
            static_summary="Appointment",
            start_signal=APPOINTMENT_CHANGED_SIGNAL if news is not None else None,
            start_signal_args=[news] if news is not None else [],
        )
    except WorkflowAlreadyStartedError:
        return
    except RPCError as error:
        raise unavailable(message) from error


async def start_payment_followup(
    client: Client, *, org_id: str, request_id: str, lead_id: str, workflow_id: str
) -> str | None:
    """Start a payment request's PaymentFollowup workflow (a retry finds it started) and
    return its payment link, or ``None`` if it is not made within ``LINK_WAIT`` (the
    request's GET shows it once made).

    Raises:
        ApiError: 503 when Temporal can't be reached (the request is recorded: a retry of
            the same ``event_id`` starts it).
    """
    try:
        handle = await client.start_workflow(
            PaymentFollowupWorkflow.run,
            PaymentFollowupInput(org_id=org_id, request_id=request_id, lead_id=lead_id),
            id=workflow_id,
            task_queue=LEADS,
            search_attributes=sa.org_attributes(org_id),
            memo={"payment_request_id": request_id, "lead_id": lead_id},
            static_summary="Payment follow-up",
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle_for(PaymentFollowupWorkflow.run, workflow_id)
    except RPCError as error:
        raise unavailable(
            "The payment request is recorded; retry the same request to send its link."
        ) from error
    try:
        async with asyncio.timeout(LINK_WAIT.total_seconds()):
            url: str = await handle.execute_update(PAYMENT_LINK_UPDATE, result_type=str)
            return url
    except (TimeoutError, WorkflowUpdateFailedError, RPCError) as error:
        log.info("no payment link yet for %s: %s", request_id, error)
        return None


async def tell_booking(
    client: Client,
    *,
    org_id: str,
    booking_id: str,
    lead_id: str,
    workflow_id: str,
    what: str,
    version: int,
) -> None:
    """Wake a booking's Appointment workflow to read its row again, starting it if it is not
    running (signal-with-start: a booking whose first start failed, or a late report after
    it ended; its message keys are the workflow id's, so a new run sends nothing twice).

    Raises:
        ApiError: 503 when Temporal can't be reached (the change is recorded, and a retry
            of the same request wakes it).
    """
    await _appointment(
        client,
        AppointmentInput(org_id=org_id, booking_id=booking_id, lead_id=lead_id),
        workflow_id=workflow_id,
        news=BookingNews(what=what, version=version),
        message="The change is recorded; retry the same request to tell the customer.",
    )


# --- intake --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadRunning:
    """The person's lead already running refused a start (its workflow id is taken)."""

    run_id: str | None


async def start_lead(
    client: Client,
    *,
    org_id: str,
    lead_id: str,
    receipt_id: str,
    workflow_id: str,
    source: str | None,
) -> LeadRunning | None:
    """Start the person's Lead workflow for a new lead.

    Returns:
        ``None`` when it started; else the person's lead already running.

    Raises:
        ApiError: 503 when Temporal can't be reached.
    """
    try:
        await client.start_workflow(
            LeadWorkflow.run,
            LeadInput(org_id=org_id, lead_id=lead_id, receipt_id=receipt_id),
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
    except WorkflowAlreadyStartedError as running:
        return LeadRunning(running.run_id)
    except RPCError as error:
        raise unavailable() from error
    return None


async def submit_intake(
    client: Client,
    *,
    workflow_id: str,
    run_id: str | None,
    received: IntakeReceived,
) -> IntakeAnswer | None:
    """Hand a repeat submission to the person's running lead (update ``submit_intake``),
    pinned to the run that refused the start so the answer can't come from a later one.

    Returns:
        The lead's answer; ``None`` if that run is closing (it refused the update) or has
        ended: the caller opens a new lead.

    Raises:
        ApiError: 503 when Temporal can't be reached, or no worker answers within
        ``UPDATE_TIMEOUT_S`` (the submission is recorded).
    """
    handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=LeadResult)
    try:
        return await asyncio.wait_for(
            handle.execute_update(LeadWorkflow.submit_intake, received), timeout=UPDATE_TIMEOUT_S
        )
    except WorkflowUpdateFailedError:
        return None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise unavailable() from error
    except TimeoutError:
        raise unavailable(
            "The submission is recorded but no worker took it yet; retry shortly."
        ) from None


# --- alerts --------------------------------------------------------------------------------


async def acknowledge_alert(client: Client, *, workflow_id: str, alert_id: str, by: str) -> bool:
    """Tell the alert ``alert_id`` a person has it (update ``acknowledge``; answered once its
    row says so). ``False`` when that episode has ended (it resolved meanwhile; a later
    episode of the same condition refuses an acknowledgement meant for this one).

    Raises:
        ApiError: 503 when Temporal can't be reached or no worker answers in time.
    """
    handle = client.get_workflow_handle(workflow_id)
    try:
        view: AlertView = await asyncio.wait_for(
            handle.execute_update(
                "acknowledge", Acknowledgement(by=by, alert_id=alert_id), result_type=AlertView
            ),
            timeout=UPDATE_TIMEOUT_S,
        )
    except WorkflowUpdateFailedError:
        return False
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise unavailable() from error
    except TimeoutError:
        raise unavailable("No worker took the acknowledgement yet; retry shortly.") from None
    return view.acknowledged_at is not None


# --- admin retry ---------------------------------------------------------------------------


async def start_retry_send(
    client: Client, *, org_id: str, message_id: str, force: bool, requested_by: str | None
) -> bool:
    """Start sending a failed message again (``retry-{message}``).

    One run at a time per message: a second request while one runs finds it (``False``).
    A closed run doesn't block a new one: a message whose retry failed too may be retried
    again later (its workflow sends only a row it finds failed, or reopened by itself).

    Raises:
        ApiError: 503 when Temporal can't be reached.
    """
    try:
        await client.start_workflow(
            RetrySendWorkflow.run,
            RetrySendInput(
                org_id=org_id, message_id=message_id, force=force, requested_by=requested_by
            ),
            id=retry_send_workflow_id(message_id),
            task_queue=LEADS,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=sa.org_attributes(org_id),
            static_summary="Retry of a failed send" + (" (forced)" if force else ""),
        )
    except WorkflowAlreadyStartedError:
        return False
    except RPCError as error:
        raise unavailable() from error
    return True


async def retry_send_status(client: Client, *, message_id: str) -> WorkflowExecutionStatus | None:
    """Where the message's latest retry run stands; ``None`` if it was never retried.

    Raises:
        ApiError: 503 when Temporal can't be reached.
    """
    handle = client.get_workflow_handle(retry_send_workflow_id(message_id))
    try:
        described = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise unavailable() from error
    return described.status


#: The runs ``failed_workflows`` lists: they ended on their own without finishing (a run
#: terminated or cancelled was stopped by a person, who knows).
_FAILED = {
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_FAILURE_MAX = 500


async def failed_workflows(
    client: Client, *, org_id: str, limit: int, ui_url: str
) -> list[FailedWorkflow]:
    """The org's workflow runs that failed or timed out, latest first, as Temporal's
    visibility store lists them (by the ``OrgId`` search attribute: no other org's), each
    with why, from its close event, and a link to its history in the Web UI at ``ui_url``
    (none when empty), where an operator can Reset it. Closed runs are kept for the
    namespace's retention period.

    Raises:
        ApiError: 503 when Temporal can't be reached.
    """
    if not _SAFE_ID.match(org_id):
        raise ValueError(f"not an org id: {org_id!r}")
    query = (
        f"{sa.ORG_ID.name} = '{org_id}' "
        "AND (ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut')"
    )
    try:
        runs = [run async for run in client.list_workflows(query, limit=limit, page_size=limit)]
        failures = await asyncio.gather(*(_failure_of(client, run) for run in runs))
    except RPCError as error:
        raise unavailable() from error
    namespace = quote(client.namespace, safe="")
    items = [
        FailedWorkflow(
            workflow_type=run.workflow_type,
            workflow_id=run.id,
            run_id=run.run_id,
            status=_FAILED.get(run.status, "failed") if run.status else "failed",
            started_at=run.start_time,
            closed_at=run.close_time,
            failure=failure,
            temporal_url=(
                f"{ui_url}/namespaces/{namespace}/workflows/{quote(run.id, safe='')}/"
                f"{run.run_id}/history"
                if ui_url
                else None
            ),
        )
        for run, failure in zip(runs, failures, strict=True)
    ]
    return sorted(
        items, key=lambda item: item.closed_at.timestamp() if item.closed_at else 0.0, reverse=True
    )


async def _failure_of(client: Client, run: WorkflowExecution) -> str | None:
    """Why the run ended, from its close event alone (not its whole history)."""
    handle = client.get_workflow_handle(run.id, run_id=run.run_id)
    async for event in handle.fetch_history_events(
        event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT, skip_archival=True
    ):
        if event.HasField("workflow_execution_failed_event_attributes"):
            return _explained(event.workflow_execution_failed_event_attributes.failure)
        if event.HasField("workflow_execution_timed_out_event_attributes"):
            return "The run took longer than its execution timeout."
    return None


def _explained(failure: Failure) -> str:
    """A failure's message, and its innermost cause's (an activity's error) when it says
    more."""
    text = failure.message
    inner = failure
    while inner.HasField("cause"):
        inner = inner.cause
    if inner is not failure and inner.message and inner.message != text:
        text = f"{text}: {inner.message}"
    return text[:_FAILURE_MAX]
