"""The sweeper: routes the webhook receipts that could not reach their workflow.

A provider's webhook is recorded with its database effects, then its workflows are told
(``api.routes.webhooks``). When Temporal can't be reached the request gets 503 and the receipt
stays unrouted; Stripe and Resend retry, Twilio and Vapi don't always. So every ``INTERVAL``
each API process routes the receipts unrouted for longer than ``GRACE`` exactly as their
webhook would have: the provider's ``routing`` reads the stored payload, its effects are
applied again (they stand already, so nothing more changes) for what to tell, the workflows
are told (they drop what they have seen), and the receipt is marked routed.

A receipt is claimed (``FOR NO KEY UPDATE SKIP LOCKED`` on PostgreSQL) by a transaction that
holds it until it is marked routed, so two API processes never route one twice; on SQLite one
process runs. While Temporal is away a sweep stops at the first receipt it can't route, and
says so once per outage. A receipt that fails for a reason of its own (a workflow refused it)
backs off, 15 s doubling up to an hour between tries, and the receipts after it go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import Database, TemporalConnection
from api.errors import ApiError
from api.routes.webhooks import ROUTERS
from models.services.webhooks import (
    claim_receipt,
    mark_routed,
    postpone_routing,
    reapply,
    receipts_to_route,
)
from models.tables import WebhookReceipt, utcnow
from models.values import WebhookProvider

log = logging.getLogger("keepwarm.sweeper")

#: How often each API process sweeps.
INTERVAL = timedelta(seconds=15)
#: How long a receipt stays unrouted before the sweeper routes it: longer than the request
#: that recorded it may still be routing it (providers wait 15-30 s for an answer).
GRACE = timedelta(seconds=60)
#: Receipts listed per query.
PAGE = 100


class _TemporalAway(Exception):
    """Temporal (or its workers) could not take a receipt: the sweep stops here."""


class Sweeper:
    """The API process's sweeper of unrouted webhook receipts."""

    def __init__(
        self,
        *,
        database: Database,
        temporal: TemporalConnection,
        interval: timedelta = INTERVAL,
        grace: timedelta = GRACE,
        org_ids: Collection[str] | None = None,
    ) -> None:
        """Sweep ``database``'s receipts every ``interval``, routing those unrouted for longer
        than ``grace`` through ``temporal``; only ``org_ids``' receipts if given (a test's
        sweeper leaves other tests' receipts alone)."""
        self._database = database
        self._temporal = temporal
        self._interval = interval
        self._grace = grace
        self._org_ids = frozenset(org_ids) if org_ids is not None else None
        self._task: asyncio.Task[None] | None = None
        #: What keeps receipts waiting ("temporal", "database"), said once until it passes.
        self._trouble: str | None = None
        #: Receipts that failed for a reason of their own, said once each.
        self._failed_ids: set[str] = set()

    async def start(self) -> None:
        """Sweep in the background, the first time one interval from now."""
        self._task = asyncio.create_task(self._run(), name="webhook-sweeper")

    async def stop(self) -> None:
        """Stop sweeping (a receipt being routed stays unrouted: it is claimed again later)."""
        if self._task is not None:
            self._task.cancel()
            # Waits for the task without swallowing a cancellation of stop() itself.
            await asyncio.wait({self._task})
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval.total_seconds())
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except SQLAlchemyError as error:  # the database is away: the next sweep tries again
                cause = type(getattr(error, "orig", None) or error).__name__
                self._troubled("database", f"the database is unavailable ({cause})")
            except Exception:
                log.exception("sweeping webhook receipts failed")

    async def sweep(self) -> list[str]:
        """Route every receipt unrouted for longer than the grace period, oldest first.

        Returns:
            The ids of the receipts this sweep routed.
        """
        routed: list[str] = []
        after: tuple[datetime, str] | None = None  # (received_at, id) of the last listed
        client: Client | None = None
        try:
            while True:
                keys = await self._database.run(
                    receipts_to_route,
                    unrouted_for=self._grace,
                    after=after,
                    limit=PAGE,
                    org_ids=self._org_ids,
                )
                for key in keys:
                    if client is None:
                        client = await self._connect()
                    receipt = await self._route(client, key[1])
                    if receipt is not None:
                        routed.append(receipt.id)
                if len(keys) < PAGE:
                    break
                after = keys[-1]
        except _TemporalAway as away:
            self._troubled("temporal", str(away))
            return routed
        if self._trouble is not None:
            log.info("webhook receipts are routed again (%d this sweep)", len(routed))
            self._trouble = None
        return routed

    async def _connect(self) -> Client:
        try:
            return await self._temporal.client()
        except ApiError as error:
            raise _TemporalAway(str(error)) from error

    async def _route(self, client: Client, receipt_id: str) -> WebhookReceipt | None:
        """Claim one receipt, apply it again, tell its workflows and mark it routed; ``None``
        if another process holds it, it is routed already, or it failed on its own."""
        claim = Session(self._database.engine, expire_on_commit=False)
        try:
            receipt = await run_in_threadpool(claim_receipt, claim, receipt_id=receipt_id)
            if receipt is None:
                return None
            try:
                await self._tell(client, receipt)
            except (RPCError, ApiError) as error:
                if (isinstance(error, RPCError) or error.status == 503) and not await _answers(
                    client
                ):
                    raise _TemporalAway(str(error)) from error
                # Temporal answers: this receipt's own trouble (a workflow that refused it,
                # no worker taking an update in time). The receipts after it go on.
                await self._failed(claim, receipt, error)
                return None
            except Exception as error:
                # Its own trouble (a database outage shows at the next claim): the receipts
                # after it go on.
                await self._failed(claim, receipt, error)
                return None
            await run_in_threadpool(_mark_routed, claim, receipt)
        finally:
            await run_in_threadpool(claim.close)
        self._failed_ids.discard(receipt.id)
        waited = (utcnow() - receipt.received_at).total_seconds()
        log.info(
            "routed %s webhook receipt %s (%s) after %.0f s",
            receipt.provider,
            receipt.id,
            receipt.event_type,
            waited,
        )
        return receipt

    async def _tell(self, client: Client, receipt: WebhookReceipt) -> None:
        """Route ``receipt`` as its webhook would have been."""
        router = ROUTERS[WebhookProvider(receipt.provider)]
        routing = router(receipt.payload, database=self._database)
        if routing is None:
            return  # an event keepwarm no longer acts on: nothing to tell
        effect = await self._database.run(reapply, org_id=receipt.org_id, apply=routing.apply)
        if effect is not None:
            await effect(client)

    def _troubled(self, kind: str, detail: str) -> None:
        """Say once, until it passes, why receipts wait."""
        if self._trouble != kind:
            log.warning("unrouted webhook receipts wait until %s is back: %s", kind, detail)
        self._trouble = kind

    async def _failed(self, claim: Session, receipt: WebhookReceipt, error: Exception) -> None:
        """``receipt`` failed on its own: it backs off (the claim ends), said once."""
        await run_in_threadpool(_postpone, claim, receipt)
        # The error's text may quote the payload (personal data): its type only.
        if receipt.id not in self._failed_ids:
            self._failed_ids.add(receipt.id)
            log.warning(
                "could not route %s webhook receipt %s: %s (tried again from %s)",
                receipt.provider,
                receipt.id,
                type(error).__name__,
                f"{receipt.next_route_at:%H:%M:%S}" if receipt.next_route_at else "the next sweep",
            )


def _postpone(session: Session, receipt: WebhookReceipt) -> None:
    """Count the claimed receipt's failure, back it off and end the claim."""
    postpone_routing(session, receipt=receipt)
    session.commit()


def _mark_routed(session: Session, receipt: WebhookReceipt) -> None:
    """Mark the claimed receipt routed and end the claim."""
    mark_routed(session, org_id=receipt.org_id, receipt_id=receipt.id)
    session.commit()


async def _answers(client: Client) -> bool:
    """Whether Temporal answers a health check now (a failed call was then the call's own)."""
    try:
        await asyncio.wait_for(client.service_client.check_health(), timeout=3)
    except Exception:
        return False
    return True
