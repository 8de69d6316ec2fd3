"""Live pages: tail the ``ui_events`` outbox and fan each new row out to the org's open
event streams (Server-Sent Events).

One tailer per API process. On PostgreSQL it ``LISTEN``s (``models.outbox`` notifies at each
commit) and also polls every ``POLL_S``; on SQLite it polls. Rows can commit out of id order
under concurrency, so each read also looks back ``LOOKBACK`` and skips ids already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select
from starlette.concurrency import run_in_threadpool

from models.database import transaction
from models.outbox import UI_CHANNEL
from models.tables import UiEvent, utcnow

log = logging.getLogger(__name__)

#: How often the outbox is read when no notification arrives.
POLL_S = 1.0
#: How far back each read looks for rows that committed after a higher id was seen.
LOOKBACK = timedelta(seconds=15)
#: Rows older than this are deleted (a page away longer re-syncs instead of replaying).
KEEP_FOR = timedelta(days=1)
#: At most this many missed events are replayed to a reconnecting page; beyond, it re-syncs.
REPLAY_MAX = 500
#: Per stream: events waiting to be sent before the stream is told to re-sync instead.
QUEUE_MAX = 1000


@dataclass(frozen=True)
class LiveEvent:
    """One outbox row, as a stream sends it."""

    id: int
    kind: str
    subject_id: str


def _read(session: Session, *, after: int, since_seconds: float) -> list[UiEvent]:
    since = utcnow() - timedelta(seconds=since_seconds)
    return list(
        session.exec(
            select(UiEvent)
            .where(or_(col(UiEvent.id) > after, col(UiEvent.created_at) >= since))
            .order_by(col(UiEvent.id))
            .limit(5000)
        )
    )


def _newest(session: Session) -> int:
    return int(session.exec(select(func.max(UiEvent.id))).one() or 0)


def _prune(session: Session) -> None:
    session.execute(delete(UiEvent).where(col(UiEvent.created_at) < utcnow() - KEEP_FOR))


def missed(session: Session, *, org_id: str, after: int) -> list[UiEvent] | None:
    """The org's events after id ``after`` (for ``Last-Event-ID``), oldest first; ``None``
    when there are more than ``REPLAY_MAX`` (the page should re-sync instead)."""
    rows = list(
        session.exec(
            select(UiEvent)
            .where(UiEvent.org_id == org_id)
            .where(col(UiEvent.id) > after)
            .order_by(col(UiEvent.id))
            .limit(REPLAY_MAX + 1)
        )
    )
    return None if len(rows) > REPLAY_MAX else rows


class Subscription:
    """One open stream's queue of events; ``overflowed`` when it fell too far behind."""

    def __init__(self, org_id: str) -> None:
        """Events of ``org_id``."""
        self.org_id = org_id
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(QUEUE_MAX)
        self.overflowed = False

    def put(self, event: LiveEvent) -> None:
        """Queue ``event``; mark the subscription overflowed if it can't keep up."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True


class LiveHub:
    """The process's outbox tailer and its subscriptions."""

    def __init__(self, engine: Engine, *, poll_s: float = POLL_S) -> None:
        """Tail ``engine``'s outbox."""
        self._engine = engine
        self._poll_s = poll_s
        self._subscriptions: set[Subscription] = set()
        self._seen: dict[int, float] = {}
        #: The newest id already handed out; ``None`` until the first read (which skips the
        #: backlog: pages opened now render the present).
        self._after: int | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._pruned_at = 0.0

    async def start(self) -> None:
        """Begin tailing from the newest row (the database may be down: it keeps trying)."""
        self._task = asyncio.create_task(self._run(), name="ui-events-tailer")
        if self._engine.dialect.name == "postgresql":
            self._listener = asyncio.create_task(self._listen(), name="ui-events-listen")

    async def stop(self) -> None:
        """Stop tailing."""
        for task in (self._listener, self._task):
            if task is not None:
                task.cancel()
                # Waits for the task without swallowing a cancellation of stop() itself.
                await asyncio.wait({task})

    @contextlib.contextmanager
    def subscribe(self, org_id: str) -> Iterator[Subscription]:
        """A subscription to ``org_id``'s events while the ``with`` block runs."""
        subscription = Subscription(org_id)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def streams(self) -> int:
        """How many streams are open in this process."""
        return len(self._subscriptions)

    async def _listen(self) -> None:
        url = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {UI_CHANNEL}")
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the poll goes on; try listening again soon
                log.warning("ui_events LISTEN failed (%s); polling until it is back", error)
                await asyncio.sleep(5)

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns normally when the
            # task is cancelled in the moment the event is set, and this loop then ran on
            # (stop() waited for ever: a test run hung in the API's shutdown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a database blip: the next tick tries again
                log.warning("reading ui_events failed: %s", error)
                await asyncio.sleep(self._poll_s)

    async def _tick(self) -> None:
        if self._after is None:
            self._after = await run_in_threadpool(transaction, self._engine, _newest)
        rows = await run_in_threadpool(
            transaction,
            self._engine,
            _read,
            after=self._after,
            since_seconds=LOOKBACK.total_seconds(),
        )
        now = time.monotonic()
        for row in rows:
            assert row.id is not None
            if row.id in self._seen:
                continue
            self._seen[row.id] = now
            self._after = max(self._after or 0, row.id)
            event = LiveEvent(id=row.id, kind=row.kind, subject_id=row.subject_id)
            for subscription in list(self._subscriptions):
                if subscription.org_id == row.org_id:
                    subscription.put(event)
        horizon = now - 2 * LOOKBACK.total_seconds()
        self._seen = {key: at for key, at in self._seen.items() if at > horizon}
        if now - self._pruned_at > 600:
            self._pruned_at = now
            await run_in_threadpool(transaction, self._engine, _prune)
