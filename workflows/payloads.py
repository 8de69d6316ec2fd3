"""The data workflows exchange: inputs, signals, queries and results (ids, never personal data).

Plain dataclasses in their own module, passed through the workflow sandbox: they are created
once per worker instead of once per workflow run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.payloads import NextStep
from models.values import CallOutcome, CallStatus, Channel, Stage


@dataclass(frozen=True, kw_only=True)
class LeadInput:
    """Start a Lead workflow for a lead the API accepted.

    Carries ids only: the submission itself (personal data) stays in the intake receipt.
    """

    org_id: str
    lead_id: str
    receipt_id: str
    #: Set when a run continues as new: where the previous run had got to.
    carry: LeadCarry | None = None
    #: History events after which the run continues as new (``None``: the default).
    history_limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class ReplyReceived:
    """The person wrote back (signal ``message_received``); the message is already stored."""

    message_id: str
    channel: Channel


@dataclass(frozen=True, kw_only=True)
class LeadCarry:
    """A Lead run's compact state, handed to the next run when it continues as new."""

    #: The wait the run was in: ``ghosting`` or ``lost`` (news), or ``sequence``.
    phase: str
    stage: Stage
    score: int
    touches: int
    threshold_s: int
    #: When the current news wait runs out (``None`` in the ``sequence`` phase).
    deadline: datetime | None
    no_touch_reason: str | None
    #: The last receipt and message ids handled (a bounded window, so replays are dropped).
    seen: list[str]
    pending: list[str]
    replies: list[ReplyReceived]
    #: The sequence and where it stood, to restart it at the step it reached.
    sequence: str | None
    nudge_runs: int
    nudge_active: bool
    nudge_index: int
    nudge_anchor: datetime | None
    #: A sequence not started yet: when to start it, and its first step.
    nudge_start_at: datetime | None = None
    first_step: NextStep | None = None
    #: Since when an operator held the contact's thread (``None``: nobody did): the new
    #: run's sequence starts paused.
    held_since: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class IntakeReceived:
    """The same person submitted again while this lead is open (update ``submit_intake``)."""

    receipt_id: str


@dataclass(frozen=True, kw_only=True)
class ContactMerged:
    """An operator merged another contact into this lead's (signal ``contact_merged``)."""

    contact_id: str
    merged_contact_id: str


@dataclass(frozen=True, kw_only=True)
class PaymentReceived:
    """Stripe reported money for this lead (signal ``payment_received``), already recorded."""

    payment_id: str
    #: ``paid``, ``failed`` or ``refunded``.
    status: str


@dataclass(frozen=True, kw_only=True)
class ConsentChanged:
    """The person withdrew or gave consent on a channel (signal ``consent_changed``).

    Sends check consent themselves; this tells the lead at once, so one that can no longer be
    reached on any channel stops (``opted_out``) instead of waiting out its sequence.
    """

    channel: Channel
    granted: bool
    #: No channel the contact has an address for still has consent.
    opted_out_everywhere: bool


@dataclass(frozen=True, kw_only=True)
class BookingReceived:
    """The person booked (signal ``booking_received``); already on the lead's timeline."""

    booking_id: str


@dataclass(frozen=True, kw_only=True)
class IntakeAnswer:
    """Which lead took a submission, and whether it is the one that started this run."""

    lead_id: str
    started_this_lead: bool


@dataclass(frozen=True, kw_only=True)
class LeadStatus:
    """Query answer: where the lead stands and what happens next."""

    stage: Stage
    next_action: str | None
    next_action_at: datetime | None
    attempts_used: int
    attempts_cap: int
    waiting_reason: str | None
    #: The running NudgeSequence child, whose ``progress`` query says what comes next.
    nudge_workflow_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class LeadResult:
    """How the lead ended."""

    stage: Stage


