"""The Escalation workflow: a person gets it, or it climbs the ladder until someone does."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.escalations import EscalationActivities, RouteInput
    from activities.messages import MessageActivities, NotificationInput
    from models.rules.escalations import Routing
    from workflows import search_attributes as sa
    from workflows.payloads import (
        ESCALATION_WORKFLOW,
        EscalationAck,
        EscalationInput,
        EscalationState,
    )
    from workflows.policies import SEND_DEADLINE, SEND_RETRY, SEND_TIMEOUT, run_record

import contextlib

__all__ = ["EscalationAck", "EscalationInput", "EscalationState", "EscalationWorkflow"]

#: Patch id: the ladder marks itself ``NeedsAttention`` (and its ``OrgId``) for the Web UI
#: while unresolved.
NEEDS_ATTENTION_PATCH = "escalation-needs-attention"


@workflow.defn(name=ESCALATION_WORKFLOW)
class EscalationWorkflow:
    """``escalation-{org}-{thread}``: route the item (an online operator gets a handoff with
    the summary; nobody online, it waits in the needs-attention queue), then wait for an
    acknowledgement. Each time the SLA runs out unacknowledged it climbs a level: the next
    online operator, then the owner by SMS. Ends when resolved."""

    def __init__(self) -> None:
        """Nobody has it yet."""
        self._acknowledged: str | None = None
        self._resolved: str | None = None
        self._level = 0
        self._due: datetime | None = None
        self._notified: list[str] = []

    @workflow.run
    async def run(self, input: EscalationInput) -> EscalationState:
        """Route, wait, climb (see the class docstring)."""
        flagged = workflow.patched(NEEDS_ATTENTION_PATCH)
        if flagged:  # `NeedsAttention = true` in the Web UI lists what waits for a person
            workflow.upsert_search_attributes(
                [sa.ORG_ID.value_set(input.org_id), sa.NEEDS_ATTENTION.value_set(True)]
            )
        level = 0
        while self._resolved is None:
            routing: Routing = await run_record(
                EscalationActivities.route_escalation,
                RouteInput(
                    org_id=input.org_id,
                    escalation_id=input.escalation_id,
                    level=level,
                    now=workflow.now(),
                ),
                summary=f"route escalation (level {level})",
            )
            self._level, self._due = level, routing.sla_due_at
            if routing.status == "resolved":
                break
            if routing.operator_id is not None:
                self._notified.append(routing.operator_id)
                with contextlib.suppress(ActivityError):  # on the timeline; the SLA still runs
                    await workflow.execute_activity_method(
                        MessageActivities.send_notification,
                        NotificationInput(
                            org_id=input.org_id,
                            escalation_id=input.escalation_id,
                            operator_id=routing.operator_id,
                            level=level,
                        ),
                        start_to_close_timeout=SEND_TIMEOUT,
                        schedule_to_close_timeout=SEND_DEADLINE,
                        retry_policy=SEND_RETRY,
                        summary=f"notify operator (level {level})",
                    )
            workflow.set_current_details(f"**Level {level}:** {routing.note}")
            if self._acknowledged is not None or routing.sla_due_at is None:
                # Someone has it, or there is no one left to climb to: wait for the end.
                await workflow.wait_condition(lambda: self._resolved is not None)
                break
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._acknowledged is not None or self._resolved is not None,
                    timeout=max(routing.sla_due_at - workflow.now(), timedelta(seconds=1)),
                    timeout_summary=f"SLA: climbs past level {level} unless acknowledged",
                )
            if self._acknowledged is not None:
                workflow.set_current_details(f"**Acknowledged** by {self._acknowledged}")
                await workflow.wait_condition(lambda: self._resolved is not None)
                break
            if self._resolved is None:
                level += 1
        if flagged:
            workflow.upsert_search_attributes([sa.NEEDS_ATTENTION.value_set(False)])
        return self.state()

    @workflow.signal(name="acknowledged")
    def acknowledged(self, ack: EscalationAck) -> None:
        """A person has it: it stops climbing."""
        if self._acknowledged is None:
            self._acknowledged = ack.operator_id

    @workflow.signal(name="resolved")
    def resolved(self, ack: EscalationAck) -> None:
        """Closed: the workflow ends."""
        if self._resolved is None:
            self._resolved = ack.operator_id

    @workflow.query(name="state")
    def state(self) -> EscalationState:
        """The level, whether someone has it, when it climbs next."""
        return EscalationState(
            level=self._level,
            acknowledged_by=self._acknowledged,
            resolved_by=self._resolved,
            sla_due_at=self._due,
            notified=list(self._notified),
        )
