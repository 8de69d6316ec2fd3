"""A page read from several queries sees one moment on PostgreSQL: a message committed
between the inbox list's queries shows either whole (with its time) or not at all.

The API's reads go through ``transaction(..., snapshot=True)`` (``Database.read``). Seen in CI
before: an inbox entry with the AI's first touch as its last message and no
``last_message_at``, because the thread was read before the message's commit and the last
message after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from models.database import transaction
from models.reads.inbox import list_threads
from tests.models.test_takeover import claim_touch, lead_of


@contextmanager
def commit_after_first_query(engine: Engine, org_id: str, lead_id: str) -> Iterator[list[str]]:
    """While active, the first query on ``threads`` is followed, before the next query runs,
    by another transaction committing the lead's first touch (its id is yielded then)."""
    touched: list[str] = []
    fired = False

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal fired
        if fired or "FROM threads" not in statement:
            return
        fired = True  # before the touch: its own queries pass through here too
        touched.append(claim_touch(engine, org_id, lead_id, now=datetime.now(UTC)).id)

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield touched
    finally:
        event.remove(engine, "after_cursor_execute", after)


@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshot", "read-committed"])
def test_an_inbox_page_never_mixes_before_and_after_a_message(
    pg_engine: Engine, snapshot: bool
) -> None:
    org_id, lead_id, thread_id = lead_of(pg_engine)
    with commit_after_first_query(pg_engine, org_id, lead_id) as touched:
        [item], _ = transaction(pg_engine, list_threads, snapshot=snapshot, org_id=org_id)
    assert touched, "the message was committed in the middle of the read"
    assert item.thread_id == thread_id
    if snapshot:
        # The read saw the moment before the message: no message, no time, consistently.
        assert item.last_message is None
        assert item.last_message_at is None
    else:
        # What the API did before: the message without its time (the check this test makes
        # of itself, so it fails if the race can no longer be provoked this way).
        assert item.last_message is not None
        assert item.last_message_at is None
    [after], _ = transaction(pg_engine, list_threads, snapshot=snapshot, org_id=org_id)
    assert after.last_message is not None
    assert after.last_message.direction == "outbound"
    assert after.last_message_at == after.last_message.created_at
