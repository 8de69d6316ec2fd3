"""The hold clock: while an operator holds the contact's thread, automation's clock stops.

One definition for the Lead, its NudgeSequence and the sequence's CallRetry loop (signals
``taken_over``/``released`` to the Lead, ``pause``/``resume`` to the children): a takeover
pauses the clock; the wait left to the next step or call is waited again from the release;
a sequence not started yet starts as much later as the hold lasted (``release`` says by how
much). A small deterministic helper, like samples-python's ``updatable_timer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.payloads import PAUSE_SIGNAL, RESUME_SIGNAL, AutomationPaused

__all__ = ["HoldClock"]


class HoldClock:
    """Whether an operator holds the thread, since when, and how many releases there were.

    Create it in the workflow's ``__init__`` (it keeps a lock for ``tell``); call ``hold``
    and ``release`` from the workflow's takeover signal handlers.
    """

    def __init__(self, held_since: datetime | None = None) -> None:
        """Not held, unless a run that continued as new was (``held_since``)."""
        #: When the current hold began (``None``: not held).
        self.held_since = held_since
        #: Releases so far: a change ends a wait on a touch the takeover held back (the
        #: gate may let it go now), whether or not this run had heard of the hold.
        self.releases = 0
        #: How long the wait under way had been held when it was stopped (``wait_until``):
        #: a restarted sequence counts its wait from that much later.
        self.held_when_stopped = timedelta(0)
        #: One pause or resume at a time reaches a child, each delivered before the next.
        self._lock = asyncio.Lock()

    @property
    def held(self) -> bool:
        """An operator holds the thread."""
        return self.held_since is not None

    def hold(self) -> bool:
        """The thread is held from now; ``False`` if it was already."""
        if self.held_since is not None:
            return False
        self.held_since = workflow.now()
        return True

    def release(self) -> timedelta | None:
        """The thread is the AI's again: how long the hold lasted (``None``: it wasn't
        held). Counted in ``releases`` either way."""
        self.releases += 1
        if self.held_since is None:
            return None
        held_for = workflow.now() - self.held_since
        self.held_since = None
        return held_for

    async def wait_until(
        self,
        moment: datetime,
        *,
        summary: str,
        stopped: Callable[[], bool],
        moved: Callable[[datetime | None], None],
        skip_when_due: bool = False,
    ) -> bool:
        """Wait on a durable timer for ``moment``; ``False`` if ``stopped()`` first.

        A hold stops the clock: ``moved(None)`` hears of it, the current details say so,
        and what was left of the wait is waited again from the release (``moved`` hears
        the new moment), so the workflow goes on where it was, not with a burst of overdue
        steps. Stopped during the hold, ``held_when_stopped`` says how long it had lasted.

        With ``skip_when_due``, a moment already come is not waited on (the call-retry
        loop); without it, the wait still lets signals that came meanwhile land first (the
        sequence).
        """
        while True:
            if not skip_when_due or moment > workflow.now():
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: stopped() or self.held,
                        timeout=moment - workflow.now(),
                        timeout_summary=summary,
                    )
            if stopped():
                return False
            if not self.held:
                return True
            left = max(moment - workflow.now(), timedelta(0))
            paused_at = workflow.now()
            moved(None)
            workflow.set_current_details(
                f"**Paused:** an operator has the conversation ({summary}, {left} left)"
            )
            await workflow.wait_condition(lambda: stopped() or not self.held)
            if stopped():
                self.held_when_stopped = workflow.now() - paused_at
                return False
            moment = workflow.now() + left
            moved(moment)

    async def tell(
        self,
        child: Callable[[], workflow.ChildWorkflowHandle[Any, Any] | None],
        why: AutomationPaused,
    ) -> None:
        """Signal the running ``child()`` ``pause`` or ``resume``, as things stand when it
        is its turn (a hold and a release in quick succession leave it resumed)."""
        async with self._lock:
            handle = child()
            if handle is not None and not handle.done():
                signal = PAUSE_SIGNAL if self.held else RESUME_SIGNAL
                with contextlib.suppress(FailureError):  # it ended meanwhile
                    await handle.signal(signal, why)
