"""The ``HealthCheck`` workflow's activities: what Temporal says, what the data says, and
the alerts that follow (HEALTH.md "Shape")."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError

from activities.probes import ProbeResult
from activities.records import record
from models.database import transaction
from models.payloads import AlertInput, AlertView, Observation
from models.rules import health
from models.rules.alerts import alert_workflow_id
from models.rules.health import RULES, Verdict
from models.services import health as health_service
from models.values import ProviderHealth

log = logging.getLogger(__name__)

#: The Alert workflow and its update, by their registered names (activities don't import
#: workflows; the names never change).
ALERT_WORKFLOW = "Alert"
OBSERVE = "observe"
#: keepwarm's only task queue (``workflows.task_queues.LEADS``).
TASK_QUEUE = "keepwarm-leads"
ORG_ID = SearchAttributeKey.for_keyword("OrgId")
#: Checks of the whole deployment: every org hears of them (providers: live orgs only).
_PROVIDERS_LIVE_ONLY = health.PROVIDER


class TemporalSource(Protocol):
    """What the checks ask Temporal (``workers.presence.TemporalHealth``)."""

    client: Client

    async def worker_polls(self, *, now: datetime) -> tuple[list[str], list[str]]:
        """The kinds of worker missing, and who polls."""
        ...

    async def backlog_age(self) -> float | None:
        """Seconds the oldest waiting task has waited (``None``: none waits)."""
        ...

    async def failed_runs(self, *, since: datetime) -> dict[str, int]:
        """Runs that failed or timed out since ``since``, by workflow type."""
        ...


@dataclass(frozen=True, kw_only=True)
class SampleTemporalInput:
    """Sample Temporal as of ``now``; failed runs over the last ``window``."""

    now: datetime
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class TemporalSample:
    """Workers, backlog and failed runs, as Temporal answered (or why it could not)."""

    missing_kinds: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    backlog_age_s: float | None = None
    failed_by_type: dict[str, int] = field(default_factory=dict)
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class AssessInput:
    """Everything sampled outside the database, to judge with the data."""

    probes: list[ProbeResult]
    #: ``None`` when Temporal could not be sampled (its checks are then ``unknown``).
    temporal: TemporalSample | None
    now: datetime


@dataclass(frozen=True, kw_only=True)
class OrgVerdicts:
    """One org's verdicts: its own, and the deployment's that concern it."""

    org_id: str
    verdicts: list[Verdict]
    heartbeat_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """Every org's verdicts (stored as samples already)."""

    orgs: list[OrgVerdicts]


@dataclass(frozen=True, kw_only=True)
class RaiseInput:
    """Tell each org's alerts what this run found."""

    assessment: Assessment
    interval: timedelta
    now: datetime


@dataclass(frozen=True, kw_only=True)
class Raised:
    """How many alerts were told of a bad verdict, and how many open ones of a good one."""

    bad: int = 0
    good: int = 0
    heartbeats: int = 0