#: The NudgeSequence workflow's type and its stop signal, by name: the Lead workflow starts and
#: stops it without importing its module, which would cost every Lead run a second import.
NUDGE_WORKFLOW = "NudgeSequence"
NUDGE_STOP_SIGNAL = "stop"
#: Stop reasons a sequence's ``stop_on`` may leave out; any other reason (opt-out, the lead
#: continuing as new, closing) always stops it.
OPTIONAL_STOPS = frozenset({"reply", "booking", "payment"})


def stops_sequence(reason: str, stop_on: tuple[str, ...] | None) -> bool:
    """Whether ``reason`` stops a sequence whose ``stop_on`` is given (``None``: all)."""
    return reason not in OPTIONAL_STOPS or stop_on is None or reason in stop_on


@dataclass(frozen=True, kw_only=True)
class NudgeInput:
    """Run ``sequence`` for a lead; ``key_prefix`` names its messages (``{prefix}/{n}``)."""

    org_id: str
    lead_id: str
    sequence: str
    key_prefix: str
    #: Where to start: a Lead that continued as new restarts its sequence at the step it
    #: reached, ``after`` counting from ``anchor`` (when the previous step was due).
    start_index: int = 0
    anchor: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class NudgeStop:
    """Stop now (signal ``stop``): the person replied, booked, paid or opted out."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class NudgeProgress:
    """Query ``progress``: steps taken, the step count, and what comes next."""

    steps_done: int
    steps_total: int | None
    sent: int
    next_channel: str | None
    next_at: datetime | None
    stopped: str | None
    #: The contact's timezone ``next_at`` was worked out in.
    timezone: str | None = None
    #: An operator holds the thread: the sequence waits for them to release it.
    paused: bool = False
    #: The variant of the next step this lead gets (an experiment's step).
    next_variant: str | None = None


@dataclass(frozen=True, kw_only=True)
class NudgeResult:
    """How the sequence ended."""

    steps_done: int
    sent: int
    stopped: str | None
    #: When the last step taken was due (where a restarted sequence counts from).
    anchor: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class CallInput:
    """Call the lead once (``attempt`` names the try, for the key and Vapi's metadata)."""

    org_id: str
    lead_id: str
    attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class CallEnded:
    """Vapi's end-of-call report arrived (signal ``call_ended``); the row already has it."""

    call_id: str
    ended_reason: str
    #: What the reason means (``models.calls.outcome_of``), worked out when it was recorded.
    outcome: CallOutcome | None = None


#: The call-retry loop's workflow type and its stop signal.
CALL_RETRY_WORKFLOW = "CallRetry"
CALL_STOP_SIGNAL = "stop"
#: The Lead's signal that a call-retry loop used all its attempts unanswered.
CALLS_EXHAUSTED_SIGNAL = "calls_exhausted"


@dataclass(frozen=True, kw_only=True)
class CallRetryInput:
    """Call a lead until answered, within the org's call policy."""

    org_id: str
    lead_id: str
    #: Told (signal ``calls_exhausted``) when every attempt went unanswered.
    lead_workflow_id: str
    #: Attempt ``n`` is keyed ``{key_prefix}/call-{n}``: placed once, whatever restarts.
    key_prefix: str
    #: The voicemail text-back's key: one per sequence, however many voice steps it has.
    text_back_key: str


@dataclass(frozen=True, kw_only=True)
class CallRetryStop:
    """Stop placing calls (a reply, a conversion, an opt-out...); a call under way ends."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class CallRetryResult:
    """How the loop ended: ``answered``, ``cap_reached``, ``invalid_number``, ``simulated``
    (dry run), ``stopped`` or ``not_callable``; ``detail`` says more."""

    outcome: str
    attempts: int
    detail: str | None = None
    escalation_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallsExhausted:
    """Signal ``calls_exhausted`` to the Lead: the loop's attempts all went unanswered."""

    attempts: int
    escalation_id: str


@dataclass(frozen=True, kw_only=True)
class CallRetryProgress:
    """Query ``progress``: attempts used, the cap, the next attempt and the outcomes so far."""

    attempts_used: int
    attempts_cap: int | None
    next_at: datetime | None
    next_local: str | None
    outcomes: list[str]
    stopped: str | None
    #: An operator holds the thread: no attempt until they release it.
    paused: bool = False


@dataclass(frozen=True, kw_only=True)
class CallResult:
    """How the call went: Vapi's ``endedReason``, or why there is none."""

    call_id: str
    ended_reason: str | None
    status: CallStatus


@dataclass(frozen=True, kw_only=True)
class StepWords:
    """A sequence's next step in words, as the lead's live status shows it."""

    next_action: str
    waiting_reason: str


def step_words(channel: str, *, when: str, number: int, total: int) -> StepWords:
    """``send the next SMS (step 1 of 3)`` / ``next SMS at 10:00 Europe/London (step 1 of 3)``."""
    name = "email" if channel == Channel.EMAIL.value else channel.upper()
    step = f"step {number} of {total}"
    return StepWords(
        next_action=f"send the next {name} ({step})",
        waiting_reason=f"next {name} at {when} ({step})",
    )


#: The escalation ladder's workflow type.
ESCALATION_WORKFLOW = "Escalation"


@dataclass(frozen=True, kw_only=True)
class EscalationInput:
    """Route escalation ``escalation_id`` (its row is written) until a person resolves it."""

    org_id: str
    escalation_id: str


@dataclass(frozen=True, kw_only=True)
class EscalationAck:
    """Signals ``acknowledged`` and ``resolved``: who did it."""

    operator_id: str


@dataclass(frozen=True, kw_only=True)
class EscalationState:
    """Query ``state`` (and the result): the level reached and who has it."""

    level: int
    acknowledged_by: str | None
    resolved_by: str | None
    sla_due_at: datetime | None
    notified: list[str]


#: The Lead's takeover signals (from the Takeover workflow), and the pause and resume
#: signals the Lead passes to its sequence and the sequence to its call-retry loop.
TAKEN_OVER_SIGNAL = "taken_over"
RELEASED_SIGNAL = "released"
PAUSE_SIGNAL = "pause"
RESUME_SIGNAL = "resume"


@dataclass(frozen=True, kw_only=True)
class ThreadTakenOver:
    """Signal ``taken_over``: an operator holds the contact's thread; no automation until
    ``released``."""

    thread_id: str


@dataclass(frozen=True, kw_only=True)
class ThreadReleased:
    """Signal ``released``: the thread is the AI's again; automation resumes."""

    thread_id: str


@dataclass(frozen=True, kw_only=True)
class AutomationPaused:
    """Signals ``pause`` and ``resume`` to a sequence or a call-retry loop: why."""

    reason: str


#: Why automation pauses and resumes around a takeover.
TAKEOVER_REASON = "takeover"

#: The takeover lock's workflow type, and its signal that the hold changed.
TAKEOVER_WORKFLOW = "Takeover"
TAKEOVER_CHANGED_SIGNAL = "hold_changed"


@dataclass(frozen=True, kw_only=True)
class TakeoverInput:
    """Keep thread ``thread_id``'s takeover: pause its contact's automation while someone
    holds it, release it when idle, resume automation when it ends."""

    org_id: str
    thread_id: str


@dataclass(frozen=True, kw_only=True)
class HoldChanged:
    """Signal ``hold_changed``: the API took the thread over or released it (already in the
    database, which the workflow reads)."""

    operator_id: str
    held: bool


@dataclass(frozen=True, kw_only=True)
class TakeoverState:
    """Query ``state`` (and the result): who holds the thread, until when unless they
    write, and how the last hold ended."""

    held_by: str | None
    releases_at: datetime | None
    holds: int
    timed_out: int


#: The workflow that sends an operator's reply (waiting out quiet hours).
REPLY_WORKFLOW = "HumanReply"
