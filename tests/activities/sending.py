"""The send a Lead workflow run makes for its first touch, as the activity tests run it."""

from __future__ import annotations

from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.messages import MessageActivities, SendMessageInput, SendMessageResult
from models.values import Channel


def send_touch_one(
    sending: MessageActivities,
    org_id: str,
    lead_id: str,
    *,
    env: ActivityEnvironment | None = None,
    **extra: Any,
) -> SendMessageResult:
    """``send_message`` for the lead's first SMS touch (``extra``: more input fields), in
    ``env`` (one attempt's activity info) or a fresh environment."""
    result: SendMessageResult = (env or ActivityEnvironment()).run(
        sending.send_message,
        SendMessageInput(
            org_id=org_id,
            lead_id=lead_id,
            channel=Channel.SMS,
            template="first_touch",
            idempotency_key=f"wf-{lead_id}/touch-1",
            **extra,
        ),
    )
    return result
