"""The Command Center (``/app``): what the AI is doing right now and whether keepwarm's
checks are happy, at a glance.

Its regions are blocks of one template, each re-fetched through its own route when the live
stream says something changed: the agents (``/app/agents``) on any thread, lead or
escalation change, so "handling 3 conversations" moves as a lead arrives; the counts and
latest activity (``/app/now``) likewise; the last 7 days' headline figures
(``/app/metrics``, the pipeline report) a moment after leads change, and every minute.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import Database, DatabaseDep
from api.reports import read_pipeline
from api.sessions import OperatorSessionDep
from api.ui.alerts import SEVERITY, check_label, read_health
from api.ui.pipeline import Headline, Range, duration, headlines, last_days, percent
from api.ui.render import page
from models.reads.agents import agents as agent_list
from models.reads.command import now_summary
from models.schemas import AgentKind, AgentStatus, AgentSummary, Quantiles
from models.services.sign_in import Current
from models.tables import utcnow

router = APIRouter(prefix="/app", include_in_schema=False)

#: The agents' figures and the headline figures cover the last this many days (today
#: included, in the org's calendar), against the same number of days before.
DAYS = 7
#: The headline figures the Command Center shows (the Pipeline page shows them all).
HEADLINE_FIGURES = ("Leads", "Converted", "Conversion rate", "Speed to lead (median)")
STATUS_WORDS = {
    AgentStatus.ACTIVE: "Active",
    AgentStatus.IDLE: "Idle",
    AgentStatus.ERROR: "Error",
}
KIND_WORDS = {AgentKind.MESSAGING: "Texts and emails", AgentKind.VOICE: "Phone calls"}
#: What success means for each kind of agent.
SUCCESS_MEANS = {
    AgentKind.MESSAGING: "leads contacted who replied",
    AgentKind.VOICE: "ended calls that were answered",
}


def unit_cost(amount: float | None, currency: str) -> str:
    """A small price: ``$0.0079``, ``0.12 EUR``; ``—`` without one."""
    if amount is None:
        return "—"
    shown = f"{amount:.4f}".rstrip("0").rstrip(".") if amount < 1 else f"{amount:,.2f}"
    return f"${shown}" if currency.upper() == "USD" else f"{shown} {currency.upper()}"


def _times(times: Quantiles, missing: str) -> str:
    if times.p50 is None:
        return missing
    return f"{duration(times.p50)} median · {duration(times.p90)} p90"


@dataclass(frozen=True)
class AgentCard:
    """One agent as the Command Center shows it: words first, then its figures."""

    name: str
    kind: str
    status: str
    status_word: str
    context: str
    figures: list[tuple[str, str]]


def agent_card(item: AgentSummary) -> AgentCard:
    """``item`` in words: its status, what it is doing, how it did."""
    context = item.context[:1].upper() + item.context[1:]
    figures = [
        (f"Success rate ({SUCCESS_MEANS[item.kind]})", percent(item.success_rate)),
        ("Response time, lead to first touch", _times(item.response_time_s, "No leads yet")),
    ]
    if item.kind == AgentKind.MESSAGING:
        figures.append(("Reply time, customer to AI", _times(item.reply_time_s, "No replies yet")))
    if item.kind != AgentKind.MESSAGING:
        satisfaction = "Not measured"
    elif item.satisfaction is None:
        satisfaction = "No replies yet"
    else:
        satisfaction = f"{percent(item.satisfaction)} (from {item.satisfaction_sample} replies)"
    figures += [
        ("Cost per interaction", unit_cost(item.cost_per_interaction, item.currency)),
        ("Satisfaction", satisfaction),
        ("Taken over by a person", percent(item.takeover_rate)),
    ]
    return AgentCard(
        name=item.agent,
        kind=KIND_WORDS.get(item.kind, item.kind.value),
        status=item.status.value,
        status_word=STATUS_WORDS.get(item.status, item.status.value),
        context=context,
        figures=figures,
    )


async def _agents(me: Current, database: Database) -> dict[str, Any]:
    chosen = last_days(me.org, DAYS)
    now = utcnow()
    listed = await database.read(
        agent_list, org_id=me.org.id, start=chosen.start, end=None, now=now
    )
    return {
        "agents": [agent_card(item) for item in listed.items],
        "agents_range": chosen,
        "agents_at": now,
    }


async def _metrics(me: Current, database: Database) -> dict[str, Any]:
    chosen: Range = last_days(me.org, DAYS)
    report = await read_pipeline(
        database, org_id=me.org.id, start=chosen.start, end=chosen.end, source=None, compare=True
    )
    shown: list[Headline] = [
        h for h in headlines(report, report.currency) if h.label in HEADLINE_FIGURES
    ]
    before = report.previous
    return {
        "metrics": shown,
        "metrics_range": chosen,
        "metrics_empty": not sum(report.stages.values())
        and not (before and sum(before.stages.values())),
        "pipeline_link": f"/app/pipeline?{chosen.query()}",
    }


@router.get("")
async def command_center(
    request: Request, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The landing page after sign-in from ``/app``."""
    now = utcnow()
    summary, health, agents, metrics = await asyncio.gather(
        database.read(now_summary, org_id=me.org.id, now=now),
        read_health(request, me, database),
        _agents(me, database),
        _metrics(me, database),
    )
    return page(
        request,
        "command.html",
        me=me,
        title="Command Center",
        section="command",
        now_summary=summary,
        now=now,
        health=health,
        severity=SEVERITY,
        check_label=check_label,
        **agents,
        **metrics,
    )


@router.get("/now")
async def now_fragment(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The "now" region alone (a live region re-fetches it)."""
    now = utcnow()
    summary = await database.read(now_summary, org_id=me.org.id, now=now)
    return page(request, "command.html", me=me, block="command_now", now_summary=summary, now=now)


@router.get("/agents")
async def agents_fragment(
    request: Request, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The agents region alone (re-fetched when a thread, lead or escalation changes)."""
    return page(
        request, "command.html", me=me, block="command_agents", **await _agents(me, database)
    )


@router.get("/metrics")
async def metrics_fragment(
    request: Request, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The last 7 days' headline figures alone."""
    return page(
        request, "command.html", me=me, block="command_metrics", **await _metrics(me, database)
    )
