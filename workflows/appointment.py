"""A booked visit: confirmation, reminders that follow the visit when it moves, the customer's
and provider's news, and the rating afterwards."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.appointments import AppointmentActivities, AppointmentStateInput
    from activities.messages import AppointmentMessageInput, MessageActivities
    from models.ids import appointment_message_key
    from models.payloads import AppointmentState
    from models.rules.appointments import AppointmentText
    from models.values import BookingStatus
    from workflows import search_attributes as sa
    from workflows.policies import RECORD_RETRY, RECORD_TIMEOUT
    from workflows.transactional import StepLog

__all__ = [
    "APPOINTMENT_CHANGED_SIGNAL",
    "APPOINTMENT_WORKFLOW",
    "AppointmentInput",
    "AppointmentProgress",
    "AppointmentResult",
    "AppointmentWorkflow",
    "BookingNews",
]

APPOINTMENT_WORKFLOW = "Appointment"
APPOINTMENT_CHANGED_SIGNAL = "booking_changed"
#: A visit nobody reports (completed, no-show) stops being followed this long after it starts.
UNREPORTED_AFTER = timedelta(days=3)
#: How long a rating request waits for its answer.
RATING_WAIT = timedelta(days=7)


@dataclass(frozen=True, kw_only=True)
class AppointmentInput:
    """Follow one booking (its row holds everything else)."""

    org_id: str
    booking_id: str
    lead_id: str


@dataclass(frozen=True, kw_only=True)
class BookingNews:
    """The booking's row changed (signal ``booking_changed``): read it again."""

    #: What changed, for the history's reader: ``moved``, ``cancelled``, ``on_my_way``...
    what: str
    #: The booking's version after the change.
    version: int = 0


@dataclass(frozen=True, kw_only=True)
class AppointmentResult:
    """How the booking ended: ``cancelled``, ``no_show``, ``completed`` (rated or not) or
    ``unreported``; and the messages it sent."""

    outcome: str
    sent: list[str] = field(default_factory=list)
    rating: int | None = None


@dataclass(frozen=True, kw_only=True)
class AppointmentProgress:
    """Query ``progress``: the booking as last read, what comes next, what was sent."""

    version: int
    status: str
    starts_at: datetime | None
    next_step: str | None
    next_at: datetime | None
    sent: list[str]
    skipped: list[str]


@dataclass(frozen=True, kw_only=True)
class _Step:
    """One message the booking calls for: its kind, key step and when it is due."""

    kind: AppointmentText
    step: str
    due: datetime
    version: int
    offset_s: int | None = None


