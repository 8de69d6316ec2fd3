"""The ``HealthCheck`` workflow's activities: what Temporal says, what the data says, and
the alerts that follow (HEALTH.md "Shape")."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.probes import ProbeResult
from activities.records import record
from models.database import transaction
from models.payloads import AlertInput, AlertView, Observation
from models.rules import health
from models.rules.alerts import alert_workflow_id
from models.rules.health import RULES, Verdict
from models.services import health as health_service
from models.values import HealthStatus, ProviderHealth

log = logging.getLogger(__name__)

#: The Alert workflow and its update, by their registered names (activities don't import
#: workflows; the names never change).
ALERT_WORKFLOW = "Alert"
OBSERVE = "observe"
#: keepwarm's only task queue (``workflows.task_queues.LEADS``).
TASK_QUEUE = "keepwarm-leads"
ORG_ID = SearchAttributeKey.for_keyword("OrgId")
#: Samples are kept this long (the baselines look back a week).
SAMPLES_KEPT = timedelta(days=8)
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
    #: Only these orgs (``None``: every org).
    org_ids: list[str] | None = None


@dataclass(frozen=True, kw_only=True)
class OrgChecked:
    """An org whose verdicts of this run are stored (the samples carry them: a run's
    verdicts for hundreds of orgs would not fit in one activity's payload)."""

    org_id: str
    live: bool
    heartbeat_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """The orgs judged at ``Assessment.at`` (their samples are stored with that time)."""

    orgs: list[OrgChecked]


@dataclass(frozen=True, kw_only=True)
class RaiseInput:
    """Tell each org's alerts what this run found (read back from the stored samples)."""

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
        ids = input.org_ids or transaction(self._engine, health_service.org_ids)
        urls = transaction(self._engine, health_service.heartbeat_urls, ids=ids)
        orgs = []
        for org_id in ids:
            activity.heartbeat(org_id)
            own = record(self._engine, health_service.assess_org, org_id=org_id, now=now)
            record(self._engine, health_service.store_samples, org_id=org_id, verdicts=own, now=now)
            live = transaction(self._engine, health_service.org_is_live, org_id=org_id)
            orgs.append(OrgChecked(org_id=org_id, live=live, heartbeat_url=urls.get(org_id)))
        record(self._engine, health_service.prune_samples, before=now - SAMPLES_KEPT)
        return Assessment(orgs=orgs)

    @activity.defn(name="raise_alerts")
    async def raise_alerts(self, input: RaiseInput) -> Raised:
        """Each bad verdict of the run lands on its alert (started if none is open:
        update-with-start, one workflow id per org, rule and subject); each good one reaches
        an alert open for it, so it can recover. Then each org's heartbeat URL is pinged.

        One alert's trouble never stops the others: each is told on its own, and a retry of
        this activity tells nothing twice (the alert ignores an evaluation it has taken).
        A dry-run org's provider verdicts reach its alerts as good ones: it sends through
        no provider, so an alert it had while live resolves.
        """
        client = self._temporal.client
        told = Raised()
        for org in input.assessment.orgs:
            activity.heartbeat(org.org_id)
            samples = transaction(
                self._engine, health_service.run_samples, org_id=org.org_id, at=input.now
            )
            for sample in samples:
                status = HealthStatus(sample.status)
                if sample.check == _PROVIDERS_LIVE_ONLY and not org.live:
                    status = HealthStatus.OK
                observation = Observation(
                    status=status, summary=sample.summary, detail=sample.detail, at=input.now
                )
                try:
                    told = await self._tell(
                        client, org.org_id, sample.check, sample.subject, observation, input, told
                    )
                except (RPCError, WorkflowUpdateFailedError) as error:
                    # A resolved alert still sending its recovery notice refuses updates; the
                    # next run opens a new episode. Anything else: logged, the rest go on.
                    log.warning(
                        "alert %s/%s of org %s not told: %s",
                        sample.check,
                        sample.subject,
                        org.org_id,
                        type(error).__name__,
                    )
            if org.heartbeat_url:
                told = replace(told, heartbeats=told.heartbeats + await _ping(org.heartbeat_url))
        return told

    async def _tell(
        self,
        client: Client,
        org_id: str,
        check: str,
        subject: str,
        observation: Observation,
        input: RaiseInput,
        told: Raised,
    ) -> Raised:
        workflow_id = alert_workflow_id(org_id, check, subject)
        if health.is_bad(observation.status):
            policy = RULES[check]
            await client.execute_update_with_start_workflow(
                OBSERVE,
                observation,
                start_workflow_operation=WithStartWorkflowOperation(
                    ALERT_WORKFLOW,
                    AlertInput(
                        org_id=org_id,
                        rule=check,
                        subject=subject,
                        pending_evaluations=policy.pending_count(input.interval),
                        recovery_evaluations=policy.recovery_count(input.interval),
                        stale_after=3 * input.interval,
                    ),
                    id=workflow_id,
                    task_queue=TASK_QUEUE,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    static_summary=f"Alert: {observation.summary}"[:200],
                    search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id)]),
                    result_type=AlertView,
                ),
                result_type=AlertView,
            )
            return replace(told, bad=told.bad + 1)
        if health.is_clear(observation.status):
            try:
                await client.get_workflow_handle(workflow_id).execute_update(
                    OBSERVE, observation, result_type=AlertView
                )
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                return told  # no alert open for it: nothing to recover
            return replace(told, good=told.good + 1)
        return told


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
    """GET the org's heartbeat URL (an outside dead-man's switch); 1 if it answered 2xx.

    Only https, and never to a private, loopback or link-local address: the URL is the org's
    to choose, and the worker must not be a way into the deployment's own network.
    """

    def get() -> int:
        try:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError("not an https URL")
            for info in socket.getaddrinfo(parts.hostname, parts.port or 443):
                address = ipaddress.ip_address(info[4][0])
                if not address.is_global:
                    raise ValueError("resolves to a private address")
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (checked above)
                return 1 if 200 <= response.status < 300 else 0
        except Exception as error:  # the org's URL: whatever it does, the run goes on
            log.warning("heartbeat URL not pinged: %s", type(error).__name__)
            return 0

    return await asyncio.to_thread(get)
