"""Search attributes keepwarm sets for ops in the Temporal Web UI. Never personal data."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

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
