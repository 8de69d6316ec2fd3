"""The ``Alert`` workflow's side effects: its row, and its notices to people."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messages import MessageActivities
from activities.records import record
from models.payloads import AlertEpisode, NoticeRequest
from models.services.alerts import claim_alert_notices
from models.services.alerts import record_alert as record_alert_row
from models.tables import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class NoticeOutcome:
    """One notice of a step: its channel, to whom, and ``sent`` or why not."""

    channel: str
    to: str | None
    outcome: str
    #: For a silenced notice: when the silence ends (the step is tried again then).
    silenced_until: datetime | None = None


class AlertActivities:
    """Records alerts and sends their notices through the message path (so a notice is a
    message row like any other: dry run or live by the org's mode, sent once)."""

    def __init__(self, *, engine: Engine, messages: MessageActivities, public_url: str) -> None:
        """Record in ``engine``, deliver through ``messages``, link to ``public_url``."""
        self._engine = engine
        self._messages = messages
        self._public_url = public_url.rstrip("/")

    @activity.defn(name="record_alert")
    def record_alert(self, input: AlertEpisode) -> None:
        """Write the alert episode's row as its workflow sees it now."""
        record(self._engine, record_alert_row, episode=input)

    @activity.defn(name="send_alert_notices")
    def send_alert_notices(self, input: NoticeRequest) -> list[NoticeOutcome]:
        """Claim the step's notices (silences, quota, contacts decided with them) and deliver
        those that go out, each once. A delivery that fails is retried by Temporal; the
        others of the step are not sent twice (each has its own row)."""
        now = activity.info().current_attempt_scheduled_time or utcnow()
        claimed = record(
            self._engine,
            claim_alert_notices,
            request=input,
            link=f"{self._public_url}/app/alerts",
            now=now,
        )
        failures = []
        for notice, message in claimed.notices:
            if message is None:
                continue
            try:
                self._messages.deliver_staff_message(message, org_id=input.org_id)
            except ApplicationError as error:
                if error.non_retryable:
                    log.warning("alert notice %s not sent: %s", notice.id, error.message)
                    continue
                failures.append(error)
        if failures:
            raise failures[0]
        return [
            NoticeOutcome(
                channel=notice.channel,
                to=notice.to_address,
                outcome=notice.outcome,
                silenced_until=claimed.silenced_until,
            )
            for notice, _ in claimed.notices
        ]
