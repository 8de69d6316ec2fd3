"""The Alert workflow: one condition's episode, from the first bad sample to its recovery."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.alerts import AlertActivities, NoticeOutcome
    from models.payloads import (
        Acknowledgement,
        AlertEpisode,
        AlertInput,
        AlertView,
        NoticeRequest,
        Observation,
    )
    from models.rules.alerts import (
        MAIN,
        REMIND_AFTER,
        Rung,
        ack_code,
        alert_workflow_id,
        channel_to_avoid,
        ladder,
        lasted,
        worse,
    )
    from models.values import AlertState, Channel, HealthStatus
    from workflows import search_attributes as sa
    from workflows.policies import RECORD_RETRY, RECORD_TIMEOUT, SEND_RETRY, SEND_TIMEOUT

__all__ = [
    "ALERT_WORKFLOW",
    "Acknowledgement",
    "AlertInput",
    "AlertView",
    "AlertWorkflow",
    "Observation",
    "alert_workflow_id",
]

ALERT_WORKFLOW = "Alert"
#: A notice's delivery is retried this long (a provider blip), then given up: the next rung
#: or the recovery still goes.
NOTICE_DEADLINE = timedelta(minutes=10)
NOTICE_RETRY = RetryPolicy(
    initial_interval=SEND_RETRY.initial_interval,
    backoff_coefficient=SEND_RETRY.backoff_coefficient,
    maximum_interval=SEND_RETRY.maximum_interval,
    non_retryable_error_types=list(SEND_RETRY.non_retryable_error_types or ()),
)
#: Updates an alert takes before it continues as new (its history stays small).
CONTINUE_AFTER_OBSERVATIONS = 500


@workflow.defn(name=ALERT_WORKFLOW)
class AlertWorkflow:
    """``alert-{org}-{rule}-{subject}``, started (or found) by the health check with an
    ``observe`` update each time it evaluates the condition.

    1. **Pending**: nobody is told until ``pending_evaluations`` bad evaluations in a row; a
       good one (or none for ``stale_after``) ends it quietly, with no row and no notice.
    2. **Firing**: the row is written and the ladder runs on durable timers (the main contact
       at once; a critical one climbs to SMS, then to the backup contacts), crossing to the
       other channel when the alert is about one. Silences and the SMS quota are applied to
       each notice. ``NeedsAttention`` is set for the Web UI.
    3. **Acknowledged** (the ``acknowledge`` update, from the page, the API or an SMS reply):
       the ladder stops; one reminder if it still fires ``REMIND_AFTER`` later.
    4. **Recovering**: a good evaluation; a bad one puts it back (no new notice: a flapping
       check notifies once). ``recovery_evaluations`` good ones in a row resolve it.
    5. **Resolved**: the row says so and everyone who was told gets the recovery notice with
       how long it lasted. The run ends; a later episode is a new run.
    """

    @workflow.init
    def __init__(self, input: AlertInput) -> None:
        """Nothing observed yet (or what the run before this one carried over); set before
        any update is handled, even one that arrives with the start."""
        self._input = input
        self._view = input.carried or AlertView(
            state=AlertState.PENDING, severity=HealthStatus.UNKNOWN, summary=""
        )
        #: Bumped by every change; the row carries it as its revision.
        self._version = input.carried.revision if input.carried else 0
        self._recorded = self._version
        self._observations = 0

    @workflow.run
    async def run(self, input: AlertInput) -> AlertView:
        """Pending, firing, acknowledged, recovering, resolved (see the class docstring)."""
        workflow.upsert_search_attributes([sa.ORG_ID.value_set(input.org_id)])
        if self._view.state == AlertState.PENDING and not await self._held_long_enough(input):
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._view
        if self._view.fired_at is None:
            await self._fire()
        avoid = channel_to_avoid(input.rule, input.subject)
        while True:
            if self._recorded != self._version:
                await self._record()
            if self._view.state == AlertState.RESOLVED:
                break
            if (
                self._observations >= CONTINUE_AFTER_OBSERVATIONS
                and workflow.all_handlers_finished()
            ):
                workflow.continue_as_new(
                    replace(input, carried=replace(self._view, revision=self._version))
                )
            rung, due = self._next_notice(avoid)
            now = workflow.now()
            if rung is not None and due is not None and due <= now:
                await self._notify(rung.step, rung.channel, rung.who)
                continue
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    self._moved_from(self._version),
                    timeout=(due - now) if due is not None else None,
                    timeout_summary="next notice" if due is not None else None,
                )
        await self._recovered()
        workflow.upsert_search_attributes([sa.NEEDS_ATTENTION.value_set(False)])
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    async def _held_long_enough(self, input: AlertInput) -> bool:
        """Pending: ``True`` once enough bad evaluations came in a row; ``False`` when a good
        one came first, or none for ``stale_after``."""
        while True:
            if self._view.good_in_a_row > 0:
                return False
            if self._view.bad_in_a_row >= input.pending_evaluations:
                return True
            try:
                await workflow.wait_condition(
                    self._moved_from(self._version),
                    timeout=input.stale_after,
                    timeout_summary="pending: no longer observed",
                )
            except TimeoutError:
                return False

    async def _fire(self) -> None:
        """Pending → firing: the episode gets its row and its code."""
        alert_id = f"alrt_{workflow.uuid4().hex}"
        self._view = replace(
            self._view,
            state=AlertState.FIRING,
            alert_id=alert_id,
            code=ack_code(alert_id),
            fired_at=workflow.now(),
        )
        workflow.upsert_search_attributes([sa.NEEDS_ATTENTION.value_set(True)])
        self._changed()

    def _next_notice(self, avoid: Channel | None) -> tuple[Rung | None, datetime | None]:
        """The next notice due and when: the ladder's next rung while unacknowledged, one
        reminder while acknowledged and still firing, none while recovering."""
        view = self._view
        assert view.fired_at is not None
        if view.state == AlertState.FIRING:
            for rung in ladder(view.severity, avoid=avoid):
                if rung.step not in view.notified:
                    due = view.fired_at + rung.after
                    if view.silenced_until is not None:  # held back: again when it ends
                        due = max(due, view.silenced_until)
                    return rung, due
            return None, None
        if view.state == AlertState.ACKNOWLEDGED and not view.reminded:
            assert view.acknowledged_at is not None
            first = ladder(view.severity, avoid=avoid)[0]
            reminder = Rung(step="reminder", after=REMIND_AFTER, channel=first.channel, who=MAIN)
            return reminder, view.acknowledged_at + REMIND_AFTER
        return None, None

    async def _notify(self, step: str, channel: Channel, who: str) -> None:
        """Send one step's notices (each recorded once, whatever happens to the delivery).
        A step a silence held back entirely stays due, tried again (as a new notice) when
        the silence ends: a condition still wrong after a maintenance window is told."""
        view = self._view
        assert view.alert_id is not None
        attempt = f"{step}.{view.retries}" if view.retries else step
        outcomes: list[NoticeOutcome] = []
        with contextlib.suppress(Exception):  # recorded as a notice; the ladder goes on
            outcomes = await self._send(
                NoticeRequest(
                    org_id=self._input.org_id,
                    alert_id=view.alert_id,
                    step=attempt,
                    channel=channel,
                    who=who,
                )
            )
        held = [o.silenced_until for o in outcomes if o.silenced_until is not None]
        if held and step != "reminder":
            self._view = replace(
                self._view, silenced_until=max(held), retries=self._view.retries + 1
            )
            return
        self._view = replace(self._view, silenced_until=None, retries=0)
        if step == "reminder":
            self._view = replace(self._view, reminded=True)
        else:
            self._view = replace(self._view, notified=[*self._view.notified, step])

    async def _send(self, request: NoticeRequest) -> list[NoticeOutcome]:
        result: list[NoticeOutcome] = await workflow.execute_activity_method(
            AlertActivities.send_alert_notices,
            request,
            start_to_close_timeout=SEND_TIMEOUT,
            schedule_to_close_timeout=NOTICE_DEADLINE,
            retry_policy=NOTICE_RETRY,
            summary=f"alert notice: {request.step}",
        )
        return result

    async def _recovered(self) -> None:
        """Resolved: a recovery notice to everyone who was told, with how long it lasted."""
        view = self._view
        assert self._input is not None and view.alert_id is not None
        if not view.notified or view.fired_at is None or view.resolved_at is None:
            return
        duration = view.resolved_at - view.fired_at
        workflow.set_current_details(f"**Resolved** after {lasted(duration)}")
        with contextlib.suppress(Exception):
            await self._send(
                NoticeRequest(
                    org_id=self._input.org_id,
                    alert_id=view.alert_id,
                    step="recovery",
                    channel=ladder(view.severity, avoid=None)[0].channel,
                    who=MAIN,
                    recovered_after_s=duration.total_seconds(),
                )
            )

    async def _record(self) -> None:
        """Write the row as it stands (a local activity). The run loop and the acknowledge
        update may both write; the row keeps the highest revision."""
        version = self._version
        view = self._view
        assert view.alert_id is not None
        assert view.code is not None and view.opened_at is not None
        await workflow.execute_local_activity_method(
            AlertActivities.record_alert,
            AlertEpisode(
                org_id=self._input.org_id,
                alert_id=view.alert_id,
                workflow_id=workflow.info().workflow_id,
                rule=self._input.rule,
                subject=self._input.subject,
                severity=view.severity,
                state=view.state,
                summary=view.summary,
                detail=view.detail,
                code=view.code,
                opened_at=view.opened_at,
                fired_at=view.fired_at,
                acknowledged_at=view.acknowledged_at,
                acknowledged_by=view.acknowledged_by,
                resolved_at=view.resolved_at,
                revision=version,
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record alert ({view.state})",
        )
        self._recorded = max(self._recorded, version)
        state = view.state.value.replace("_", " ")
        workflow.set_current_details(f"**{state.title()}** ({view.severity}): {view.summary}")

    def _changed(self) -> None:
        self._version += 1

    def _moved_from(self, seen: int) -> Callable[[], bool]:
        """A condition: something changed since version ``seen``."""
        return lambda: self._version != seen

    @workflow.update(name="observe")
    def observe(self, observation: Observation) -> AlertView:
        """The health check's latest evaluation of the condition."""
        view = self._view
        seen = view.last_observed_at
        if seen is not None and observation.at <= seen:
            return view  # a retried delivery of an evaluation already taken
        self._observations += 1
        view = replace(view, last_observed_at=observation.at)
        if observation.status == HealthStatus.UNKNOWN:
            self._view = view
            return view  # the check could not tell: neither bad nor good
        bad = observation.status != HealthStatus.OK
        if bad:
            view = replace(
                view,
                bad_in_a_row=view.bad_in_a_row + 1,
                good_in_a_row=0,
                severity=worse(view.severity, observation.status),
                summary=observation.summary,
                detail=observation.detail,
                opened_at=view.opened_at or observation.at,
            )
            if view.state == AlertState.RECOVERING:
                back = AlertState.ACKNOWLEDGED if view.acknowledged_at else AlertState.FIRING
                view = replace(view, state=back)
        else:
            view = replace(view, good_in_a_row=view.good_in_a_row + 1, bad_in_a_row=0)
            if view.state in (AlertState.FIRING, AlertState.ACKNOWLEDGED):
                view = replace(view, state=AlertState.RECOVERING)
            if (
                view.state == AlertState.RECOVERING
                and view.good_in_a_row >= self._input.recovery_evaluations
            ):
                view = replace(view, state=AlertState.RESOLVED, resolved_at=observation.at)
        self._view = view
        self._changed()
        return view

    @observe.validator
    def _observe_while_open(self, observation: Observation) -> None:
        if self._view.state == AlertState.RESOLVED:
            # Resolved and closing: the next evaluation opens a new episode (a new run).
            raise ValueError("this alert has resolved")

    @workflow.update(name="acknowledge")
    async def acknowledge(self, ack: Acknowledgement) -> AlertView:
        """A person has it: the ladder stops. Answers once the row says so (written here, not
        by the run loop, which may be busy with a notice)."""
        view = self._view
        open_ = view.state != AlertState.RESOLVED
        if view.fired_at is not None and view.acknowledged_at is None and open_:
            self._view = replace(
                view,
                state=AlertState.ACKNOWLEDGED if view.state == AlertState.FIRING else view.state,
                acknowledged_at=workflow.now(),
                acknowledged_by=ack.by[:120],
            )
            workflow.upsert_search_attributes([sa.NEEDS_ATTENTION.value_set(False)])
            self._changed()
            await self._record()
        return self._view

    @acknowledge.validator
    def _acknowledge_only_when_fired(self, ack: Acknowledgement) -> None:
        if self._view.fired_at is None:
            raise ValueError("this alert has not fired")
        if ack.alert_id is not None and ack.alert_id != self._view.alert_id:
            raise ValueError("that alert has resolved; this is a later one")

    @workflow.query(name="state")
    def state(self) -> AlertView:
        """The alert as it stands."""
        return self._view
