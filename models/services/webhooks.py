"""Provider webhooks as use cases: a verified event recorded once per provider event id,
with its database effects in the same transaction, and marked routed once every workflow it
concerns has been told. An unrouted receipt is applied again when the provider retries, or
when the sweeper (``api.sweeper``) claims it after Temporal was away."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from sqlmodel import Session

from models.database import insert_once
from models.errors import NotFound
from models.store.orgs import get_org
from models.store.receipts import ReceiptKey, lock_unrouted_webhook, unrouted_webhooks
from models.tables import Org, WebhookReceipt, utcnow
from models.values import WebhookProvider, new_id

Effect = TypeVar("Effect")


@dataclass(frozen=True)
class WebhookRecorded(Generic[Effect]):
    """A receipt as recorded: whether it is new (not a provider retry), whether it is routed
    already, and what its effects asked to do after the commit (``None``: nothing)."""

    receipt_id: str
    new: bool
    routed: bool
    effect: Effect | None


def record_event(
    session: Session,
    *,
    org_id: str,
    provider: WebhookProvider,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    apply: Callable[[Session, Org], Effect | None],
) -> WebhookRecorded[Effect]:
    """Record the receipt and apply its database effects (``apply``) in this transaction.

    A receipt routed already changes nothing; one recorded but never routed (Temporal was
    away) is applied again, which ``apply`` must allow. With nothing left to do after the
    commit, it is marked routed at once. ``NotFound`` for an org that doesn't exist.
    """
    org = get_org(session, org_id=org_id)
    receipt, new = record_webhook(
        session,
        org_id=org_id,
        provider=provider,
        event_id=event_id,
        event_type=event_type,
        payload=payload,
    )
    if receipt.routed_at is not None:
        return WebhookRecorded(receipt.id, new, True, None)
    effect = apply(session, org)
    if effect is None:
        mark_routed(session, org_id=org_id, receipt_id=receipt.id)
    return WebhookRecorded(receipt.id, new, effect is None, effect)


def record_webhook(
    session: Session,
    *,
    org_id: str,
    provider: WebhookProvider,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
) -> tuple[WebhookReceipt, bool]:
    """Record a verified webhook; return it and whether it is new (not a provider retry)."""
    receipt = WebhookReceipt(
        id=new_id("wh"),
        org_id=org_id,
        provider=provider,
        event_id=event_id[:200],
        event_type=event_type[:64],
        payload=payload,
    )
    return insert_once(
        session,
        receipt,
        WebhookReceipt.org_id == org_id,
        WebhookReceipt.provider == provider,
        WebhookReceipt.event_id == event_id[:200],
    )


def mark_routed(session: Session, *, org_id: str, receipt_id: str) -> None:
    """Every workflow the webhook concerns has been told."""
    receipt = session.get(WebhookReceipt, receipt_id)
    if receipt is None or receipt.org_id != org_id:
        raise NotFound(receipt_id)
    if receipt.routed_at is None:
        receipt.routed_at = utcnow()
        session.add(receipt)


def receipts_to_route(
    session: Session,
    *,
    unrouted_for: timedelta,
    after: ReceiptKey | None,
    limit: int,
    org_ids: Collection[str] | None = None,
) -> list[ReceiptKey]:
    """Receipts unrouted for longer than ``unrouted_for`` (the request that recorded one has
    given up on it by then), oldest first, from after ``after``: at most ``limit`` keys, only
    ``org_ids``' if given. One backing off after failures of its own waits its turn."""
    now = utcnow()
    return unrouted_webhooks(
        session,
        received_before=now - unrouted_for,
        after=after,
        limit=limit,
        now=now,
        org_ids=org_ids,
    )


#: The first wait after a receipt failed to route on its own; it doubles with each failure.
FIRST_ROUTE_RETRY = timedelta(seconds=15)
#: The longest wait: a receipt that keeps failing is tried hourly (and the health checks
#: report it unrouted).
LAST_ROUTE_RETRY = timedelta(hours=1)


def postpone_routing(session: Session, *, receipt: WebhookReceipt) -> WebhookReceipt:
    """A claimed receipt failed to route for a reason of its own: count it and back off
    (15 s, 30 s, 1 min... at most an hour) before the next sweep tries it again."""
    receipt.route_attempts += 1
    wait = FIRST_ROUTE_RETRY * 2 ** min(receipt.route_attempts - 1, 20)
    receipt.next_route_at = utcnow() + min(wait, LAST_ROUTE_RETRY)
    session.add(receipt)
    return receipt


def claim_receipt(session: Session, *, receipt_id: str) -> WebhookReceipt | None:
    """The receipt, if it is still unrouted, held by this transaction until it ends: another
    process's claim of it gets ``None`` meanwhile, and after the commit sees it routed. End
    the transaction with ``mark_routed`` once its workflows have been told (or roll back to
    leave it for later)."""
    return lock_unrouted_webhook(session, receipt_id=receipt_id)


def reapply(
    session: Session, *, org_id: str, apply: Callable[[Session, Org], Effect | None]
) -> Effect | None:
    """Apply a recorded, unrouted receipt's database effects again, which ``apply`` must allow
    (they stand already: it changes nothing more), for what to tell after the commit.
    ``NotFound`` for an org that doesn't exist any more."""
    return apply(session, get_org(session, org_id=org_id))
