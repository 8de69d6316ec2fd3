"""The takeover hold's rules: when an idle hold runs out, what a held-back touch says, and the
hold as a workflow sees it. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.schemas import OrgSettings
from models.tables import Thread

#: How many of a contact's leads a hold tells (the newest): a contact has one open lead,
#: and a converted one whose sequence still runs is recent.
LEADS_TOLD = 5


#: How long a notice left pending (its workflow crashed before delivering it) is still sent.
NOTICE_FRESH = timedelta(hours=1)


#: The shortest wait a held touch is given: a hold already past its time is about to be
#: released by its workflow.
MIN_HOLD_WAIT = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class Hold:
    """A thread's takeover state: who holds it (``None``: the AI has it) and until when,
    unless they write again."""

    thread_id: str
    held_by: str | None
    held_since: datetime | None
    #: When the hold ends on its own if the operator sends nothing more.
    releases_at: datetime | None
    #: Workflow ids of the contact's leads that may be running automation.
    lead_workflows: list[str] = field(default_factory=list)
    #: Escalations of the thread this takeover acknowledged (their ladders stop climbing).
    acknowledged: list[str] = field(default_factory=list)
    #: Whether this call changed anything (a repeated takeover or release changes nothing).
    changed: bool = False


def releases_at(thread: Thread, timeout: timedelta) -> datetime | None:
    """When ``thread``'s hold ends if its operator writes nothing more (``None``: not held)."""
    if thread.held_by is None or thread.held_since is None:
        return None
    active = max(t for t in (thread.held_since, thread.last_human_at) if t is not None)
    return active + timeout


#: What the gate says of a touch held back by a takeover (no names: workflows see it).
HOLD_REASON = "an operator has taken this conversation over"


HELD_BACK = f"{HOLD_REASON}: until released"


def hold_minutes(settings: OrgSettings) -> int:
    return int(settings.takeover_timeout.total_seconds() // 60)


@dataclass(frozen=True, kw_only=True)
class HoldCheck:
    """What the Takeover workflow needs after each wake: the hold now, and a notice to
    deliver if a hold ran out (the one written by this check, or one still pending)."""

    hold: Hold
    notice_id: str | None = None
