"""The health checks' verdicts and holds (HEALTH.md): exact statuses, the numbers an owner reads,
and the statistics behind them. Pure: no database, no Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.rules import health
from models.rules.health import (
    Backlog,
    ChecksRunning,
    Deliverability,
    LeadArrivals,
    ProviderProbe,
    RulePolicy,
    SendCounts,
    SendFailures,
    SpeedToLead,
    Verdict,
    WebhookArrivals,
    WorkerPresence,
    WorkflowFailures,
)
from models.values import Channel, HealthStatus, MessageStatus, ProviderHealth, WebhookProvider

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
#: An org whose history fails exactly 2% of live sends (the prior is 2% too).
TWO_PERCENT = SendCounts(delivered=9_800, failed=200)


def sms_failures(counts: SendCounts, baseline: SendCounts = TWO_PERCENT) -> Verdict:
    return health.send_failures_verdict(
        SendFailures(channel=Channel.SMS, counts=counts, baseline=baseline)
    )


# -- Statistics ------------------------------------------------------------------------------


def test_one_failure_in_ten_at_a_two_percent_baseline_does_not_fire() -> None:
    fires, p_value = health.failures_exceed_baseline(1, 10, 0.02)

    assert not fires
    assert p_value == pytest.approx(0.18293, abs=1e-5)  # 1 - 0.98 ** 10


def test_thirty_six_in_a_thousand_fires() -> None:
    fires, p_value = health.failures_exceed_baseline(36, 1_000, 0.02)

    assert fires
    assert p_value == pytest.approx(7.049e-4, rel=1e-3)
    assert 1e-4 < p_value < health.DEFAULT_ALPHA


def test_twenty_eight_in_a_thousand_is_borderline_and_does_not_fire() -> None:
    fires, p_value = health.failures_exceed_baseline(28, 1_000, 0.02)

    assert not fires
    assert p_value == pytest.approx(0.0507, abs=1e-4)


def test_thirty_five_in_a_thousand_is_the_last_count_that_does_not_fire() -> None:
    fires, p_value = health.failures_exceed_baseline(35, 1_000, 0.02)

    assert not fires
    assert p_value == pytest.approx(1.327e-3, rel=1e-3)


def test_too_few_failures_never_fire_however_unlikely() -> None:
    fires, p_value = health.failures_exceed_baseline(3, 10, 0.02)

    assert p_value < health.DEFAULT_ALPHA  # 8.6e-4: the test alone would fire
    assert not fires  # but 3 failures are a few bad numbers (MIN_FAILURES is 5)
    assert health.failures_exceed_baseline(5, 10, 0.02)[0]


def test_nothing_sent_never_fires() -> None:
    assert health.failures_exceed_baseline(0, 0, 0.02) == (False, 1.0)


@pytest.mark.parametrize(
    ("failures", "total", "rate"), [(11, 10, 0.02), (-1, 10, 0.02), (1, 10, 1.5)]
)
def test_impossible_counts_are_refused(failures: int, total: int, rate: float) -> None:
    with pytest.raises(ValueError):
        health.failures_exceed_baseline(failures, total, rate)


def test_no_leads_when_nine_were_expected_is_unusual_silence() -> None:
    fires, p_value = health.silence_is_unusual(0, 9.0)

    assert fires
    assert p_value == pytest.approx(1.234e-4, rel=1e-3)  # e ** -9


def test_no_leads_when_five_were_expected_is_ordinary_silence() -> None:
    fires, p_value = health.silence_is_unusual(0, 5.0)

    assert not fires
    assert p_value == pytest.approx(6.738e-3, rel=1e-3)


def test_nothing_expected_is_never_unusual() -> None:
    assert health.silence_is_unusual(0, 0.0) == (False, 1.0)


def test_an_org_with_no_history_has_a_two_percent_baseline() -> None:
    assert health.baseline_rate(0, 0) == 0.02


def test_a_short_history_is_shrunk_toward_the_prior() -> None:
    # 2 failures in 20 sends is 10%, but 20 sends say little: (2 + 4) / (20 + 200).
    assert health.baseline_rate(2, 20) == pytest.approx(6 / 220)


def test_a_long_history_is_the_orgs_own_rate() -> None:
    assert health.baseline_rate(500, 10_000) == pytest.approx(504 / 10_200)  # 4.9%


# -- Holds -------------------------------------------------------------------------------------


def test_every_check_has_a_policy() -> None:
    assert set(health.RULES) == set(health.CHECKS)
    assert len(health.CHECKS) == 10


@pytest.mark.parametrize(
    ("duration", "interval", "evaluations"),
    [
        (timedelta(minutes=10), timedelta(minutes=5), 2),
        (timedelta(minutes=10), timedelta(minutes=3), 4),
        (timedelta(minutes=10), timedelta(seconds=10), 60),
        (timedelta(minutes=10), timedelta(days=1), 1),
        (timedelta(0), timedelta(minutes=5), 1),
    ],
)
def test_a_duration_hold_is_counted_in_evaluations_rounding_up(
    duration: timedelta, interval: timedelta, evaluations: int
) -> None:
    assert health.evaluations_for(duration, interval) == evaluations


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        health.evaluations_for(timedelta(minutes=10), timedelta(0))


def test_a_provider_notifies_after_two_failures_in_a_row_at_any_interval() -> None:
    provider = health.RULES[health.PROVIDER]

    assert provider.pending_count(timedelta(seconds=10)) == 2
    assert provider.pending_count(timedelta(days=1)) == 2


def test_a_backlog_notifies_after_ten_minutes() -> None:
    backlog = health.RULES[health.BACKLOG]

    assert backlog.pending_count(timedelta(minutes=5)) == 2
    assert backlog.pending_count(timedelta(seconds=10)) == 60


def test_workers_missing_notify_after_two_minutes() -> None:
    workers = health.RULES[health.WORKERS]

    assert workers.pending_count(timedelta(minutes=5)) == 1
    assert workers.pending_count(timedelta(seconds=10)) == 12


def test_a_failed_workflow_and_missed_runs_notify_at_once() -> None:
    assert health.RULES[health.WORKFLOW_FAILURES].pending_count(timedelta(minutes=5)) == 1
    assert health.RULES[health.CHECKS_RUNNING].pending_count(timedelta(minutes=5)) == 1


def test_every_alert_stays_clear_for_two_evaluations_before_it_resolves() -> None:
    for policy in health.RULES.values():
        assert policy.recovery_count(timedelta(minutes=5)) == 2


def test_a_recovery_hold_can_be_a_duration() -> None:
    policy = RulePolicy(keep_firing_for=timedelta(minutes=15))

    assert policy.recovery_count(timedelta(minutes=5)) == 3
    assert policy.recovery_count(timedelta(hours=1)) == 2


def test_unknown_neither_fires_nor_resolves() -> None:
    assert [health.is_bad(s) for s in HealthStatus] == [False, True, True, False]
    assert [health.is_clear(s) for s in HealthStatus] == [True, False, False, False]


# -- Provider ----------------------------------------------------------------------------------


def twilio(
    outcome: ProviderHealth, *, detail: str = "", down_since: datetime | None = None
) -> Verdict:
    return health.provider_verdict(
        ProviderProbe(
            provider=WebhookProvider.TWILIO,
            outcome=outcome,
            detail=detail,
            down_since=down_since,
        ),
        now=NOW,
    )


def test_rejected_credentials_are_critical() -> None:
    verdict = twilio(ProviderHealth.CREDENTIALS_REJECTED, detail="HTTP 401: Authenticate")

    assert verdict.check == "provider"
    assert verdict.subject == "twilio"
    assert verdict.status == HealthStatus.CRITICAL
    assert verdict.summary == "Twilio rejected keepwarm's credentials"
    assert "HTTP 401: Authenticate" in verdict.detail


def test_a_suspended_account_is_critical() -> None:
    verdict = twilio(ProviderHealth.SUSPENDED)

    assert verdict.status == HealthStatus.CRITICAL
    assert verdict.summary == "Twilio suspended the account"


def test_provider_down_is_a_warning_then_critical_after_fifteen_minutes() -> None:
    early = twilio(ProviderHealth.DOWN, down_since=NOW - timedelta(minutes=14, seconds=59))
    late = twilio(ProviderHealth.DOWN, down_since=NOW - timedelta(minutes=15))

    assert early.status == HealthStatus.WARNING
    assert early.summary == "Twilio is not responding"
    assert late.status == HealthStatus.CRITICAL
    assert late.summary == "Twilio has been down for 15 min"
    assert late.value == 900.0


def test_provider_down_without_a_start_is_a_warning() -> None:
    assert twilio(ProviderHealth.DOWN).status == HealthStatus.WARNING


def test_a_provider_not_configured_never_alerts() -> None:
    verdict = health.provider_verdict(
        ProviderProbe(provider=WebhookProvider.VAPI, outcome=ProviderHealth.NOT_CONFIGURED),
        now=NOW,
    )

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "Vapi is not configured"


@pytest.mark.parametrize("outcome", [ProviderHealth.OK, ProviderHealth.BUSINESS_REFUSAL])
def test_a_reachable_provider_is_ok(outcome: ProviderHealth) -> None:
    verdict = twilio(outcome)

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "Twilio is reachable and accepts keepwarm's credentials"


# -- Workers and backlog -----------------------------------------------------------------------


def test_missing_workers_are_critical_and_named() -> None:
    verdict = health.workers_verdict(
        WorkerPresence(
            task_queue="keepwarm-leads", missing_kinds=["workflow", "activity"], identities=[]
        )
    )

    assert verdict.status == HealthStatus.CRITICAL
    assert verdict.subject == "keepwarm-leads"
    assert (
        verdict.summary
        == "keepwarm's workflow and activity workers are missing: follow-ups are paused"
    )
    assert verdict.value == 0.0


def test_workers_present_are_counted_once_per_identity() -> None:
    verdict = health.workers_verdict(
        WorkerPresence(
            task_queue="keepwarm-leads",
            identities=["101@host-a", "101@host-a", "202@host-b"],
        )
    )

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "2 workers running"
    assert verdict.value == 2.0


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (None, HealthStatus.OK),
        (0.0, HealthStatus.OK),
        (60.0, HealthStatus.OK),
        (61.0, HealthStatus.WARNING),
    ],
)
def test_a_backlog_older_than_a_minute_is_a_warning(
    age: float | None, status: HealthStatus
) -> None:
    verdict = health.backlog_verdict(Backlog(task_queue="keepwarm-leads", age_seconds=age))

    assert verdict.status == status


def test_a_backlog_says_how_long_the_oldest_task_waited() -> None:
    verdict = health.backlog_verdict(Backlog(task_queue="keepwarm-leads", age_seconds=185.0))

    assert verdict.summary == "Work is piling up: the oldest task has waited 3 min"
    assert verdict.value == 185.0


# -- Workflow failures -------------------------------------------------------------------------


def test_any_failed_workflow_is_critical_and_named_by_type() -> None:
    verdict = health.workflow_failures_verdict(
        WorkflowFailures(failed_by_type={"Nudge": 1, "Lead": 2, "Takeover": 0})
    )

    assert verdict.status == HealthStatus.CRITICAL
    assert verdict.summary == "3 follow-ups failed in the last hour (Lead 2, Nudge 1)"
    assert verdict.value == 3.0


def test_no_failed_workflow_is_ok() -> None:
    verdict = health.workflow_failures_verdict(WorkflowFailures(failed_by_type={"Lead": 0}))

    assert verdict.status == HealthStatus.OK
    assert verdict.value == 0.0


# -- Send failures -----------------------------------------------------------------------------


def test_thirty_six_failed_sms_in_a_thousand_is_a_warning() -> None:
    verdict = sms_failures(SendCounts(delivered=964, failed=36))

    assert verdict.check == "send_failures"
    assert verdict.subject == "sms"
    assert verdict.status == HealthStatus.WARNING
    assert verdict.summary == "36 of 1,000 SMS failed in the last hour (usually 2.0%)"
    assert "p = 7.0e-04" in verdict.detail
    assert verdict.value == 0.036


def test_one_failed_sms_in_ten_is_ok() -> None:
    verdict = sms_failures(SendCounts(delivered=9, failed=1))

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "1 of 10 SMS failed in the last hour (usually 2.0%)"


def test_dry_run_sends_never_count() -> None:
    # With the 1,000 simulated sends in the denominator, 36 failures would be 1.8% and quiet.
    verdict = sms_failures(SendCounts(delivered=964, failed=36, simulated=1_000))

    assert verdict.status == HealthStatus.WARNING
    assert verdict.summary == "36 of 1,000 SMS failed in the last hour (usually 2.0%)"
    assert "1,000 dry-run sends not counted" in verdict.detail


def test_three_failures_of_ten_live_sends_beside_a_thousand_dry_runs_do_not_fire() -> None:
    verdict = sms_failures(SendCounts(delivered=7, failed=3, simulated=1_000))

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "3 of 10 SMS failed in the last hour (usually 2.0%)"
    assert verdict.value == 0.3  # 3 of the 10 live sends, not 3 of 1,010


def test_dry_run_sends_never_count_in_the_baseline() -> None:
    # Counted, 100,000 simulated sends would drag the usual rate to 0.2%: 6 of 100 would fire.
    baseline = SendCounts(delivered=9_800, failed=200, simulated=100_000)
    verdict = sms_failures(SendCounts(delivered=94, failed=6), baseline)

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "6 of 100 SMS failed in the last hour (usually 2.0%)"
    assert health.failures_exceed_baseline(6, 100, 204 / 110_200)[0]


def test_only_simulated_sends_are_no_live_sends() -> None:
    verdict = sms_failures(SendCounts(simulated=1_000))

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "No live SMS sent in the last hour"
    assert verdict.value is None


def test_more_than_half_of_ten_live_sends_failing_is_critical() -> None:
    assert sms_failures(SendCounts(delivered=4, failed=6)).status == HealthStatus.CRITICAL
    assert sms_failures(SendCounts(delivered=5, failed=5)).status == HealthStatus.WARNING
    assert sms_failures(SendCounts(delivered=3, failed=6)).status == HealthStatus.WARNING


def test_an_org_that_usually_fails_more_is_judged_against_its_own_rate() -> None:
    usually_five = SendCounts(delivered=19_000, failed=1_000)

    verdict = sms_failures(SendCounts(delivered=964, failed=36), usually_five)

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "36 of 1,000 SMS failed in the last hour (usually 5.0%)"


def test_pending_sends_are_not_outcomes_yet() -> None:
    counts = SendCounts.from_statuses(
        {
            MessageStatus.PENDING: 50,
            MessageStatus.QUEUED: 100,
            MessageStatus.SENT: 200,
            MessageStatus.DELIVERED: 664,
            MessageStatus.FAILED: 36,
            MessageStatus.SIMULATED: 7,
            MessageStatus.RECEIVED: 300,
        }
    )

    assert counts.live == 1_000
    assert sms_failures(counts).summary == "36 of 1,000 SMS failed in the last hour (usually 2.0%)"


def test_email_failures_are_counted_in_emails() -> None:
    verdict = health.send_failures_verdict(
        SendFailures(
            channel=Channel.EMAIL,
            counts=SendCounts(delivered=1_150, failed=50),
            baseline=SendCounts(),
            window=timedelta(hours=3),
        )
    )

    assert verdict.status == HealthStatus.WARNING
    assert verdict.summary == "50 of 1,200 emails failed in the last 3 hours (usually 2.0%)"


# -- Webhooks ----------------------------------------------------------------------------------


def test_sends_without_any_status_callback_are_a_warning() -> None:
    verdict = health.webhooks_verdict(
        WebhookArrivals(provider=WebhookProvider.TWILIO, live_sends=12, status_callbacks=0)
    )

    assert verdict.status == HealthStatus.WARNING
    assert verdict.subject == "twilio"
    assert verdict.summary == "No delivery updates from Twilio for 12 sends in the last hour"


def test_a_few_sends_without_callbacks_are_not_enough_to_tell() -> None:
    verdict = health.webhooks_verdict(
        WebhookArrivals(provider=WebhookProvider.TWILIO, live_sends=4, status_callbacks=0)
    )

    assert verdict.status == HealthStatus.OK


def test_a_receipt_unrouted_over_five_minutes_is_a_warning_the_sweeper_handles() -> None:
    verdict = health.webhooks_verdict(
        WebhookArrivals(
            provider=WebhookProvider.RESEND,
            live_sends=40,
            status_callbacks=38,
            unrouted_over_5_min=2,
        )
    )

    assert verdict.status == HealthStatus.WARNING
    assert verdict.summary == "2 Resend webhooks waited over 5 min to reach their follow-up"
    assert "sweeper routes them" in verdict.detail


def test_callbacks_arriving_are_ok() -> None:
    verdict = health.webhooks_verdict(
        WebhookArrivals(provider=WebhookProvider.TWILIO, live_sends=12, status_callbacks=30)
    )

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "30 delivery updates from Twilio for 12 live sends in the last hour"


# -- Leads arriving ----------------------------------------------------------------------------


def test_no_leads_when_nine_were_expected_is_a_warning() -> None:
    verdict = health.leads_arriving_verdict(
        LeadArrivals(observed=0, expected=9.0, inside_hours=True, window=timedelta(hours=3))
    )

    assert verdict.status == HealthStatus.WARNING
    assert verdict.summary == "No leads in the last 3 hours (usually about 9)"
    assert "p = 1.2e-04" in verdict.detail


def test_fewer_leads_than_usual_but_not_unusually_few_is_ok() -> None:
    verdict = health.leads_arriving_verdict(
        LeadArrivals(observed=4, expected=9.0, inside_hours=True)
    )

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "4 leads in the last hour (usually about 9)"


def test_silence_outside_business_hours_never_alerts() -> None:
    verdict = health.leads_arriving_verdict(
        LeadArrivals(observed=0, expected=9.0, inside_hours=False)
    )

    assert verdict.status == HealthStatus.UNKNOWN
    assert verdict.summary == "Outside business hours: lead flow isn't checked"


# -- Speed to lead -----------------------------------------------------------------------------


def speed(p90_seconds: float | None, leads: int) -> Verdict:
    return health.speed_to_lead_verdict(
        SpeedToLead(p90_seconds=p90_seconds, leads=leads, target=timedelta(minutes=5))
    )


def test_slow_first_replies_are_a_warning() -> None:
    verdict = speed(720.0, 20)

    assert verdict.status == HealthStatus.WARNING
    assert verdict.summary == "1 in 10 leads waited 12 min or more for a first reply (target 5 min)"
    assert verdict.value == 720.0


def test_first_replies_within_the_target_are_ok() -> None:
    verdict = speed(95.0, 20)

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "9 in 10 leads got a first reply within 2 min (target 5 min)"


def test_too_few_leads_to_judge_reply_speed() -> None:
    verdict = speed(3_600.0, 4)

    assert verdict.status == HealthStatus.UNKNOWN
    assert verdict.summary == "4 leads touched in the last 24 hours: too few to judge reply speed"


# -- Deliverability ----------------------------------------------------------------------------


def emails(sent: int, *, bounced: int = 0, complained: int = 0, stops: int = 0) -> Verdict:
    return health.deliverability_verdict(
        Deliverability(
            channel=Channel.EMAIL,
            sent=sent,
            bounced=bounced,
            complained=complained,
            stops=stops,
            stops_baseline_rate=0.005,
        )
    )


def test_one_bounce_in_three_emails_does_not_fire() -> None:
    verdict = emails(3, bounced=1)

    assert verdict.status == HealthStatus.OK
    assert verdict.value == pytest.approx(1 / 3)


def test_bounces_at_resends_limit_are_a_warning() -> None:
    assert emails(125, bounced=4).status == HealthStatus.OK  # 3.2%
    verdict = emails(125, bounced=5)  # 4.0%

    assert verdict.status == HealthStatus.WARNING
    assert verdict.subject == "email"
    assert (
        verdict.summary == "5 of 125 emails bounced in the last 24 hours (4.0%; the limit is 4.0%)"
    )


def test_spam_complaints_over_resends_limit_are_a_warning() -> None:
    assert emails(1_000, complained=1).status == HealthStatus.OK
    verdict = emails(2_000, complained=2)  # 0.1%

    assert verdict.status == HealthStatus.WARNING
    assert verdict.summary == (
        "2 of 2,000 emails were marked as spam in the last 24 hours (0.1%; the limit is 0.08%)"
    )


def test_a_stop_spike_is_a_warning() -> None:
    verdict = health.deliverability_verdict(
        Deliverability(channel=Channel.SMS, sent=400, stops=12, stops_baseline_rate=0.005)
    )

    assert verdict.status == HealthStatus.WARNING
    assert verdict.subject == "sms"
    assert verdict.summary == "12 STOP replies to 400 SMS in the last 24 hours (3.0%, usually 0.5%)"


def test_usual_stops_are_ok() -> None:
    verdict = health.deliverability_verdict(
        Deliverability(channel=Channel.SMS, sent=400, stops=3, stops_baseline_rate=0.005)
    )

    assert verdict.status == HealthStatus.OK


def test_stops_answering_earlier_sends_do_not_break_the_check() -> None:
    verdict = health.deliverability_verdict(
        Deliverability(channel=Channel.SMS, sent=0, stops=2, stops_baseline_rate=0.005)
    )

    assert verdict.status == HealthStatus.OK
    assert verdict.value is None


# -- The checks themselves ---------------------------------------------------------------------


def checks_last_ran(ago: timedelta | None) -> Verdict:
    return health.checks_running_verdict(
        ChecksRunning(
            last_run_at=None if ago is None else NOW - ago, interval=timedelta(minutes=5)
        ),
        now=NOW,
    )


def test_no_run_for_two_intervals_is_critical() -> None:
    assert checks_last_ran(timedelta(minutes=10)).status == HealthStatus.OK
    verdict = checks_last_ran(timedelta(minutes=10, seconds=1))

    assert verdict.status == HealthStatus.CRITICAL
    assert verdict.summary == "keepwarm's health checks haven't run for 10 min"
    assert verdict.value == 601.0


def test_a_recent_run_is_ok() -> None:
    verdict = checks_last_ran(timedelta(minutes=4))

    assert verdict.status == HealthStatus.OK
    assert verdict.summary == "The health checks last ran 4 min ago"


def test_before_the_first_run_the_checks_are_unknown() -> None:
    assert checks_last_ran(None).status == HealthStatus.UNKNOWN


def test_a_sample_that_could_not_be_taken_is_unknown() -> None:
    verdict = health.unknown(health.PROVIDER, "stripe", "the probe timed out after 10 s")

    assert verdict.status == HealthStatus.UNKNOWN
    assert verdict.detail == "the probe timed out after 10 s"
