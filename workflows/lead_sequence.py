"""A lead's nudge sequence, as its Lead run sees it: a NudgeSequence child, or one not
started yet (a pending start), paused and resumed with the thread's hold.

A small deterministic helper of ``LeadWorkflow``: it starts, stops and tells the child;
the Lead run decides when.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.ids import nudge_workflow_id, sequence_key_prefix
    from models.payloads import NextStep
    from workflows.hold_clock import HoldClock
    from workflows.payloads import (
        NUDGE_STOP_SIGNAL,
        NUDGE_WORKFLOW,
        TAKEOVER_REASON,
        AutomationPaused,
        LeadCarry,
        NudgeInput,
        NudgeResult,
        NudgeStop,
        stops_sequence,
    )

__all__ = ["CONTINUING", "NUDGE_HEAD_START", "LeadSequence", "SequenceState"]

#: Patch id: leads with a sequence for their intent run it as a child NudgeSequence.
NUDGE_PATCH = "nudge-sequence"
#: Patch id: the sequence's workflow starts shortly before its first step is due, not with
#: the first touch (a lead that replies or converts first never needs one, and a burst of
#: leads gets its first touches without the sequences' bookkeeping in the way).
NUDGE_WHEN_DUE_PATCH = "nudge-start-when-due"
#: How long before its first step a sequence's workflow starts.
NUDGE_HEAD_START = timedelta(minutes=1)
#: Stop reason for a sequence paused so the Lead run can continue as new.
CONTINUING = "continue-as-new"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SequenceState:
    """Where a sequence stopped for continue-as-new stood: still going (``active``), the
    step it reached and the anchor it counts from."""

    active: bool
    index: int
    anchor: datetime | None


class LeadSequence:
    """The lead's sequence: its name, its child workflow (one per Lead run that ran it) and,
    until it starts, its first step, when to start it and the anchor its steps count from.

    While the thread is held (``hold``) a pending start waits; the release postpones it by
    as long as the hold lasted.
    """

    def __init__(self, *, org_id: str, lead_id: str, hold: HoldClock) -> None:
        """No sequence yet."""
        self._org_id = org_id
        self._lead_id = lead_id
        self._hold = hold
        #: The sequence's name (``None``: the lead has none).
        self.name: str | None = None
        self.runs = 0
        self.handle: workflow.ChildWorkflowHandle[Any, Any] | None = None
        #: A sequence not started yet: its first step, when to start it and its anchor.
        self.first_step: NextStep | None = None
        self.start_at: datetime | None = None
        self.anchor: datetime | None = None

    def take_up(self, carry: LeadCarry) -> None:
        """Where the previous run left it (it restarts the child, if it ran one)."""
        self.name = carry.sequence
        self.runs = carry.nudge_runs
        self.first_step = carry.first_step
        self.start_at = carry.nudge_start_at
        self.anchor = carry.nudge_anchor if carry.nudge_start_at else None

    async def begin(
        self,
        name: str | None,
        *,
        has_first_touch: bool,
        first: NextStep | None,
        anchor: datetime | None,
    ) -> None:
        """After the first touch: start the sequence, or plan its start for shortly before
        its first step (``NUDGE_HEAD_START``)."""
        if not (name and has_first_touch and workflow.patched(NUDGE_PATCH)):
            return
        self.name = name
        if first and first.due_at and workflow.patched(NUDGE_WHEN_DUE_PATCH):
            anchor = anchor or workflow.now()
            late = workflow.now() - anchor
            if late > NUDGE_HEAD_START:
                # The first touch was held back (quiet hours): the sequence counts from
                # when it went, not from intake.
                anchor += late
                first = dataclasses.replace(first, due_at=first.due_at + late, due_local=None)
            self.first_step = first
            self.anchor = anchor
            assert first.due_at is not None
            self.start_at = first.due_at - NUDGE_HEAD_START
            await self.start_if_due()
        else:
            await self.start()

    def due(self) -> bool:
        """A pending start's time has come (held or not)."""
        return self.start_at is not None and workflow.now() >= self.start_at

    def until_start(self) -> timedelta | None:
        """How long until a pending start, unless the thread is held (``None``)."""
        if self.start_at is not None and not self._hold.held:
            return self.start_at - workflow.now()
        return None

    async def start_if_due(self) -> None:
        """Start the sequence's workflow once its first step is near (not while an operator
        holds the thread: its start moves on by as long as the hold lasts)."""
        if self.start_at is not None and not self._hold.held and workflow.now() >= self.start_at:
            await self.start(anchor=self.anchor)

    async def start(self, *, start_index: int = 0, anchor: datetime | None = None) -> None:
        """Start the NudgeSequence child (paused at once if the thread is held)."""
        assert self.name is not None
        self.start_at = None
        self.runs += 1
        self.handle = await workflow.start_child_workflow(
            NUDGE_WORKFLOW,
            NudgeInput(
                org_id=self._org_id,
                lead_id=self._lead_id,
                sequence=self.name,
                # The workflow id outlives continue-as-new: a restarted sequence keeps its keys.
                key_prefix=sequence_key_prefix(
                    workflow.info().workflow_id, self._lead_id, self.name
                ),
                start_index=start_index,
                anchor=anchor,
            ),
            id=nudge_workflow_id(self._lead_id, self.runs),
            result_type=NudgeResult,
            static_summary=f"Nudge sequence {self.name}",
        )
        if self._hold.held:
            await self.tell()

    def active(self) -> bool:
        """A sequence is running or waiting to start."""
        running = self.handle is not None and not self.handle.done()
        return running or self.start_at is not None

    def workflow_id(self) -> str | None:
        """The running child's id, whose ``progress`` query says what comes next."""
        return self.handle.id if self.handle and self.active() else None

    def pending_step(self) -> NextStep | None:
        """The first step of a sequence waiting to start."""
        return self.first_step if self.start_at is not None else None

    def pending_steps(self) -> int:
        """Steps of a sequence still waiting to start (a running one counts its own)."""
        return self.first_step.total if self.first_step and self.start_at else 0

    async def stop(self, reason: str) -> None:
        """Stop it (a reason its ``stop_on`` leaves out lets it go on)."""
        if self.start_at is not None:
            stop_on = self.first_step.stop_on if self.first_step else None
            if stops_sequence(reason, stop_on):
                self.start_at = None  # never started
            return
        if self.handle is not None and not self.handle.done():
            await self.handle.signal(NUDGE_STOP_SIGNAL, NudgeStop(reason=reason))

    def postpone(self, held_for: timedelta) -> None:
        """A pending start moves on by as long as the hold lasted."""
        if self.start_at is None:
            return
        self.start_at += held_for
        if self.anchor is not None:
            self.anchor += held_for
        first = self.first_step
        if first is not None and first.due_at is not None:
            self.first_step = dataclasses.replace(
                first, due_at=first.due_at + held_for, due_local=None
            )

    async def tell(self) -> None:
        """Tell the running child whether it is paused, as things stand when it is its turn
        (a takeover and a release in quick succession leave it resumed)."""
        await self._hold.tell(lambda: self.handle, AutomationPaused(reason=TAKEOVER_REASON))

    async def stop_to_continue(self) -> SequenceState:
        """Stop a running sequence so the Lead run can continue as new: where it stood.

        One not started yet has nothing to stop: its start (``start_at``, its first step)
        is carried as it stands, and the next run starts it then.
        """
        if self.handle is None or self.handle.done():
            return SequenceState(active=False, index=0, anchor=None)
        await self.handle.signal(NUDGE_STOP_SIGNAL, NudgeStop(reason=CONTINUING))
        result: NudgeResult = await self.handle
        return SequenceState(
            active=result.stopped == CONTINUING, index=result.steps_done, anchor=result.anchor
        )
