"""Health checks' verdicts: what each sample says, in words a busy owner understands, and how
long a bad verdict must hold before anyone is told (HEALTH.md). Pure: samples and ``now`` come
in as arguments; nothing here reads a clock, a database or a provider.

At small-business volumes percentages lie (1 failure in 10 is noise, 36 in 1,000 against a
2 % baseline is not), so rate checks use exact one-sided tests against the org's own baseline
with minimum counts, and fixed limits only where a provider publishes one.

The Alert workflow reads a verdict's ``status``: ``WARNING`` and ``CRITICAL`` are bad (see
:func:`is_bad`), ``OK`` is clear (:func:`is_clear`), and ``UNKNOWN`` (the check could not or
should not judge, e.g. lead flow outside business hours) is neither: it advances no pending
alert and counts toward no recovery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scipy.stats import binom, poisson

from models.values import Channel, HealthStatus, MessageStatus, ProviderHealth, WebhookProvider

# -- Check names (the ``rule`` of an alert: ``alert-{org}-{rule}-{subject}``) ------------------

PROVIDER = "provider"
WORKERS = "workers"
BACKLOG = "backlog"
WORKFLOW_FAILURES = "workflow_failures"
SEND_FAILURES = "send_failures"
WEBHOOKS = "webhooks"
LEADS_ARRIVING = "leads_arriving"
SPEED_TO_LEAD = "speed_to_lead"
DELIVERABILITY = "deliverability"
CHECKS_RUNNING = "checks_running"

CHECKS = (
    PROVIDER,
    WORKERS,
    BACKLOG,
    WORKFLOW_FAILURES,
    SEND_FAILURES,
    WEBHOOKS,
    LEADS_ARRIVING,
    SPEED_TO_LEAD,
    DELIVERABILITY,
    CHECKS_RUNNING,
)

# -- Thresholds --------------------------------------------------------------------------------

#: Significance of the binomial and Poisson tests. Checks run every 5 min over windows of about
#: an hour, so an org sees roughly 24 independent windows a day per check: at 0.001 that is at
#: most one false alarm a month or two per check (fewer in practice: the exact tests of small
#: counts are conservative). It keeps 1 failure in 10 (p 0.18) and 28 in 1,000 (p 0.05) quiet
#: at a 2 % baseline, and fires at 36 in 1,000 (p 7.0e-4), the first count that does.
DEFAULT_ALPHA = 0.001
#: Fewest failures that can fire: a handful of failures is a few bad numbers, not an outage
#: (the binomial test alone would already fire at 3 failures in 10 sends at 2 %).
MIN_FAILURES = 5
#: A failure rate assumed for an org with no history (typical of SMS to fresh leads).
PRIOR_FAILURE_RATE = 0.02
#: How many sends the prior counts as: the org's own rate dominates after a few hundred live
#: sends (a week or two for a small business), and a first bad day cannot drag it far.
PRIOR_WEIGHT = 200
#: More than half of at least this many live sends failing is an outage whatever the baseline.
CRITICAL_MIN_SENDS = 10

#: A provider that stays down this long goes from warning to critical.
PROVIDER_DOWN_CRITICAL_AFTER = timedelta(minutes=15)
#: How old the oldest waiting task may be.
BACKLOG_LIMIT_SECONDS = 60.0
#: How long after a receipt arrives it should have reached its workflow.
UNROUTED_AFTER = timedelta(minutes=5)
#: Fewest live sends with not one status callback that count as callbacks missing.
MIN_SENDS_FOR_CALLBACKS = 5
#: Fewest leads in the window whose first-reply speed is worth judging.
MIN_LEADS_FOR_SPEED = 5
#: Resend's published limits: keep bounces under 4 % and spam complaints under 0.08 %.
BOUNCE_LIMIT = 0.04
COMPLAINT_LIMIT = 0.0008
#: Fewest bounces, complaints and opt-outs that can fire (1 bounce in 3 emails is 33 %).
MIN_BOUNCES = 5
MIN_COMPLAINTS = 2
MIN_STOPS = 5


# -- Verdicts and holds ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What one check says about one subject, this evaluation."""

    #: The rule id, one of :data:`CHECKS`.
    check: str
    #: What it is about (``twilio``, ``sms``, a task queue ...): part of the alert's identity.
    subject: str
    status: HealthStatus
    #: One short line for the owner: "Twilio rejected keepwarm's credentials".
    summary: str
    #: The evidence (numbers, p-values) and what to do.
    detail: str
    #: The measured number, stored as the sample (a rate, a count, seconds), if any.
    value: float | None = None


