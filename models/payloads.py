"""Results the data layer hands to workflows through activities: what recording a lead
decided, and a sequence step as it stands. Frozen dataclasses, safe to decode from old histories."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.values import (
    AlertState,
    Channel,
    HealthStatus,
    Intent,
)


@dataclass(frozen=True, kw_only=True)
class RecordedLead:
    """What the Lead workflow needs to know after intake was recorded."""

    lead_id: str
    contact_id: str
    first_touch: Channel | None
    no_touch_reason: str | None
    inactivity_threshold_s: int
    #: Intent scoring (absent from activity results recorded before scoring existed).
    score: int = 0
    intent: Intent | None = None
    #: The nudge sequence for the lead's intent, if any.
    sequence: str | None = None
    #: Its first step, due ``after`` from ``sequence_anchor`` (given the workflow's time).
    first_step: NextStep | None = None
    sequence_anchor: datetime | None = None
    #: The compliance gate's pre-check of the first touch: held back until when, and why.
    hold_until: datetime | None = None
    hold_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class NextStep:
    """The step a running sequence takes next (``index`` counts from 0)."""

    index: int
    total: int
    after_s: int
    channel: Channel
    template: str
    #: When the step is due (given an anchor): ``after`` from the anchor, whole days counted
    #: on the contact's local calendar, so "P1D" after 10:00 is 10:00 again across DST.
    due_at: datetime | None = None
    #: The timezone ``due_at`` was reckoned in (the lead's, else its contact's, else the org's).
    timezone: str | None = None
    #: ``due_at`` in words, in that timezone (``Mon 23 Nov 10:00 Europe/London``).
    due_local: str | None = None
    #: Which of ``reply``, ``booking`` and ``payment`` stop the sequence (``None``: all).
    stop_on: tuple[str, ...] | None = None
    #: The compliance gate's pre-check (when asked with the workflow's time): held back
    #: until when, and why.
    hold_until: datetime | None = None
    hold_reason: str | None = None
    #: The variant of an experiment's step this lead gets (``template`` and ``channel`` are
    #: the variant's), decided from the lead and kept.
    variant: str | None = None
    #: Channels to send on, in order, when the person can't be reached on ``channel``.
    fallback: tuple[Channel, ...] = ()
    #: The experiment's version the variant belongs to (``rules.experiments.experiment_key``).
    experiment: str | None = None


@dataclass(frozen=True, kw_only=True)
class ConfirmationInput:
    """Answer a keyword message (``stop``, ``start`` or ``help``), or text back a missed call
    (``missed_call``, the inbound message being the call), once."""

    org_id: str
    inbound_message_id: str
    kind: str


@dataclass(frozen=True, kw_only=True)
class CallPlan:
    """The org's call policy as it stands, and the next attempt's slot.

    ``stop`` says why no call can be placed at all (no dialable number, no voice consent, the
    lead is closed); ``at`` is then meaningless.
    """

    max_attempts: int
    #: Waits after attempts 1, 2, ... (the last repeats), in seconds.
    spacing_s: tuple[int, ...]
    at: datetime
    local: str
    reason: str | None
    stop: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredMessageInput:
    """Send a message row already written (an operator's reply, a notice to an operator)."""

    org_id: str
    message_id: str


@dataclass(frozen=True, kw_only=True)
class AlertEpisode:
    """What the ``Alert`` workflow knows of its episode, written as the row."""

    org_id: str
    alert_id: str
    workflow_id: str
    rule: str
    subject: str
    severity: HealthStatus
    state: AlertState
    summary: str
    detail: str
    code: str
    opened_at: datetime
    fired_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    #: Grows with every change the workflow makes: an older write never overwrites a newer.
    revision: int = 0


@dataclass(frozen=True, kw_only=True)
class NoticeRequest:
    """One rung (or the recovery) of an alert's notices."""

    org_id: str
    alert_id: str
    #: ``rung-0`` ..., ``reminder``, ``recovery``.
    step: str
    channel: Channel
    #: ``main`` or ``backup`` (``rules.alerts``); a recovery goes to whoever was told.
    who: str
    #: Seconds the alert lasted, for a recovery notice.
    recovered_after_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class AlertInput:
    """Which condition, and how long it must hold (in evaluations of the health check)."""

    org_id: str
    rule: str
    subject: str
    #: Bad evaluations in a row before anyone is told ("for" in Alertmanager).
    pending_evaluations: int = 2
    #: Good evaluations in a row before it resolves ("keep_firing_for").
    recovery_evaluations: int = 2
    #: Pending with no observation for this long: the check no longer sees it; end quietly.
    stale_after: timedelta = timedelta(minutes=15)
    #: Carried over by continue-as-new (``None`` on the first run).
    carried: AlertView | None = None


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One evaluation of the condition by the health check."""

    status: HealthStatus
    summary: str
    detail: str = ""
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Acknowledgement:
    """A person has it: who (an operator's name, or the number that texted ``ACK``), and
    which episode they saw (``None``: whichever is open)."""

    by: str
    alert_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class AlertView:
    """The alert as it stands (the ``state`` query and every update's answer)."""

    state: AlertState
    severity: HealthStatus
    summary: str
    detail: str = ""
    #: The row id, once it fired (pending alerts have no row).
    alert_id: str | None = None
    code: str | None = None
    opened_at: datetime | None = None
    fired_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    bad_in_a_row: int = 0
    good_in_a_row: int = 0
    #: Ladder steps already sent.
    notified: list[str] = field(default_factory=list)
    reminded: bool = False
    #: The time of the latest observation taken (a retried delivery of it is ignored).
    last_observed_at: datetime | None = None
    #: Notices of a step a silence held back are tried again from this time.
    silenced_until: datetime | None = None
    #: How often a held-back step has been tried (its next try is a new notice).
    retries: int = 0
    #: The workflow's revision of the row, carried over by continue-as-new.
    revision: int = 0


@dataclass(frozen=True, kw_only=True)
class PlannedReminderState:
    """One reminder of a booking's current time: when it goes (``None``: it doesn't)."""

    offset_s: int
    at: datetime | None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class AppointmentState:
    """A booking as its ``Appointment`` workflow acts on it, read from its row (the truth:
    a signal only wakes the workflow to read it again)."""

    version: int
    #: ``BookingStatus``.
    status: str
    starts_at: datetime
    #: The reminders of this version, planned when it was first read.
    reminders: list[PlannedReminderState] = field(default_factory=list)
    confirmed_at: datetime | None = None
    reschedule_requested_at: datetime | None = None
    on_my_way_at: datetime | None = None
    completed_at: datetime | None = None
    rating_request_after_s: int = 3600
    rating_requested_at: datetime | None = None
    rated_at: datetime | None = None
    #: The rating given (what the thanks says).
    rating: int | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentRequestState:
    """A payment request as its ``PaymentFollowup`` workflow acts on it, read from its row."""

    #: ``open``, ``paid`` or ``unpaid``.
    status: str
    created_at: datetime
    due_at: datetime
    url: str | None = None
    paid_at: datetime | None = None
    failures: int = 0
    failed_at: datetime | None = None
