"""Alerts as use cases: the ``Alert`` workflow records its episode and claims its notices
(silences, the SMS quota and the contacts decided in the same transaction); people add and
lift silences.

Lock order: the org row first (the SMS quota is counted under it, so two notices at once
can't both take the last text), then the alert.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models.database import lock
from models.errors import NotFound
from models.payloads import AlertEpisode, NoticeRequest
from models.rules.alerts import BACKUP, MAIN, notice_text
from models.schemas import OrgSettings
from models.store.alerts import (
    NO_CONTACT,
    OVER_QUOTA,
    SENT,
    SILENCED,
    active_silence,
    get_alert,
    notice_at_step,
    notices_of,
    owner_of,
    sms_notices_since,
)
from models.store.orgs import settings_for
from models.tables import Alert, AlertNotice, Message, Operator, Org, Silence, utcnow
from models.values import (
    AlertState,
    Channel,
    Direction,
    HealthStatus,
    MessageStatus,
    Sender,
    new_id,
)


def record_alert(session: Session, *, episode: AlertEpisode) -> Alert:
    """Write the episode's row as the workflow sees it now (created on first write)."""
    values: dict[str, Any] = {
        "rule": episode.rule,
        "subject": episode.subject,
        "severity": episode.severity,
        "state": episode.state,
        "summary": episode.summary[:300],
        "detail": episode.detail[:1000],
        "code": episode.code,
        "opened_at": episode.opened_at,
        "fired_at": episode.fired_at,
        "acknowledged_at": episode.acknowledged_at,
        "acknowledged_by": episode.acknowledged_by,
        "resolved_at": episode.resolved_at,
        "updated_at": utcnow(),
    }
    alert = lock(session, Alert, episode.alert_id)
    if alert is not None and alert.revision > episode.revision:
        return alert  # a newer write landed first (the acknowledge update's own)
    values["revision"] = episode.revision
    if alert is None:
        alert = Alert(
            id=episode.alert_id, org_id=episode.org_id, workflow_id=episode.workflow_id, **values
        )
    elif alert.org_id != episode.org_id:
        raise NotFound(episode.alert_id)
    else:
        for name, value in values.items():
            setattr(alert, name, value)
    session.add(alert)
    session.flush()
    return alert


@dataclass(frozen=True, kw_only=True)
class ClaimedNotices:
    """A step's notices, each with the message to deliver (``None``: held back), and until
    when a silence held them back (``None``: no silence did)."""

    notices: list[tuple[AlertNotice, Message | None]]
    silenced_until: datetime | None = None


def claim_alert_notices(
    session: Session, *, request: NoticeRequest, link: str, now: datetime
) -> ClaimedNotices:
    """The notices of one step, each recorded once (``(alert, step)`` is unique), with the
    message to deliver for those that go out.

    Held back, with the reason recorded: a silence or maintenance window covering the alert
    (``silenced``; the workflow tries the step again when it ends), an SMS past the org's
    monthly quota (``over_quota``: the main email contact is told instead), nobody to reach
    on the channel (``no_contact``).
    A recovery goes to everyone a firing notice reached, on the channel that reached them.
    """
    org = lock(session, Org, request.org_id)
    alert = get_alert(session, org_id=request.org_id, alert_id=request.alert_id)
    if org is None:
        raise NotFound(request.org_id)
    settings = settings_for(session, org_id=request.org_id)
    recovered = request.recovered_after_s is not None
    if recovered:
        told = {
            (notice.channel, notice.to_address)
            for notice in notices_of(session, alert_id=alert.id)
            if notice.outcome == SENT
            and notice.to_address
            and not notice.step.startswith("recovery")
        }
        targets: list[tuple[str, str | None]] = sorted(told)
    else:
        targets = list(_recipients(session, request=request, settings=settings))
    if not targets and not recovered:
        targets = [(request.channel.value, None)]
    subject, body = notice_text(
        severity=HealthStatus(alert.severity),
        summary=alert.summary,
        detail=alert.detail,
        code=alert.code,
        link=link,
        recovered_after=(
            timedelta(seconds=request.recovered_after_s)
            if request.recovered_after_s is not None
            else None
        ),
    )
    claimed: list[tuple[AlertNotice, Message | None]] = []
    silence = active_silence(
        session, org_id=request.org_id, rule=alert.rule, subject=alert.subject, at=now
    )
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    index = -1
    while index + 1 < len(targets):  # an SMS over the quota adds its email fallback
        index += 1
        channel, address = targets[index]
        step = f"{request.step}-{index}"
        existing = notice_at_step(session, alert_id=alert.id, step=step)
        if existing is not None:
            message = session.get(Message, existing.message_id) if existing.message_id else None
            claimed.append((existing, message))
            continue
        outcome = SENT
        if address is None:
            outcome = NO_CONTACT
        elif silence is not None:
            outcome = SILENCED
        elif (
            channel == Channel.SMS
            and sms_notices_since(session, org_id=request.org_id, since=month_start)
            >= settings.alerts.sms_per_month
        ):
            outcome = OVER_QUOTA
            fallback = _recipients(
                session,
                request=replace(request, channel=Channel.EMAIL, who=MAIN),
                settings=settings,
            )
            targets.extend(target for target in fallback if target not in targets)
        message = None
        if outcome == SENT and address is not None:
            message = Message(
                id=new_id("msg"),
                org_id=request.org_id,
                channel=channel,
                direction=Direction.OUTBOUND,
                sender=Sender.SYSTEM,
                to_address=address,
                from_address=settings.sms_from if channel == Channel.SMS else settings.email_from,
                body=body,
                subject=None if channel == Channel.SMS else subject,
                status=MessageStatus.PENDING,
                idempotency_key=f"alert/{alert.id}/{step}",
                mode=settings.provider_mode.value,
                created_at=now,
            )
            session.add(message)
        notice = AlertNotice(
            id=new_id("ntc"),
            org_id=request.org_id,
            alert_id=alert.id,
            step=step,
            channel=channel,
            to_address=address,
            message_id=message.id if message else None,
            outcome=outcome,
            created_at=now,
        )
        session.add(notice)
        session.flush()
        claimed.append((notice, message))
    held = silence is not None and all(n.outcome == SILENCED for n, _ in claimed)
    return ClaimedNotices(
        notices=claimed, silenced_until=silence.until if held and silence else None
    )


