"""Consent per channel: the log of every change and the standing answer per channel."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from models.errors import NotFound
from models.store.leads import newest_lead
from models.store.timeline import add_to_timeline
from models.tables import (
    ConsentRecord,
    Contact,
)
from models.values import (
    Channel,
    TimelineKind,
    new_id,
)


def record_consent(
    session: Session, *, org_id: str, contact_id: str, payload: dict[str, Any], receipt_id: str
) -> None:
    for channel, granted in (payload.get("consent") or {}).items():
        if granted is None:
            continue
        session.add(
            ConsentRecord(
                id=new_id("cons"),
                org_id=org_id,
                contact_id=contact_id,
                channel=channel,
                granted=bool(granted),
                source="intake_form",
                evidence=f"intake receipt {receipt_id}",
            )
        )
    session.flush()


def current_consent(session: Session, *, org_id: str, contact_id: str) -> dict[str, bool | None]:
    """The latest consent per channel; ``None`` where the person was never asked."""
    consent: dict[str, bool | None] = {channel.value: None for channel in Channel}
    records = session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.org_id == org_id, ConsentRecord.contact_id == contact_id)
        .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
    )
    for record in records:
        consent[record.channel] = record.granted
    return consent


def record_consent_change(
    session: Session,
    *,
    org_id: str,
    contact_id: str,
    channel: Channel,
    granted: bool,
    source: str,
    evidence: str,
) -> bool:
    """Record a consent change on a channel; ``False`` (nothing written) if it already stood."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.org_id != org_id:
        raise NotFound(contact_id)
    if current_consent(session, org_id=org_id, contact_id=contact_id)[channel] is granted:
        return False
    session.add(
        ConsentRecord(
            id=new_id("cons"),
            org_id=org_id,
            contact_id=contact_id,
            channel=channel,
            granted=granted,
            source=source,
            evidence=evidence[:200],
        )
    )
    lead = newest_lead(session, org_id=org_id, contact_id=contact_id)
    if lead is not None:
        verb = "given" if granted else "withdrawn"
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.CONSENT,
            summary=f"{channel.upper()} consent {verb} ({source})",
            data={"channel": channel.value, "granted": granted, "source": source},
        )
    session.flush()
    return True
