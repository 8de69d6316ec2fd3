"""The AI agents the org runs: status, context and how each did (the Command Center's cards),
as JSON or, with ``Accept: text/csv``, as a CSV table of the same figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.csv import csv_openapi, csv_response, filename, wants_csv
from api.deps import DatabaseDep, OrgDep, WindowDep
from api.openapi import ORG_KEY, errors
from models.reads import agents as agent_reads
from models.schemas import AgentList, AgentSummary
from models.tables import utcnow

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=errors(*ORG_KEY))

#: The CSV's columns: each agent's figures, the nested ones flattened.
COLUMNS = (
    "agent",
    "kind",
    "assistant_id",
    "status",
    "context",
    "active_conversations",
    "success_rate",
    "response_time_p50_s",
    "response_time_p90_s",
    "reply_time_p50_s",
    "reply_time_p90_s",
    "interactions",
    "cost_per_interaction",
    "currency",
    "satisfaction",
    "satisfaction_sample",
    "takeover_rate",
    "last_error_at",
    "last_error_provider",
    "last_error_kind",
    "last_error_detail",
)


def row(item: AgentSummary) -> dict[str, Any]:
    """One agent as a CSV row: the JSON item's values, nested objects flattened."""
    flat = item.model_dump(exclude={"response_time_s", "reply_time_s", "last_error"})
    flat |= {
        "response_time_p50_s": item.response_time_s.p50,
        "response_time_p90_s": item.response_time_s.p90,
        "reply_time_p50_s": item.reply_time_s.p50,
        "reply_time_p90_s": item.reply_time_s.p90,
    }
    if item.last_error is not None:
        flat |= {
            "last_error_at": item.last_error.at,
            "last_error_provider": item.last_error.provider,
            "last_error_kind": item.last_error.kind.value,
            "last_error_detail": item.last_error.detail,
        }
    flat["kind"] = item.kind.value
    flat["status"] = item.status.value
    return flat


@router.get(
    "",
    response_model=AgentList,
    responses=errors(422) | csv_openapi("The agents (JSON), or the same figures as CSV."),
)
async def list_agents(
    request: Request, org: OrgDep, database: DatabaseDep, window: WindowDep
) -> AgentList | Response:
    """The org's texting and email agent and its voice assistant: what each is doing now
    (status, context, conversations under way) and, for ``[from, to)`` (ISO 8601 with a
    zone; either end open), success rate, response times (p50, p90), cost per interaction,
    satisfaction and takeover rate. docs/api.md ("Agents") defines every figure.

    ``Accept: text/csv`` answers the same figures as CSV, one row per agent.
    """
    agents = await database.read(
        agent_reads.agents, org_id=org.id, start=window.start, end=window.end, now=utcnow()
    )
    if wants_csv(request):
        name = filename("agents", window.start, window.end)
        return csv_response(COLUMNS, [row(item) for item in agents.items], name=name)
    return agents