def _recipients(
    session: Session, *, request: NoticeRequest, settings: OrgSettings
) -> list[tuple[str, str | None]]:
    """Who a firing rung reaches on its channel: the first of the org's alert contacts
    for that channel (the owner's address by default), or the ones after it."""
    owner = owner_of(session, org_id=request.org_id)
    if request.channel == Channel.SMS:
        listed = [str(number) for number in settings.alerts.sms]
        fallback = owner.phone if owner is not None else None
    else:
        listed = [str(address) for address in settings.alerts.email]
        fallback = owner.email if owner is not None else None
    contacts = listed or ([fallback] if fallback else [])
    if request.who == MAIN:
        chosen = contacts[:1]
    else:
        assert request.who == BACKUP
        chosen = contacts[1:]
    return [(request.channel.value, address) for address in chosen]


def add_silence(
    session: Session,
    *,
    org_id: str,
    rule: str | None,
    subject: str | None,
    starts_at: datetime,
    until: datetime,
    reason: str | None,
    created_by: str | None,
) -> Silence:
    """A new silence (a maintenance window when it starts later)."""
    silence = Silence(
        id=new_id("sil"),
        org_id=org_id,
        rule=rule,
        subject=subject,
        starts_at=starts_at,
        until=until,
        reason=reason,
        created_by=created_by,
    )
    session.add(silence)
    session.flush()
    return silence


def lift_silence(session: Session, *, org_id: str, silence_id: str) -> None:
    """Delete the org's silence; ``NotFound`` for another org's or none."""
    silence = session.get(Silence, silence_id)
    if silence is None or silence.org_id != org_id:
        raise NotFound(silence_id)
    session.delete(silence)
    session.flush()


@dataclass(frozen=True, kw_only=True)
class AckBySms:
    """An ``ACK <code>`` text from one of the org's alert contacts, and the open alert it
    names (``None``: none is open with that code; the text is dropped all the same)."""

    by: str
    workflow_id: str | None = None
    alert_id: str | None = None


def alert_acknowledged_by_text(
    session: Session, *, org_id: str, phone: str, code: str
) -> AckBySms | None:
    """What an ``ACK <code>`` text from ``phone`` acknowledges: ``None`` unless ``phone`` is
    one of the org's alert numbers or an operator's phone (the text is then an ordinary
    message); else the open alert with that code, if any (a late or mistyped ACK from an
    alert contact is not a customer's message either)."""
    settings = settings_for(session, org_id=org_id)
    people = {
        operator.phone: operator.name
        for operator in session.exec(
            select(Operator).where(Operator.org_id == org_id, col(Operator.removed_at).is_(None))
        )
        if operator.phone
    }
    listed = {str(number) for number in settings.alerts.sms}
    if phone not in people and phone not in listed:
        return None
    alert = session.exec(
        select(Alert)
        .where(
            Alert.org_id == org_id,
            Alert.code == code,
            col(Alert.fired_at).is_not(None),
            col(Alert.state).in_(
                [AlertState.FIRING, AlertState.ACKNOWLEDGED, AlertState.RECOVERING]
            ),
        )
        .order_by(col(Alert.opened_at).desc())
    ).first()
    by = f"{people.get(phone, phone)} (text)"
    if alert is None:
        return AckBySms(by=by)
    return AckBySms(by=by, workflow_id=alert.workflow_id, alert_id=alert.id)
