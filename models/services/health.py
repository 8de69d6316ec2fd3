"""The health check's database side: what each org's data says (send failures against its
own history, status callbacks, receipts not yet routed, speed to lead, bounces), judged by
``rules.health``, and every verdict stored as a sample (HEALTH.md "Checks")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from models.rules import health
from models.rules.health import SendCounts, Verdict
from models.store.orgs import settings_for
from models.tables import ConsentRecord, HealthSample, Lead, Message, Org, WebhookReceipt
from models.values import (
    Channel,
    Direction,
    HealthStatus,
    MessageStatus,
    ProviderMode,
    WebhookProvider,
    new_id,
)

#: The window each check judges, and the history its baseline comes from.
WINDOW = timedelta(hours=1)
_STATUSES = frozenset(status.value for status in MessageStatus)
BASELINE = timedelta(days=7)
#: A send this recent may not have had its status callback yet.
CALLBACK_GRACE = timedelta(minutes=10)
#: A receipt unrouted for this long is the sweeper's to route, and worth a warning.
UNROUTED_AFTER = timedelta(minutes=5)
SPEED_WINDOW = timedelta(hours=24)
#: Leads a speed-to-lead sample looks at, at most (the newest).
SPEED_SAMPLE = 2000

#: Which of a provider's receipts are delivery reports (Twilio also posts inbound messages;
#: everything Resend posts is about an email sent).
_CALLBACK_TYPES: dict[WebhookProvider, tuple[str, ...] | None] = {
    WebhookProvider.TWILIO: ("status_callback",),
    WebhookProvider.RESEND: None,
}
_CALLBACK_PROVIDERS = {
    WebhookProvider.TWILIO: (Channel.SMS, Channel.WHATSAPP),
    WebhookProvider.RESEND: (Channel.EMAIL,),
}


def org_ids(session: Session) -> list[str]:
    """Every org the checks look at."""
    return list(session.exec(select(Org.id).order_by(col(Org.id))).all())


def send_counts(
    session: Session, *, org_id: str, channels: Sequence[Channel], start: datetime, end: datetime
) -> SendCounts:
    """Outbound messages on ``channels`` created in ``[start, end)``, by status."""
    rows = session.exec(
        select(Message.status, func.count())
        .where(
            Message.org_id == org_id,
            Message.direction == Direction.OUTBOUND,
            col(Message.channel).in_([channel.value for channel in channels]),
            col(Message.created_at) >= start,
            col(Message.created_at) < end,
        )
        .group_by(col(Message.status))
    ).all()
    return SendCounts.from_statuses(
        {MessageStatus(status): count for status, count in rows if status in _STATUSES}
    )


def _receipts(
    session: Session,
    *,
    org_id: str,
    provider: WebhookProvider,
    start: datetime,
    end: datetime,
    unrouted: bool = False,
    event_types: tuple[str, ...] | None = None,
) -> int:
    """The provider's receipts in ``[start, end)``: still unrouted ones only, or of
    ``event_types`` only, when asked."""
    statement = (
        select(func.count())
        .select_from(WebhookReceipt)
        .where(
            WebhookReceipt.org_id == org_id,
            WebhookReceipt.provider == provider,
            col(WebhookReceipt.received_at) >= start,
            col(WebhookReceipt.received_at) < end,
        )
    )
    if unrouted:
        statement = statement.where(col(WebhookReceipt.routed_at).is_(None))
    if event_types is not None:
        statement = statement.where(col(WebhookReceipt.event_type).in_(event_types))
    return int(session.exec(statement).one())


def _speed_to_lead(session: Session, *, org_id: str, now: datetime) -> tuple[float | None, int]:
    """p90 seconds from a lead's creation to its first outbound message, over the leads
    created in the last day that have been touched, and how many there were."""
    first_touch = (
        select(Message.lead_id, func.min(Message.created_at).label("first"))
        .where(
            Message.org_id == org_id,
            Message.direction == Direction.OUTBOUND,
            col(Message.lead_id).is_not(None),
            col(Message.created_at) >= now - SPEED_WINDOW,
        )
        .group_by(col(Message.lead_id))
        .subquery()
    )
    rows = session.exec(
        select(Lead.created_at, first_touch.c.first)
        .join(first_touch, first_touch.c.lead_id == col(Lead.id))
        .where(Lead.org_id == org_id, col(Lead.created_at) >= now - SPEED_WINDOW)
        .order_by(col(Lead.created_at).desc())
        .limit(SPEED_SAMPLE)
    ).all()
    waits = sorted(max((first - created).total_seconds(), 0.0) for created, first in rows)
    if not waits:
        return None, 0
    return waits[min(len(waits) - 1, int(0.9 * len(waits)))], len(waits)


#: Resend's webhook event types for a bounce and a spam complaint.
_BOUNCED = "email.bounced"
_COMPLAINED = "email.complained"
#: How many weeks back the same hour of the week is averaged for lead flow.
LEAD_WEEKS = 4
DELIVERABILITY_WINDOW = timedelta(days=1)
#: Business hours when the org sends any time of day (no SMS window set).
_DEFAULT_HOURS = (time(8), time(20))


def _opt_outs(
    session: Session, *, org_id: str, channel: Channel, start: datetime, end: datetime
) -> int:
    """Consent withdrawn on ``channel`` in ``[start, end)``: STOP replies, unsubscribe links."""
    return int(
        session.exec(
            select(func.count())
            .select_from(ConsentRecord)
            .where(
                ConsentRecord.org_id == org_id,
                ConsentRecord.channel == channel,
                col(ConsentRecord.granted).is_(False),
                col(ConsentRecord.recorded_at) >= start,
                col(ConsentRecord.recorded_at) < end,
            )
        ).one()
    )


def deliverability(session: Session, *, org_id: str, now: datetime) -> list[Verdict]:
    """Bounces and complaints (email, from Resend's webhooks) and opt-outs (SMS and email)
    over the last day, against the org's own opt-out rate of the week before."""
    start = now - DELIVERABILITY_WINDOW
    verdicts = []
    for channel in (Channel.SMS, Channel.EMAIL):
        sent = send_counts(session, org_id=org_id, channels=[channel], start=start, end=now).live
        history = send_counts(
            session, org_id=org_id, channels=[channel], start=start - BASELINE, end=start
        ).live
        past_stops = _opt_outs(
            session, org_id=org_id, channel=channel, start=start - BASELINE, end=start
        )
        email = channel == Channel.EMAIL
        verdicts.append(
            health.deliverability_verdict(
                health.Deliverability(
                    channel=channel,
                    sent=sent,
                    bounced=_receipts(
                        session,
                        org_id=org_id,
                        provider=WebhookProvider.RESEND,
                        start=start,
                        end=now,
                        event_types=(_BOUNCED,),
                    )
                    if email
                    else 0,
                    complained=_receipts(
                        session,
                        org_id=org_id,
                        provider=WebhookProvider.RESEND,
                        start=start,
                        end=now,
                        event_types=(_COMPLAINED,),
                    )
                    if email
                    else 0,
                    stops=_opt_outs(session, org_id=org_id, channel=channel, start=start, end=now),
                    stops_baseline_rate=health.baseline_rate(past_stops, history),
                    window=DELIVERABILITY_WINDOW,
                )
            )
        )
    return verdicts


def lead_arrivals(session: Session, *, org_id: str, now: datetime) -> Verdict:
    """Leads of the last hour against the same hour of the week over the last four weeks,
    judged only inside the org's hours (its SMS window, in its timezone)."""
    settings = settings_for(session, org_id=org_id)

    def leads(start: datetime, end: datetime) -> int:
        return int(
            session.exec(
                select(func.count())
                .select_from(Lead)
                .where(
                    Lead.org_id == org_id,
                    col(Lead.created_at) >= start,
                    col(Lead.created_at) < end,
                )
            ).one()
        )

    past = [
        leads(now - WINDOW - timedelta(weeks=k), now - timedelta(weeks=k))
        for k in range(1, LEAD_WEEKS + 1)
    ]
    local = now.astimezone(ZoneInfo(settings.timezone))
    window = settings.quiet_hours.sms
    opens, closes = (
        (time.fromisoformat(window[0]), time.fromisoformat(window[1])) if window else _DEFAULT_HOURS
    )
    weekend = settings.quiet_hours.weekdays_only and local.weekday() >= 5
    inside = opens <= local.time() < closes and not weekend
    return health.leads_arriving_verdict(
        health.LeadArrivals(
            observed=leads(now - WINDOW, now),
            expected=sum(past) / len(past),
            inside_hours=inside,
        )
    )


def assess_org(session: Session, *, org_id: str, now: datetime) -> list[Verdict]:
    """The org's own checks, judged against its own history."""
    settings = settings_for(session, org_id=org_id)
    verdicts: list[Verdict] = []
    start = now - WINDOW
    for channel in (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL):
        window = send_counts(session, org_id=org_id, channels=[channel], start=start, end=now)
        baseline = send_counts(
            session, org_id=org_id, channels=[channel], start=start - BASELINE, end=start
        )
        verdicts.append(
            health.send_failures_verdict(
                health.SendFailures(channel=channel, counts=window, baseline=baseline)
            )
        )
    live = settings.provider_mode == ProviderMode.LIVE
    for provider, channels in _CALLBACK_PROVIDERS.items():
        sends = send_counts(
            session, org_id=org_id, channels=channels, start=start, end=now - CALLBACK_GRACE
        )
        verdicts.append(
            health.webhooks_verdict(
                health.WebhookArrivals(
                    provider=provider,
                    live_sends=sends.live if live else 0,
                    status_callbacks=_receipts(
                        session,
                        org_id=org_id,
                        provider=provider,
                        start=start,
                        end=now,
                        event_types=_CALLBACK_TYPES[provider],
                    ),
                    unrouted_over_5_min=_receipts(
                        session,
                        org_id=org_id,
                        provider=provider,
                        start=now - BASELINE,
                        end=now - UNROUTED_AFTER,
                        unrouted=True,
                    ),
                )
            )
        )
    verdicts.extend(deliverability(session, org_id=org_id, now=now))
    verdicts.append(lead_arrivals(session, org_id=org_id, now=now))
    p90, leads = _speed_to_lead(session, org_id=org_id, now=now)
    verdicts.append(
        health.speed_to_lead_verdict(
            health.SpeedToLead(
                p90_seconds=p90, leads=leads, target=settings.alerts.speed_to_lead_target
            )
        )
    )
    return verdicts


def provider_down_since(
    session: Session, *, provider: WebhookProvider, now: datetime
) -> datetime | None:
    """When the provider's current run of ``down`` samples began (``None``: its latest
    sample is not down, so a down probe now starts the run)."""
    samples = session.exec(
        select(HealthSample.status, HealthSample.checked_at, HealthSample.value)
        .where(
            HealthSample.org_id == "",
            HealthSample.check == health.PROVIDER,
            HealthSample.subject == provider.value,
            col(HealthSample.checked_at) <= now,
        )
        .order_by(col(HealthSample.checked_at).desc())
        .limit(200)
    ).all()
    since = None
    for status, checked_at, value in samples:
        if status == HealthStatus.OK or value is None:  # only a down sample carries a value
            break
        since = checked_at
    return since


def store_samples(
    session: Session, *, org_id: str, verdicts: Sequence[Verdict], now: datetime
) -> None:
    """Store each verdict as a sample (``org_id`` empty: the deployment's own checks)."""
    for verdict in verdicts:
        session.add(
            HealthSample(
                id=new_id("hs"),
                org_id=org_id,
                check=verdict.check,
                subject=verdict.subject,
                status=verdict.status,
                summary=verdict.summary[:300],
                detail=verdict.detail[:1000],
                value=verdict.value,
                checked_at=now,
            )
        )
    session.flush()


def heartbeat_urls(session: Session, *, ids: Sequence[str]) -> dict[str, str]:
    """The orgs' heartbeat URLs (``alerts.heartbeat_url``), for those that set one."""
    urls = {}
    for org_id in ids:
        url = settings_for(session, org_id=org_id).alerts.heartbeat_url
        if url is not None:
            urls[org_id] = str(url)
    return urls


def org_is_live(session: Session, *, org_id: str) -> bool:
    """Whether the org sends through the real providers (a provider's trouble is its own)."""
    return settings_for(session, org_id=org_id).provider_mode == ProviderMode.LIVE


def run_samples(session: Session, *, org_id: str, at: datetime) -> list[HealthSample]:
    """The verdicts one run stored for the org: its own and the deployment's."""
    return list(
        session.exec(
            select(HealthSample)
            .where(
                col(HealthSample.org_id).in_(["", org_id]),
                HealthSample.checked_at == at,
            )
            .order_by(col(HealthSample.check), col(HealthSample.subject))
        ).all()
    )


def prune_samples(session: Session, *, before: datetime) -> int:
    """Forget samples older than ``before`` (nothing reads further back than a week)."""
    result = session.execute(delete(HealthSample).where(col(HealthSample.checked_at) < before))
    return int(getattr(result, "rowcount", 0) or 0)
