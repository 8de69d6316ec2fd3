"""``/app/events``: the live pages' Server-Sent Events, and the inbox's presence heartbeat.

Each event names what changed (``thread``, ``lead``, ``escalation``, ``contact``) and is sent
twice: under its kind (``sse:thread`` re-fetches lists) and under ``<kind>-<id>`` (a pane
re-fetches only its own subject). ``Last-Event-ID`` replays what a reconnecting page missed,
or sends ``resync`` when that is too much. The stream ends when its session does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from api.deps import DatabaseDep
from api.live import LiveEvent, LiveHub, missed
from api.sessions import COOKIE, OperatorSessionDep
from models.services import operators as operator_service
from models.services.sign_in import current
from models.tables import utcnow

router = APIRouter(prefix="/app", include_in_schema=False)

#: How often an open stream checks that its session is still live.
SESSION_CHECK_S = 30.0


def _messages(event: LiveEvent) -> list[dict[str, Any]]:
    return [
        {"id": str(event.id), "event": event.kind, "data": event.subject_id},
        {
            "id": str(event.id),
            "event": f"{event.kind}-{event.subject_id}",
            "data": event.subject_id,
        },
    ]


@router.get("/events")
async def events(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The org's live events for this signed-in page."""
    hub: LiveHub = request.app.state.live
    last = request.headers.get("last-event-id", "")
    token = request.cookies.get(COOKIE, "")
    org_id = me.org.id

    async def stream() -> AsyncIterator[dict[str, Any]]:
        with hub.subscribe(org_id) as subscription:
            if last.isdigit():
                rows = await database.run(missed, org_id=org_id, after=int(last))
                if rows is None:
                    yield {"event": "resync", "data": "missed"}
                else:
                    for row in rows:
                        assert row.id is not None
                        for message in _messages(LiveEvent(row.id, row.kind, row.subject_id)):
                            yield message
            checked = time.monotonic()
            while True:
                # asyncio.timeout, not wait_for, which on Python 3.11 can swallow the
                # cancellation of a closed stream (see LiveHub._run).
                event: LiveEvent | None = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SESSION_CHECK_S):
                        event = await subscription.queue.get()
                if time.monotonic() - checked >= SESSION_CHECK_S:
                    checked = time.monotonic()
                    if (
                        await database.run(current, token=token, now=utcnow(), activity=False)
                        is None
                    ):
                        yield {"event": "signed-out", "data": ""}
                        return
                if event is None:
                    continue
                if subscription.overflowed:
                    subscription.overflowed = False
                    while not subscription.queue.empty():
                        subscription.queue.get_nowait()
                    yield {"event": "resync", "data": "overflow"}
                    continue
                for message in _messages(event):
                    yield message

    return EventSourceResponse(
        stream(),
        ping=15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/heartbeat")
async def heartbeat(me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """This operator's page is open: they count as online (escalation handoffs reach them)."""
    await database.run(operator_service.heartbeat, org_id=me.org.id, operator_id=me.operator.id)
    return Response(status_code=204)
