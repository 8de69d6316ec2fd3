"""Search attributes keepwarm sets for ops in the Temporal Web UI. Never personal data."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

ORG_ID = SearchAttributeKey.for_keyword("OrgId")
LEAD_STAGE = SearchAttributeKey.for_keyword("LeadStage")
LEAD_SCORE = SearchAttributeKey.for_int("LeadScore")
NEEDS_ATTENTION = SearchAttributeKey.for_bool("NeedsAttention")
CHANNEL = SearchAttributeKey.for_keyword("Channel")

#: Every key, for registration on a namespace (``keepwarm migrate``, ``keepwarm up``).
ALL: tuple[SearchAttributeKey[Any], ...] = (
    ORG_ID,
    LEAD_STAGE,
    LEAD_SCORE,
    NEEDS_ATTENTION,
    CHANNEL,
)

#: Patch id: nudge sequences and call loops (started as children, without attributes) mark
#: their ``OrgId`` as they start, so a failed one lists under its org's failed workflows
#: (``GET /v1/workflows/failed``). Histories from before don't.
ORG_MARK_PATCH = "mark-org-id"


def mark_org(org_id: str) -> None:
    """In a workflow: set ``OrgId`` on this run (once, at its start), unless replaying a
    history from before ``ORG_MARK_PATCH``."""
    if workflow.patched(ORG_MARK_PATCH):
        workflow.upsert_search_attributes([ORG_ID.value_set(org_id)])


def org_attributes(org_id: str) -> TypedSearchAttributes:
    """The search attributes a run of ``org_id`` starts with."""
    return TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id)])
