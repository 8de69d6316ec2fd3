"""What a Lead run is doing, as its ``status`` query and the Web UI's current details say it.

A small deterministic helper of ``LeadWorkflow``: the stage, the touches sent, what comes
next and why the lead waits (a takeover first). No personal data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.payloads import NextStep
    from models.values import Channel, Stage
    from workflows.hold_clock import HoldClock
    from workflows.payloads import LeadStatus, step_words

__all__ = ["TOUCH_CAP", "LiveStatus", "duration_words"]

#: Touches the Lead run itself sends (the first touch; the sequence's steps are its own).
TOUCH_CAP = 1


class LiveStatus:
    """The lead's stage and touches, its next action and why it waits."""

    def __init__(self, hold: HoldClock) -> None:
        """A new lead, about to be recorded; ``hold`` says whether an operator has it."""
        self._hold = hold
        self.stage = Stage.NEW
        self.touches = 0
        self.next_action: str | None = "record the lead and send the first touch"
        self.next_action_at: datetime | None = None
        self.waiting_reason: str | None = None
        #: Why the lead got no first touch, if it didn't.
        self.no_touch_reason: str | None = None

    def sending_first_touch(self, channel: Channel) -> None:
        """The first touch is about to go."""
        self.next_action = f"send the first {channel.value.upper()}"
        self.next_action_at = workflow.now()
        self.publish()

    def held_back(self, channel: Channel, until: datetime, reason: str) -> None:
        """The compliance gate held a touch back until ``until``."""
        self.next_action_at = until
        self.waiting_reason = f"{channel.value} held back: {reason}"
        self.publish()

    def waiting_for_news(self, then: Stage, deadline: datetime, step: NextStep | None) -> None:
        """The lead waits for a reply until ``deadline``, then moves to ``then`` (``step``:
        the first step of a sequence waiting to start)."""
        self.next_action = f"mark the lead {then.value}"
        self.next_action_at = deadline
        self.waiting_reason = (
            f"waiting for a reply until {deadline:%Y-%m-%d %H:%M} UTC, then {then.value}"
        )
        self._announce(step)
        if self.no_touch_reason:
            self.waiting_reason = f"{self.no_touch_reason}; {self.waiting_reason}"
        self.publish()

    def waiting_for_sequence(self, step: NextStep | None) -> None:
        """The lead waits for its sequence to end (``step``: as for ``waiting_for_news``)."""
        self.next_action = "the nudge sequence's next step"
        self.next_action_at = None
        self.waiting_reason = "nudge sequence running; lost only after it ends unanswered"
        self._announce(step)
        self.publish()

    def closed(self, conversion: str | None) -> None:
        """The lead is done: converted (``conversion``), opted out or lost."""
        self.next_action = None
        self.next_action_at = None
        self.waiting_reason = (
            f"closed: {conversion}"
            if conversion
            else "closed: opted out"
            if self.stage == Stage.OPTED_OUT
            else "closed: no response after two inactivity periods"
        )
        self.publish()

    def _announce(self, step: NextStep | None) -> None:
        """While the sequence waits to start, say when its first step is due."""
        if step is None or step.due_at is None:
            return
        when = step.due_local or f"{step.due_at:%a %d %b %H:%M} UTC"
        words = step_words(step.channel.value, when=when, number=1, total=step.total)
        self.next_action = words.next_action
        self.next_action_at = step.due_at
        waiting = words.waiting_reason
        self.waiting_reason = (
            f"{waiting}; {self.waiting_reason}" if self.waiting_reason else waiting
        )

    def waiting(self) -> str | None:
        """Why the lead waits, a takeover first."""
        if not self._hold.held:
            return self.waiting_reason
        paused = "paused: an operator has the conversation"
        return f"{paused}; {self.waiting_reason}" if self.waiting_reason else paused

    def publish(self) -> None:
        """Tell the Web UI what the lead is doing (current details; no personal data)."""
        lines = [f"**Stage:** {self.stage.value}", f"**Touches:** {self.touches}/{TOUCH_CAP}"]
        if self.next_action:
            when = f" at {self.next_action_at:%Y-%m-%d %H:%M} UTC" if self.next_action_at else ""
            lines.append(f"**Next:** {self.next_action}{when}")
        waiting = self.waiting()
        if waiting:
            lines.append(f"**Waiting:** {waiting}")
        workflow.set_current_details("\n\n".join(lines))

    def status(self, *, pending_steps: int, nudge_workflow_id: str | None) -> LeadStatus:
        """The ``status`` query's answer (``pending_steps``: those of a sequence waiting to
        start; a running one reports its own progress)."""
        return LeadStatus(
            stage=self.stage,
            next_action=self.next_action,
            next_action_at=self.next_action_at,
            attempts_used=self.touches,
            attempts_cap=TOUCH_CAP + pending_steps,
            waiting_reason=self.waiting(),
            nudge_workflow_id=nudge_workflow_id,
        )


def duration_words(duration: timedelta) -> str:
    """``2 days``, ``1 hour``, ``30 minutes``."""
    hours = int(duration.total_seconds() // 3600)
    if hours and hours % 24 == 0:
        return f"{hours // 24} day{'s' if hours != 24 else ''}"
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{int(duration.total_seconds() // 60)} minutes"