def is_bad(status: HealthStatus) -> bool:
    """Whether ``status`` counts toward firing an alert (warning or critical)."""
    return status in (HealthStatus.WARNING, HealthStatus.CRITICAL)


def is_clear(status: HealthStatus) -> bool:
    """Whether ``status`` counts toward resolving one (``UNKNOWN`` counts for neither)."""
    return status == HealthStatus.OK


def unknown(check: str, subject: str, reason: str) -> Verdict:
    """The verdict of a check whose sample could not be taken (a probe timed out)."""
    return Verdict(
        check=check,
        subject=subject,
        status=HealthStatus.UNKNOWN,
        summary="Not checked this time",
        detail=reason,
    )


def evaluations_for(duration: timedelta, interval: timedelta) -> int:
    """How many consecutive evaluations, ``interval`` apart, span ``duration`` (at least one).

    Each evaluation stands for the interval before it, so a condition seen at this many
    evaluations in a row has held for about ``duration``: 10 min at a 5-minute interval is 2,
    at 10 s it is 60, at a day it is 1.

    Raises:
        ValueError: ``interval`` is not positive.
    """
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, not {interval}")
    return max(1, -(-duration // interval))


@dataclass(frozen=True, kw_only=True)
class RulePolicy:
    """How long a check's condition must hold before it notifies, and stay clear before it
    resolves. The Alert workflow counts evaluations; each hold is the larger of its count and
    its duration at the configured interval (:meth:`pending_count`, :meth:`recovery_count`)."""

    #: Bad evaluations in a row before the alert fires.
    pending_evaluations: int = 1
    #: And for at least this long.
    pending_for: timedelta = timedelta(0)
    #: Clear evaluations in a row before it resolves.
    keep_firing_evaluations: int = 2
    #: And for at least this long.
    keep_firing_for: timedelta = timedelta(0)

    def pending_count(self, interval: timedelta) -> int:
        """Bad evaluations in a row, ``interval`` apart, before the alert notifies."""
        return max(self.pending_evaluations, evaluations_for(self.pending_for, interval))

    def recovery_count(self, interval: timedelta) -> int:
        """Clear evaluations in a row, ``interval`` apart, before the alert resolves."""
        return max(self.keep_firing_evaluations, evaluations_for(self.keep_firing_for, interval))


#: Each check's holds. Windowed statistical checks also wait for a second evaluation: one
#: window caught mid-burst never pages. Workflow failures and the dead-man's switch fire at
#: once: one failed run is already a bug, and missing runs already took two intervals.
RULES: dict[str, RulePolicy] = {
    # "2 failures in a row"
    PROVIDER: RulePolicy(pending_evaluations=2),
    # "no poller seen for 2 min"
    WORKERS: RulePolicy(pending_for=timedelta(minutes=2)),
    # "backlog older than 60 s for 10 min"
    BACKLOG: RulePolicy(pending_for=timedelta(minutes=10)),
    WORKFLOW_FAILURES: RulePolicy(),
    SEND_FAILURES: RulePolicy(pending_evaluations=2),
    WEBHOOKS: RulePolicy(pending_evaluations=2),
    LEADS_ARRIVING: RulePolicy(pending_evaluations=2),
    SPEED_TO_LEAD: RulePolicy(pending_evaluations=2),
    DELIVERABILITY: RulePolicy(pending_evaluations=2),
    CHECKS_RUNNING: RulePolicy(),
}


# -- Statistics --------------------------------------------------------------------------------


def failures_exceed_baseline(
    failures: int,
    total: int,
    baseline_rate: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_failures: int = MIN_FAILURES,
) -> tuple[bool, float]:
    """Whether ``failures`` of ``total`` is more than ``baseline_rate`` explains.

    An exact one-sided binomial test: the p-value is P(X >= failures) for X ~ Binomial(total,
    baseline_rate). It fires when p < ``alpha`` and there are at least ``min_failures``.

    Returns:
        Whether it fires, and the p-value (1.0 when nothing was sent).

    Raises:
        ValueError: counts out of range or a rate outside [0, 1].
    """
    if not 0 <= failures <= total:
        raise ValueError(f"need 0 <= failures <= total, got {failures} of {total}")
    if not 0.0 <= baseline_rate <= 1.0:
        raise ValueError(f"baseline_rate must be in [0, 1], not {baseline_rate}")
    if total == 0:
        return False, 1.0
    p_value = float(binom.sf(failures - 1, total, baseline_rate))
    return failures >= min_failures and p_value < alpha, p_value


def silence_is_unusual(
    observed: int, expected: float, *, alpha: float = DEFAULT_ALPHA
) -> tuple[bool, float]:
    """Whether so few arrivals (``observed``) are unusual when ``expected`` were due.

    A Poisson lower-tail test: the p-value is P(X <= observed) for X ~ Poisson(expected). At the
    default alpha, silence is unusual only when about 7 or more were expected (e^-6.9 = 0.001),
    so quiet businesses need a longer window.

    Returns:
        Whether it fires, and the p-value (1.0 when nothing was expected).

    Raises:
        ValueError: a negative count.
    """
    if observed < 0:
        raise ValueError(f"observed must not be negative, not {observed}")
    if expected <= 0:
        return False, 1.0
    p_value = float(poisson.cdf(observed, expected))
    return p_value < alpha, p_value


def baseline_rate(
    failures: int,
    total: int,
    *,
    prior_rate: float = PRIOR_FAILURE_RATE,
    prior_weight: float = PRIOR_WEIGHT,
) -> float:
    """The org's usual failure rate from its history, shrunk toward ``prior_rate``.

    The mean of a Beta prior worth ``prior_weight`` sends at ``prior_rate`` updated with the
    history: ``(failures + prior_rate * prior_weight) / (total + prior_weight)``. No history
    gives ``prior_rate``; a long one gives the org's own rate. Pass history from before the
    window under test (the same hour of week over past weeks, when there is enough of it).
    """
    return (failures + prior_rate * prior_weight) / (total + prior_weight)


# -- Provider reachable and credentials valid --------------------------------------------------


_PROVIDER_NAMES = {
    WebhookProvider.TWILIO: "Twilio",
    WebhookProvider.RESEND: "Resend",
    WebhookProvider.STRIPE: "Stripe",
    WebhookProvider.VAPI: "Vapi",
}


@dataclass(frozen=True, kw_only=True)
class ProviderProbe:
    """One authenticated probe of a provider (a Twilio account fetch, a Stripe balance ...)."""

    provider: WebhookProvider
    outcome: ProviderHealth
    #: What the provider answered ("HTTP 401: Authenticate"), for the detail.
    detail: str = ""
    #: When the provider was first seen down in this run of failures (``None``: not down).
    down_since: datetime | None = None


def provider_verdict(probe: ProviderProbe, *, now: datetime) -> Verdict:
    """Judge a provider probe.

    Credentials rejected and a suspended account are critical: nothing goes out until a person
    acts. Down is a warning (sends retry on their own), critical once down for
    :data:`PROVIDER_DOWN_CRITICAL_AFTER`. Not configured is OK, never an alert: the deployment
    chose not to use the provider. A business refusal is about one request, not the account.
    """
    name = _PROVIDER_NAMES[probe.provider]
    answered = f"{name} answered: {probe.detail}. " if probe.detail else ""

    def verdict(
        status: HealthStatus, summary: str, detail: str, value: float | None = None
    ) -> Verdict:
        return Verdict(
            check=PROVIDER,
            subject=probe.provider.value,
            status=status,
            summary=summary,
            detail=detail,
            value=value,
        )

    match probe.outcome:
        case ProviderHealth.NOT_CONFIGURED:
            return verdict(
                HealthStatus.OK,
                f"{name} is not configured",
                f"No {name} credentials are set in this deployment, so there is nothing to check.",
            )
        case ProviderHealth.CREDENTIALS_REJECTED:
            return verdict(
                HealthStatus.CRITICAL,
                f"{name} rejected keepwarm's credentials",
                f"{answered}Nothing goes out through {name} until this is fixed. The key was "
                f"probably rotated or revoked: copy the current one from the {name} dashboard "
                "into keepwarm's settings.",
            )
        case ProviderHealth.SUSPENDED:
            return verdict(
                HealthStatus.CRITICAL,
                f"{name} suspended the account",
                f"{answered}Nothing goes out through {name} until the account is reinstated: "
                f"contact {name} support.",
            )
        case ProviderHealth.DOWN:
            down_for = max(timedelta(0), now - (probe.down_since or now))
            critical = down_for >= PROVIDER_DOWN_CRITICAL_AFTER
            return verdict(
                HealthStatus.CRITICAL if critical else HealthStatus.WARNING,
                f"{name} has been down for {_duration(down_for)}"
                if critical
                else f"{name} is not responding",
                f"{answered}Down for {_duration(down_for)}. keepwarm keeps retrying, so messages "
                f"wait rather than get lost; check {name}'s status page.",
                down_for.total_seconds(),
            )
        case ProviderHealth.OK | ProviderHealth.BUSINESS_REFUSAL:
            return verdict(
                HealthStatus.OK,
                f"{name} is reachable and accepts keepwarm's credentials",
                probe.detail,
            )


# -- Workers present ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkerPresence:
    """Who polls a task queue, from ``DescribeTaskQueue``."""

    task_queue: str
    #: Poller kinds (``workflow``, ``activity``) with no poller seen for the last 2 min.
    missing_kinds: list[str] = field(default_factory=list)
    #: Identities of the pollers seen (a worker polls both kinds under one identity).
    identities: list[str] = field(default_factory=list)


def workers_verdict(presence: WorkerPresence) -> Verdict:
    """Critical when a kind of worker is missing: follow-ups stop until one runs again."""
    workers = sorted(set(presence.identities))
    if presence.missing_kinds:
        kinds = " and ".join(dict.fromkeys(presence.missing_kinds))
        polling = f" Still polling: {', '.join(workers)}." if workers else ""
        return Verdict(
            check=WORKERS,
            subject=presence.task_queue,
            status=HealthStatus.CRITICAL,
            summary=f"keepwarm's {kinds} workers are missing: follow-ups are paused",
            detail=f"No {kinds} worker has polled {presence.task_queue} for 2 min.{polling} "
            "Start or restart the worker (`keepwarm worker`, or `keepwarm up`); waiting work "
            "is kept and resumes when it is back.",
            value=float(len(workers)),
        )
    return Verdict(
        check=WORKERS,
        subject=presence.task_queue,
        status=HealthStatus.OK,
        summary=f"{_plural(len(workers), 'worker')} running",
        # A count, not the workers' names (pid@host): every org sees this verdict.
        detail=f"Polling {presence.task_queue}.",
        value=float(len(workers)),
    )


# -- Backlog -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Backlog:
    """How long work has waited on a task queue for a worker to pick it up."""

    task_queue: str
    #: Age of the oldest waiting task (``None``: nothing is waiting).
    age_seconds: float | None


def backlog_verdict(backlog: Backlog, *, limit_seconds: float = BACKLOG_LIMIT_SECONDS) -> Verdict:
    """A warning when the oldest waiting task is older than ``limit_seconds`` (notified after
    the 10-minute hold in :data:`RULES`)."""
    age = backlog.age_seconds
    limit = _duration(timedelta(seconds=limit_seconds))
    if age is None or age <= limit_seconds:
        return Verdict(
            check=BACKLOG,
            subject=backlog.task_queue,
            status=HealthStatus.OK,
            summary="Nothing is waiting"
            if not age
            else f"Work is picked up within {_duration(timedelta(seconds=age))}",
            detail=f"Limit {limit} on {backlog.task_queue}.",
            value=age,
        )
    waited = _duration(timedelta(seconds=age))
    return Verdict(
        check=BACKLOG,
        subject=backlog.task_queue,
        status=HealthStatus.WARNING,
        summary=f"Work is piling up: the oldest task has waited {waited}",
        detail=f"The oldest task on {backlog.task_queue} has waited {waited} (limit {limit}), "
        "so follow-ups go out late. The workers are too few or too slow: add a worker, or "
        "check the database and the providers' response times.",
        value=age,
    )


# -- Workflow failures -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkflowFailures:
    """keepwarm's workflow runs that failed or timed out in the window, by workflow type."""

    failed_by_type: dict[str, int] = field(default_factory=dict)
    window: timedelta = timedelta(hours=1)


def workflow_failures_verdict(failures: WorkflowFailures) -> Verdict:
    """Critical when any run failed or timed out: keepwarm's workflows absorb send failures,
    so a failed run is a bug."""
    failed = sorted(
        ((kind, count) for kind, count in failures.failed_by_type.items() if count > 0),
        key=lambda item: (-item[1], item[0]),
    )
    total = sum(count for _, count in failed)
    window = _window(failures.window)
    if not total:
        return Verdict(
            check=WORKFLOW_FAILURES,
            subject="workflows",
            status=HealthStatus.OK,
            summary=f"No follow-up failed in {window}",
            detail="",
            value=0.0,
        )
    by_type = ", ".join(f"{kind} {count:,}" for kind, count in failed)
    return Verdict(
        check=WORKFLOW_FAILURES,
        subject="workflows",
        status=HealthStatus.CRITICAL,
        summary=f"{_plural(total, 'follow-up')} failed in {window} ({by_type})",
        detail=f"{_plural(total, 'workflow run')} failed or timed out in {window}: {by_type}. "
        "keepwarm's workflows absorb send failures, so this is a bug: the affected leads "
        "get no further follow-up. Open them in the Temporal UI (ExecutionStatus is Failed or "
        "TimedOut) and report the error.",
        value=float(total),
    )


# -- Send failures per channel -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SendCounts:
    """Outbound messages by outcome. Only live sends count: ``simulated`` (dry-run) sends and
    ``pending`` ones (not attempted yet) are neither successes nor failures."""

    pending: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    simulated: int = 0

    @classmethod
    def from_statuses(cls, counts: Mapping[MessageStatus, int]) -> SendCounts:
        """Counts from a ``status -> count`` query of outbound messages."""
        return cls(
            pending=counts.get(MessageStatus.PENDING, 0),
            queued=counts.get(MessageStatus.QUEUED, 0),
            sent=counts.get(MessageStatus.SENT, 0),
            delivered=counts.get(MessageStatus.DELIVERED, 0),
            failed=counts.get(MessageStatus.FAILED, 0),
            simulated=counts.get(MessageStatus.SIMULATED, 0),
        )

    @property
    def live(self) -> int:
        """Sends that reached a provider: the denominator of a failure rate."""
        return self.queued + self.sent + self.delivered + self.failed


@dataclass(frozen=True, kw_only=True)
class SendFailures:
    """A channel's sends in the window, and its history before it."""

    channel: Channel
    counts: SendCounts
    baseline: SendCounts
    window: timedelta = timedelta(hours=1)


def send_failures_verdict(
    sample: SendFailures, *, alpha: float = DEFAULT_ALPHA, min_failures: int = MIN_FAILURES
) -> Verdict:
    """Judge a channel's failed sends against its own baseline (:func:`baseline_rate`).

    A warning when :func:`failures_exceed_baseline` fires; critical when more than half of at
    least :data:`CRITICAL_MIN_SENDS` live sends failed, whatever the baseline (an outage, not a
    drift). Dry-run sends count in neither the window nor the baseline.
    """
    counts = sample.counts
    live, failed = counts.live, counts.failed
    usual = baseline_rate(sample.baseline.failed, sample.baseline.live)
    fires, p_value = failures_exceed_baseline(
        failed, live, usual, alpha=alpha, min_failures=min_failures
    )
    window = _window(sample.window)
    noun = _CHANNEL_NOUNS[sample.channel]
    dry_run = (
        f" {_plural(counts.simulated, 'dry-run send')} not counted." if counts.simulated else ""
    )
    if not live:
        return Verdict(
            check=SEND_FAILURES,
            subject=sample.channel.value,
            status=HealthStatus.OK,
            summary=f"No live {noun} sent in {window}",
            detail=f"Usually {_percent(usual)} fail.{dry_run}",
        )
    rate = failed / live
    if live >= CRITICAL_MIN_SENDS and failed * 2 > live:
        status = HealthStatus.CRITICAL
    elif fires:
        status = HealthStatus.WARNING
    else:
        status = HealthStatus.OK
    action = (
        " See the failure reasons on the Messages page: a provider or account problem fails "
        "every send, bad numbers or addresses only some."
        if is_bad(status)
        else ""
    )
    return Verdict(
        check=SEND_FAILURES,
        subject=sample.channel.value,
        status=status,
        summary=f"{failed:,} of {live:,} {noun} failed in {window} (usually {_percent(usual)})",
        detail=f"{_percent(rate)} failed against a usual {_percent(usual)}; "
        f"{failed:,} or more by chance: p = {p_value:.1e} (alerts below {alpha:g} with at "
        f"least {min_failures} failures).{dry_run}{action}",
        value=rate,
    )


_CHANNEL_NOUNS = {
    Channel.SMS: "SMS",
    Channel.WHATSAPP: "WhatsApp messages",
    Channel.EMAIL: "emails",
    Channel.VOICE: "calls",
}


# -- Webhooks arriving -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WebhookArrivals:
    """A provider's webhooks in the window, against the live sends that expect one."""

    provider: WebhookProvider
    #: Live sends that expect a status callback, made early enough to have had one.
    live_sends: int
    status_callbacks: int
    #: Receipts that arrived over 5 min ago and have still not reached their workflow.
    unrouted_over_5_min: int = 0
    window: timedelta = timedelta(hours=1)


def webhooks_verdict(
    arrivals: WebhookArrivals, *, min_sends: int = MIN_SENDS_FOR_CALLBACKS
) -> Verdict:
    """A warning when at least ``min_sends`` live sends got not one status callback, or when a
    receipt stayed unrouted over 5 min (the sweeper routes it; nothing is lost)."""
    name = _PROVIDER_NAMES[arrivals.provider]
    window = _window(arrivals.window)
    problems: list[tuple[str, str]] = []
    if arrivals.live_sends >= min_sends and arrivals.status_callbacks == 0:
        problems.append(
            (
                f"No delivery updates from {name} for {arrivals.live_sends:,} sends in {window}",
                f"{name} posted no status callback for {_plural(arrivals.live_sends, 'live send')}"
                f" in {window}, so keepwarm can't tell what was delivered. Check that {name}'s "
                "webhook URL points at this keepwarm "
                f"(/v1/webhooks/{arrivals.provider.value}/<org id>), is reachable from the "
                "internet, and uses the signing secret keepwarm has.",
            )
        )
    if arrivals.unrouted_over_5_min:
        count = arrivals.unrouted_over_5_min
        problems.append(
            (
                f"{_plural(count, f'{name} webhook')} waited over 5 min to reach their follow-up",
                f"{_plural(count, 'receipt')} from {name} stayed unrouted over 5 min. keepwarm's "
                "sweeper routes them, so nothing is lost; if it keeps happening, workers are "
                "missing or slow (see the workers and backlog checks).",
            )
        )
    if problems:
        return Verdict(
            check=WEBHOOKS,
            subject=arrivals.provider.value,
            status=HealthStatus.WARNING,
            summary=problems[0][0],
            detail=" ".join(detail for _, detail in problems),
            value=float(arrivals.status_callbacks),
        )
    return Verdict(
        check=WEBHOOKS,
        subject=arrivals.provider.value,
        status=HealthStatus.OK,
        summary=f"{_plural(arrivals.status_callbacks, 'delivery update')} from {name} for "
        f"{_plural(arrivals.live_sends, 'live send')} in {window}",
        detail="",
        value=float(arrivals.status_callbacks),
    )


# -- Leads arriving ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LeadArrivals:
    """Leads that arrived in the window, against the org's hour-of-week baseline for it."""

    observed: int
    expected: float
    #: Whether the window is inside the org's hours; outside them silence is normal.
    inside_hours: bool
    window: timedelta = timedelta(hours=1)


def leads_arriving_verdict(arrivals: LeadArrivals, *, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """A warning when :func:`silence_is_unusual` fires inside the org's hours; ``UNKNOWN``
    outside them (never an alert, and no false "resolved" for an alert open at closing)."""
    window = _window(arrivals.window)
    usually = f"usually about {_about(arrivals.expected)}"
    if not arrivals.inside_hours:
        return Verdict(
            check=LEADS_ARRIVING,
            subject="leads",
            status=HealthStatus.UNKNOWN,
            summary="Outside business hours: lead flow isn't checked",
            detail=f"{_plural(arrivals.observed, 'lead')} in {window}.",
            value=float(arrivals.observed),
        )
    fires, p_value = silence_is_unusual(arrivals.observed, arrivals.expected, alpha=alpha)
    leads = "No leads" if not arrivals.observed else _plural(arrivals.observed, "lead")
    only = "Only " if fires and arrivals.observed else ""
    evidence = (
        f"Usually about {_about(arrivals.expected)} arrive at this time of week; "
        f"{arrivals.observed:,} or fewer by chance: p = {p_value:.1e} (alerts below {alpha:g})."
    )
    return Verdict(
        check=LEADS_ARRIVING,
        subject="leads",
        status=HealthStatus.WARNING if fires else HealthStatus.OK,
        summary=f"{only}{leads} in {window} ({usually})",
        detail=evidence
        + (
            " Check your web form, ads and lead sources: a broken form or a paused campaign is "
            "the usual cause."
            if fires
            else ""
        ),
        value=float(arrivals.observed),
    )


# -- Speed to lead -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SpeedToLead:
    """Intake to first touch over the window, for leads created inside allowed hours."""

    #: 90th percentile of intake → first touch (``None``: nothing measured).
    p90_seconds: float | None
    leads: int
    #: The org's target (``alerts.speed_to_lead_target``).
    target: timedelta
    window: timedelta = timedelta(hours=24)


def speed_to_lead_verdict(sample: SpeedToLead, *, min_leads: int = MIN_LEADS_FOR_SPEED) -> Verdict:
    """A warning when the p90 is above the target with at least ``min_leads`` leads;
    ``UNKNOWN`` with fewer (too few to judge)."""
    window = _window(sample.window)
    target = _duration(sample.target)
    if sample.leads < min_leads or sample.p90_seconds is None:
        return Verdict(
            check=SPEED_TO_LEAD,
            subject="leads",
            status=HealthStatus.UNKNOWN,
            summary=f"{_plural(sample.leads, 'lead').capitalize()} touched in {window}: too "
            "few to judge reply speed",
            detail=f"Judged once at least {min_leads} leads were touched; target {target}.",
            value=sample.p90_seconds,
        )
    p90 = _duration(timedelta(seconds=sample.p90_seconds))
    evidence = f"90th percentile of intake to first touch over {sample.leads:,} leads in {window}."
    if sample.p90_seconds > sample.target.total_seconds():
        return Verdict(
            check=SPEED_TO_LEAD,
            subject="leads",
            status=HealthStatus.WARNING,
            summary=f"1 in 10 leads waited {p90} or more for a first reply (target {target})",
            detail=f"{evidence} Slow first replies usually mean a backlog (see the backlog "
            "check), a provider problem, or a sequence whose first step waits.",
            value=sample.p90_seconds,
        )
    return Verdict(
        check=SPEED_TO_LEAD,
        subject="leads",
        status=HealthStatus.OK,
        summary=f"9 in 10 leads got a first reply within {p90} (target {target})",
        detail=evidence,
        value=sample.p90_seconds,
    )


# -- Deliverability ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Deliverability:
    """A channel's bounces, spam complaints and opt-outs (STOP replies, unsubscribes) in the
    window, over its live sends. SMS has no published bounce or complaint limits: pass 0."""

    channel: Channel
    sent: int
    bounced: int = 0
    complained: int = 0
    stops: int = 0
    #: The usual opt-out rate (:func:`baseline_rate` over the history, with its own prior).
    stops_baseline_rate: float
    window: timedelta = timedelta(days=1)


def deliverability_verdict(sample: Deliverability, *, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """A warning when bounces or complaints reach Resend's limits (with :data:`MIN_BOUNCES`,
    :data:`MIN_COMPLAINTS`), or opt-outs spike against their baseline (the binomial test with
    :data:`MIN_STOPS`). The value is the bounce rate."""
    sent = sample.sent
    window = _window(sample.window)
    noun = _CHANNEL_NOUNS[sample.channel]
    problems: list[tuple[str, str]] = []
    if sent and sample.bounced >= MIN_BOUNCES and sample.bounced / sent >= BOUNCE_LIMIT:
        problems.append(
            (
                f"{sample.bounced:,} of {sent:,} {noun} bounced in {window} "
                f"({_percent(sample.bounced / sent)}; the limit is {_percent(BOUNCE_LIMIT)})",
                "Resend pauses accounts that bounce 4% or more: stop sending to old or "
                "bought lists and check that your forms validate addresses.",
            )
        )
    if sent and sample.complained >= MIN_COMPLAINTS and sample.complained / sent >= COMPLAINT_LIMIT:
        problems.append(
            (
                f"{sample.complained:,} of {sent:,} {noun} were marked as spam in {window} "
                f"({_percent(sample.complained / sent)}; the limit is "
                f"{_percent(COMPLAINT_LIMIT)})",
                "Resend pauses accounts with 0.08% spam complaints or more: send only to people "
                "who asked to hear from you, and make unsubscribing easy.",
            )
        )
    # A STOP may answer a text sent before the window: never more opt-outs than sends.
    stops = min(sample.stops, sent)
    stops_fire, p_value = failures_exceed_baseline(
        stops, sent, sample.stops_baseline_rate, alpha=alpha, min_failures=MIN_STOPS
    )
    opt_outs = "unsubscribes" if sample.channel == Channel.EMAIL else "STOP replies"
    if stops_fire:
        problems.append(
            (
                f"{sample.stops:,} {opt_outs} to {sent:,} {noun} in {window} "
                f"({_percent(sample.stops / sent)}, usually "
                f"{_percent(sample.stops_baseline_rate)})",
                f"{sample.stops:,} or more by chance: p = {p_value:.1e}. A message is annoying "
                "people: check the latest sequence steps and how often they go out.",
            )
        )
    bounce_rate = sample.bounced / sent if sent else None
    if problems:
        return Verdict(
            check=DELIVERABILITY,
            subject=sample.channel.value,
            status=HealthStatus.WARNING,
            summary=problems[0][0],
            detail=" ".join(f"{summary}. {action}" for summary, action in problems),
            value=bounce_rate,
        )
    return Verdict(
        check=DELIVERABILITY,
        subject=sample.channel.value,
        status=HealthStatus.OK,
        summary=(
            f"{sample.bounced:,} bounced, {sample.complained:,} marked as spam and "
            f"{sample.stops:,} {opt_outs} of {sent:,} {noun} in {window}"
            if sample.channel == Channel.EMAIL
            else f"{sample.stops:,} {opt_outs} of {sent:,} {noun} in {window}"
        ),
        detail="",
        value=bounce_rate,
    )


# -- The checks themselves ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChecksRunning:
    """When the health checks last ran (the ``keepwarm-health`` schedule's last action)."""

    last_run_at: datetime | None
    interval: timedelta


def checks_running_verdict(sample: ChecksRunning, *, now: datetime) -> Verdict:
    """Critical when no run happened for two intervals (a dead-man's switch); ``UNKNOWN``
    before the first run."""
    every = _duration(sample.interval)
    if sample.last_run_at is None:
        return Verdict(
            check=CHECKS_RUNNING,
            subject="keepwarm-health",
            status=HealthStatus.UNKNOWN,
            summary="The health checks have not run yet",
            detail=f"They run every {every}.",
        )
    since = max(timedelta(0), now - sample.last_run_at)
    ago = _duration(since)
    if since > 2 * sample.interval:
        return Verdict(
            check=CHECKS_RUNNING,
            subject="keepwarm-health",
            status=HealthStatus.CRITICAL,
            summary=f"keepwarm's health checks haven't run for {ago}",
            detail=f"They should run every {every}, so nothing is being watched. The "
            "keepwarm-health schedule may be paused or the workers down: check Schedules in "
            "the Temporal UI and the workers check.",
            value=since.total_seconds(),
        )
    return Verdict(
        check=CHECKS_RUNNING,
        subject="keepwarm-health",
        status=HealthStatus.OK,
        summary=f"The health checks last ran {ago} ago",
        detail=f"They run every {every}.",
        value=since.total_seconds(),
    )


# -- Words -------------------------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    """``1 lead``, ``1,200 leads``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _percent(rate: float) -> str:
    """One decimal (``3.6%``); two under 0.1 % so a limit like 0.08 % keeps its meaning."""
    percent = rate * 100
    return f"{percent:.2f}%" if 0 < percent < 0.1 else f"{percent:.1f}%"


def _about(expected: float) -> str:
    """An expected count: whole when it is 10 or more or whole already, else one decimal."""
    return f"{expected:,.0f}" if expected >= 10 or expected == int(expected) else f"{expected:.1f}"


def _duration(span: timedelta) -> str:
    """``45 s``, ``12 min``, ``1 h 30 min``, ``3 days``."""
    seconds = span.total_seconds()
    if seconds < 90:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{round(seconds / 86400)} days"


def _window(span: timedelta) -> str:
    """``the last hour``, ``the last 15 minutes``, ``the last 24 hours``, ``the last 7 days``."""
    minutes, rest = divmod(span, timedelta(minutes=1))
    if rest or minutes <= 0:
        return f"the last {_duration(span)}"
    if minutes == 60:
        return "the last hour"
    if minutes < 120 or minutes % 60:
        return f"the last {minutes} minutes"
    hours = minutes // 60
    if hours <= 48 or hours % 24:
        return f"the last {hours} hours"
    return f"the last {hours // 24} days"