class HealthActivities:
    """Samples Temporal, judges the data, and raises alerts through Temporal."""

    def __init__(self, *, engine: Engine, temporal: TemporalSource) -> None:
        """Read and write ``engine``; ask and tell Temporal through ``temporal``."""
        self._engine = engine
        self._temporal = temporal

    @activity.defn(name="sample_temporal")
    async def sample_temporal(self, input: SampleTemporalInput) -> TemporalSample:
        """Which workers poll, how old the backlog is, which runs failed."""
        missing, identities = await self._temporal.worker_polls(now=input.now)
        return TemporalSample(
            missing_kinds=missing,
            identities=identities,
            backlog_age_s=await self._temporal.backlog_age(),
            failed_by_type=await self._temporal.failed_runs(since=input.now - input.window),
            window=input.window,
        )

    @activity.defn(name="assess_health")
    def assess_health(self, input: AssessInput) -> Assessment:
        """Judge the deployment's samples and each org's data; store every verdict."""
        now = input.now
        shared = _temporal_verdicts(input.temporal)
        for probe in input.probes:
            down_since = None
            if probe.outcome == ProviderHealth.DOWN:
                down_since = (
                    record(
                        self._engine,
                        health_service.provider_down_since,
                        provider=probe.provider,
                        now=now,
                    )
                    or now
                )
            shared.append(
                health.provider_verdict(
                    health.ProviderProbe(
                        provider=probe.provider,
                        outcome=probe.outcome,
                        detail=probe.detail,
                        down_since=down_since,
                    ),
                    now=now,
                )
            )
        record(self._engine, health_service.store_samples, org_id="", verdicts=shared, now=now)
        orgs = []
        ids = transaction(self._engine, health_service.org_ids)
        urls = transaction(self._engine, health_service.heartbeat_urls, ids=ids)
        for org_id in ids:
            activity.heartbeat(org_id)
            own = record(self._engine, health_service.assess_org, org_id=org_id, now=now)
            record(self._engine, health_service.store_samples, org_id=org_id, verdicts=own, now=now)
            live = transaction(self._engine, health_service.org_is_live, org_id=org_id)
            concerning = [
                verdict for verdict in shared if live or verdict.check != _PROVIDERS_LIVE_ONLY
            ]
            orgs.append(
                OrgVerdicts(
                    org_id=org_id, verdicts=concerning + own, heartbeat_url=urls.get(org_id)
                )
            )
        return Assessment(orgs=orgs)

    @activity.defn(name="raise_alerts")
    async def raise_alerts(self, input: RaiseInput) -> Raised:
        """Each bad verdict lands on its alert (started if none is open: update-with-start,
        one workflow id per org, rule and subject); each good one reaches an alert that is
        open for it, so it can recover. Then each org's heartbeat URL is pinged."""
        client = self._temporal.client
        bad = good = beats = 0
        for org in input.assessment.orgs:
            activity.heartbeat(org.org_id)
            for verdict in org.verdicts:
                observation = Observation(
                    status=verdict.status,
                    summary=verdict.summary,
                    detail=verdict.detail,
                    at=input.now,
                )
                workflow_id = alert_workflow_id(org.org_id, verdict.check, verdict.subject)
                if health.is_bad(verdict.status):
                    policy = RULES[verdict.check]
                    await client.execute_update_with_start_workflow(
                        OBSERVE,
                        observation,
                        start_workflow_operation=WithStartWorkflowOperation(
                            ALERT_WORKFLOW,
                            AlertInput(
                                org_id=org.org_id,
                                rule=verdict.check,
                                subject=verdict.subject,
                                pending_evaluations=policy.pending_count(input.interval),
                                recovery_evaluations=policy.recovery_count(input.interval),
                                stale_after=3 * input.interval,
                            ),
                            id=workflow_id,
                            task_queue=TASK_QUEUE,
                            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                            static_summary=f"Alert: {verdict.summary}"[:200],
                            search_attributes=TypedSearchAttributes(
                                [SearchAttributePair(ORG_ID, org.org_id)]
                            ),
                            result_type=AlertView,
                        ),
                        result_type=AlertView,
                    )
                    bad += 1
                elif health.is_clear(verdict.status):
                    try:
                        await client.get_workflow_handle(workflow_id).execute_update(
                            OBSERVE, observation, result_type=AlertView
                        )
                        good += 1
                    except RPCError:
                        pass  # no alert open for it: nothing to recover
            if org.heartbeat_url:
                beats += await _ping(org.heartbeat_url)
        return Raised(bad=bad, good=good, heartbeats=beats)


def _temporal_verdicts(sample: TemporalSample | None) -> list[Verdict]:
    """Workers, backlog and failed runs, judged (``unknown`` when Temporal didn't answer)."""
    if sample is None:
        why = "Temporal did not answer the health check"
        return [
            health.unknown(health.WORKERS, TASK_QUEUE, why),
            health.unknown(health.BACKLOG, TASK_QUEUE, why),
            health.unknown(health.WORKFLOW_FAILURES, "workflows", why),
        ]
    return [
        health.workers_verdict(
            health.WorkerPresence(
                task_queue=TASK_QUEUE,
                missing_kinds=sample.missing_kinds,
                identities=sample.identities,
            )
        ),
        health.backlog_verdict(
            health.Backlog(task_queue=TASK_QUEUE, age_seconds=sample.backlog_age_s)
        ),
        health.workflow_failures_verdict(
            health.WorkflowFailures(failed_by_type=sample.failed_by_type, window=sample.window)
        ),
    ]


async def _ping(url: str) -> int:
    """GET the org's heartbeat URL (an outside dead-man's switch); 1 if it answered 2xx."""

    def get() -> int:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (org's https/http URL)
                return 1 if 200 <= response.status < 300 else 0
        except OSError as error:
            log.warning("heartbeat URL did not answer: %s", type(error).__name__)
            return 0

    return await asyncio.to_thread(get)
