"""Task-queue names. The only place they are written."""

from __future__ import annotations

#: Lead workflows and every activity they call.
LEADS = "keepwarm-leads"
