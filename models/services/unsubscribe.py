"""One-click unsubscribe (RFC 8058) as use cases: what a signed token asks for, and the
opt-out it records. No login: the token is signed with the org's secret."""

from __future__ import annotations

from sqlmodel import Session

from models.errors import NotFound
from models.services.inbound import OptOutReach, opt_out_reach
from models.store.consent import record_consent_change
from models.store.orgs import get_org
from models.tokens import UnsubscribeRequest, token_org, verify_unsubscribe_token
from models.values import Channel


def unsubscribe_request(session: Session, *, token: str) -> tuple[str, UnsubscribeRequest] | None:
    """The org's name and what the token asks for, if it is genuine."""
    org_id = token_org(token)
    if org_id is None:
        return None
    try:
        org = get_org(session, org_id=org_id)
    except NotFound:
        return None
    request = verify_unsubscribe_token(token, secret=org.id_secret)
    if request is None or request.channel not in {c.value for c in Channel}:
        return None
    return org.name, request


def unsubscribe_by_token(
    session: Session, *, token: str
) -> tuple[str, OptOutReach, Channel] | None:
    """Record the opt-out a genuine token asks for: the org's name, who to tell, and the
    channel (``None``, changing nothing, for a bad token or a contact since removed)."""
    found = unsubscribe_request(session, token=token)
    if found is None:
        return None
    name, request = found
    try:
        record_consent_change(
            session,
            org_id=request.org_id,
            contact_id=request.contact_id,
            channel=Channel(request.channel),
            granted=False,
            source="unsubscribe link",
            evidence="one-click unsubscribe (RFC 8058)",
        )
    except NotFound:
        return None  # a contact since removed
    reach = opt_out_reach(session, org_id=request.org_id, contact_id=request.contact_id)
    return name, reach, Channel(request.channel)
