"""Recorded workflow histories (Lead, sequences, calls, takeovers, replies) replay on the
current code: changes must stay compatible."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.converter import DATA_CONVERTER
from workflows.catalogue import WORKFLOWS

HISTORIES = {
    path.stem: path.read_text()
    for path in sorted((Path(__file__).parent / "histories").glob("*.json"))
}


def test_there_are_recorded_histories() -> None:
    # v1: regular record activities; v2: local ones; v3: replies, payments, the Call workflow;
    # v4: scores and nudge sequences; v5: steps due in local time, bookings, continue-as-new;
    # v6: the sequence starts when its first step is near; v7: the compliance gate holds
    # touches back on durable timers; v8: an opt-out everywhere ends the lead; v9: the
    # workflow pre-checks the gate; v10: a voice step's call-retry loop (voicemail, the cap);
    # v11: a takeover (the sequence paused, a human reply, the idle hold released), and an
    # escalation that climbs to the owner; v12: an Appointment (moved, confirmed, rated) and
    # a PaymentFollowup (a failed payment, then paid); v14: a first touch paced; v15: the
    # first touch's send records the lead contacted (no record_stage of its own).
    assert len(HISTORIES) >= 110


@pytest.mark.parametrize("name", HISTORIES)
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None, result.replay_failure