@workflow.defn(name=APPOINTMENT_WORKFLOW)
class AppointmentWorkflow:
    """One booking, from the confirmation to the rating.

    The booking's row is the truth: the API writes each change there first, then signals
    ``booking_changed`` to wake this workflow, which reads the row again
    (``appointment_state``) and works out what is due:

    1. the confirmation, at once;
    2. each reminder of the current time (version), at its planned time (the quiet hours
       already moved or skipped it), keyed ``reminder-v{version}-{offset}``: a move is a new
       version, so the old time's pending reminders are never sent (and the send itself
       re-checks the row, so one due in the instant before the signal lands is skipped too);
    3. one ``moved`` notice per version the workflow sees;
    4. thanks for a C, a note for an R, an on-my-way text;
    5. after ``completed``: the rating request after the org's delay, then thanks for the
       rating (a low one is escalated when the reply is recorded).

    It ends on a cancellation (with a notice), a no-show, a rated (or unanswered) visit, or a
    visit nobody reported ``UNREPORTED_AFTER`` its start. Every send is keyed
    ``{workflow_id}/{step}``, so a retry, a replay or a restarted worker sends nothing twice.
    """

    def __init__(self) -> None:
        self._news = 0
        self._seen = 0
        self._state: AppointmentState | None = None
        self._log = StepLog()
        #: The version the confirmation named (``None``: not sent).
        self._confirmed: int | None = None
        self._next: _Step | None = None

    @workflow.run
    async def run(self, input: AppointmentInput) -> AppointmentResult:
        """Read, send what is due, wait for the next step or news; until the visit is over."""
        sa.mark_org(input.org_id)
        while True:
            self._seen = self._news
            state = await self._read(input)
            ended = self._ended(state)
            steps = [step for step in self._steps(state) if step.step not in self._log.done]
            if ended is not None and not steps:
                return self._finish(ended, state)
            now = workflow.now()
            due = min(steps, key=self._due_at, default=None)
            if due is not None and self._due_at(due) <= now:
                await self._send(input, due, state)
                continue
            wake = self._due_at(due) if due is not None else self._give_up_at(state)
            if due is None and wake <= now:
                return self._finish(ended or "unreported", state)
            self._next = due
            workflow.set_current_details(
                f"**Next:** {due.kind.value.replace('_', ' ')} at {wake:%Y-%m-%d %H:%M} UTC"
                if due is not None
                else f"**Waiting:** for news of the visit until {wake:%Y-%m-%d %H:%M} UTC"
            )
            # News, or the next step's time (then the row is read again).
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._news != self._seen,
                    timeout=wake - now,
                    timeout_summary=due.step if due is not None else "visit over",
                )

    @workflow.signal(name=APPOINTMENT_CHANGED_SIGNAL)
    def booking_changed(self, news: BookingNews) -> None:
        """The booking's row changed (moved, cancelled, confirmed, a visit event...)."""
        self._news += 1

    @workflow.query(name="progress")
    def progress(self) -> AppointmentProgress:
        """The booking as last read, the next message and when, what was sent and skipped."""
        state = self._state
        step = self._next
        return AppointmentProgress(
            version=state.version if state else 0,
            status=state.status if state else BookingStatus.SCHEDULED.value,
            starts_at=state.starts_at if state else None,
            next_step=step.step if step else None,
            next_at=self._due_at(step) if step else None,
            sent=list(self._log.sent),
            skipped=list(self._log.skipped),
        )

    async def _read(self, input: AppointmentInput) -> AppointmentState:
        state: AppointmentState = await workflow.execute_local_activity_method(
            AppointmentActivities.appointment_state,
            AppointmentStateInput(
                org_id=input.org_id, booking_id=input.booking_id, now=workflow.now()
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary="read the booking",
        )
        self._state = state
        return state

    def _steps(self, state: AppointmentState) -> list[_Step]:
        """Every message the booking as it stands calls for (done ones are filtered out)."""
        start = workflow.info().start_time
        version = state.version
        steps = [
            _Step(kind=AppointmentText.CONFIRMATION, step="confirmation", due=start, version=1)
        ]
        status = BookingStatus(state.status)
        if status == BookingStatus.CANCELLED:
            # Nothing else goes; the customer hears of it once (if they heard of the booking).
            return (
                [
                    _Step(
                        kind=AppointmentText.CANCELLED, step="cancelled", due=start, version=version
                    )
                ]
                if "confirmation" in self._log.done
                else []
            )
        upcoming = status in (BookingStatus.SCHEDULED, BookingStatus.CONFIRMED)
        # A move is news to a customer who was sent an earlier time (a confirmation held back
        # by the quiet hours is claimed with the time as it is then).
        if upcoming and self._confirmed is not None and version > self._confirmed:
            steps.append(
                _Step(
                    kind=AppointmentText.MOVED, step=f"moved-v{version}", due=start, version=version
                )
            )
        if upcoming and state.confirmed_at is not None:
            steps.append(
                _Step(
                    kind=AppointmentText.CONFIRMED,
                    step=f"confirmed-v{version}",
                    due=state.confirmed_at,
                    version=version,
                )
            )
        if upcoming and state.reschedule_requested_at is not None:
            steps.append(
                _Step(
                    kind=AppointmentText.RESCHEDULE_ASKED,
                    step=f"reschedule-asked-v{version}",
                    due=state.reschedule_requested_at,
                    version=version,
                )
            )
        if upcoming and state.on_my_way_at is not None:
            steps.append(
                _Step(
                    kind=AppointmentText.ON_MY_WAY,
                    step=f"on-my-way-v{version}",
                    due=state.on_my_way_at,
                    version=version,
                )
            )
        if upcoming:
            steps.extend(
                _Step(
                    kind=AppointmentText.REMINDER,
                    step=f"reminder-v{version}-{reminder.offset_s}",
                    due=reminder.at,
                    version=version,
                    offset_s=reminder.offset_s,
                )
                for reminder in state.reminders
                if reminder.at is not None
            )
        if status == BookingStatus.COMPLETED and state.completed_at is not None:
            steps.append(
                _Step(
                    kind=AppointmentText.RATING_REQUEST,
                    step="rating-request",
                    due=state.completed_at + timedelta(seconds=state.rating_request_after_s),
                    version=version,
                )
            )
            if state.rated_at is not None:
                steps.append(
                    _Step(
                        kind=AppointmentText.RATED,
                        step="rated",
                        due=state.rated_at,
                        version=version,
                    )
                )
        return steps

    def _ended(self, state: AppointmentState) -> str | None:
        """How the visit ended, once nothing more will be sent for it (``None``: not yet)."""
        status = BookingStatus(state.status)
        if status in (BookingStatus.CANCELLED, BookingStatus.NO_SHOW):
            return status.value
        if status == BookingStatus.COMPLETED:
            if state.rated_at is not None:
                return "rated"
            if "rating-request" in self._log.skipped:
                return "completed"
            asked = state.rating_requested_at
            if asked is not None and workflow.now() >= asked + RATING_WAIT:
                return "completed"
        return None

    def _give_up_at(self, state: AppointmentState) -> datetime:
        """When the workflow stops waiting for news."""
        if state.status == BookingStatus.COMPLETED and state.rating_requested_at is not None:
            return state.rating_requested_at + RATING_WAIT
        return state.starts_at + UNREPORTED_AFTER

    def _due_at(self, step: _Step) -> datetime:
        return self._log.due_at(step.step, step.due)

    async def _send(self, input: AppointmentInput, step: _Step, state: AppointmentState) -> None:
        """Send one step's message (``StepLog.send``); a confirmation names the time as the
        row had it just now."""
        await self._log.send(
            MessageActivities.send_appointment_message,
            AppointmentMessageInput(
                org_id=input.org_id,
                booking_id=input.booking_id,
                kind=step.kind.value,
                version=step.version,
                idempotency_key=appointment_message_key(workflow.info().workflow_id, step.step),
                offset_s=step.offset_s,
            ),
            step=step.step,
        )
        if step.kind == AppointmentText.CONFIRMATION and step.step in self._log.sent:
            self._confirmed = state.version

    def _finish(self, outcome: str, state: AppointmentState) -> AppointmentResult:
        self._next = None
        workflow.set_current_details(f"**Done:** {outcome}")
        return AppointmentResult(outcome=outcome, sent=list(self._log.sent), rating=state.rating)
