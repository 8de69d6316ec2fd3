"""The HealthCheck workflow: one run of the checks, started by the ``keepwarm-health``
Schedule."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.health import (
        AssessInput,
        HealthActivities,
        Raised,
        RaiseInput,
        SampleTemporalInput,
        TemporalSample,
    )
    from activities.probes import ProbeActivities, ProbeInput, ProbeResult
    from models.values import ProviderHealth, WebhookProvider

__all__ = ["HEALTH_CHECK_WORKFLOW", "HealthCheckInput", "HealthCheckResult", "HealthCheckWorkflow"]

HEALTH_CHECK_WORKFLOW = "HealthCheck"
#: Providers probed at every run (those without credentials answer "not configured").
PROVIDERS = (
    WebhookProvider.TWILIO,
    WebhookProvider.RESEND,
    WebhookProvider.STRIPE,
    WebhookProvider.VAPI,
)
#: A probe is one cheap request: short, and not retried (the next run is the retry).
PROBE_TIMEOUT = timedelta(seconds=20)
ONCE = RetryPolicy(maximum_attempts=1)
SAMPLE_TIMEOUT = timedelta(seconds=30)
SAMPLE_RETRY = RetryPolicy(maximum_attempts=2, initial_interval=timedelta(seconds=1))
#: Judging every org and telling its alerts: heartbeats keep a long one alive.
ASSESS_TIMEOUT = timedelta(minutes=5)
ASSESS_HEARTBEAT = timedelta(seconds=60)
ASSESS_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=2))


@dataclass(frozen=True, kw_only=True)
class HealthCheckInput:
    """The schedule's interval: holds that count evaluations are converted with it."""

    interval: timedelta = timedelta(minutes=5)
    #: Only these orgs (a check of one org on demand, a test); ``None``: every org.
    org_ids: list[str] | None = None


@dataclass(frozen=True, kw_only=True)
class HealthCheckResult:
    """What the run found and did."""

    orgs: int
    bad: int
    good: int


@workflow.defn(name=HEALTH_CHECK_WORKFLOW)
class HealthCheckWorkflow:
    """One run of the checks (HEALTH.md):

    1. In parallel, each with a short timeout: a credentials probe of each provider, and
       Temporal's view of the workers, the backlog and failed runs.
    2. Judge those and each org's own data against its own history (pure rules), storing
       every verdict as a sample (``GET /v1/health`` reads the latest).
    3. Each bad verdict lands on its ``Alert`` workflow (update-with-start); each good one
       reaches its alert if one is open, so it can recover. Heartbeat URLs are pinged.
    """

    @workflow.run
    async def run(self, input: HealthCheckInput) -> HealthCheckResult:
        """Sample, judge, alert (see the class docstring)."""
        now = workflow.now()
        probes = [
            workflow.execute_activity_method(
                ProbeActivities.probe_provider,
                ProbeInput(provider=provider),
                start_to_close_timeout=PROBE_TIMEOUT,
                retry_policy=ONCE,
                summary=f"probe {provider.value}",
            )
            for provider in PROVIDERS
        ]
        temporal = workflow.execute_activity_method(
            HealthActivities.sample_temporal,
            SampleTemporalInput(now=now),
            start_to_close_timeout=SAMPLE_TIMEOUT,
            retry_policy=SAMPLE_RETRY,
            summary="sample Temporal",
        )
        answers = await asyncio.gather(*probes, temporal, return_exceptions=True)
        results: list[ProbeResult] = []
        for provider, answer in zip(PROVIDERS, answers[:-1], strict=True):
            if isinstance(answer, ProbeResult):
                results.append(answer)
            else:  # the probe itself did not finish in time: as good as no answer
                results.append(
                    ProbeResult(
                        provider=provider,
                        outcome=ProviderHealth.DOWN,
                        detail=f"no answer within {int(PROBE_TIMEOUT.total_seconds())} s",
                    )
                )
        sample = answers[-1]
        assessment = await workflow.execute_activity_method(
            HealthActivities.assess_health,
            AssessInput(
                probes=results,
                temporal=sample if isinstance(sample, TemporalSample) else None,
                now=now,
                org_ids=input.org_ids,
            ),
            start_to_close_timeout=ASSESS_TIMEOUT,
            heartbeat_timeout=ASSESS_HEARTBEAT,
            retry_policy=ASSESS_RETRY,
            summary="judge the samples",
        )
        raised: Raised = await workflow.execute_activity_method(
            HealthActivities.raise_alerts,
            RaiseInput(assessment=assessment, interval=input.interval, now=now),
            start_to_close_timeout=ASSESS_TIMEOUT,
            heartbeat_timeout=ASSESS_HEARTBEAT,
            retry_policy=ASSESS_RETRY,
            summary="tell the alerts",
        )
        return HealthCheckResult(orgs=len(assessment.orgs), bad=raised.bad, good=raised.good)
