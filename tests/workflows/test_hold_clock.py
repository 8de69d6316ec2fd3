"""The hold clock on the time-skipping server: a hold stops a wait's clock, the release waits
what was left, a second hold changes nothing, and a stop during a hold says how long it
lasted."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from workflows.hold_clock import HoldClock


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    reached: bool
    waited: timedelta
    held_when_stopped: timedelta
    releases: int
    #: What each ``hold`` and ``release`` answered, in order.
    holds: list[bool]
    released_after: list[timedelta | None]
    #: What ``moved`` heard: ``None`` for a pause, else how far from the start.
    moves: list[timedelta | None]


@workflow.defn(name="HoldClockProbe")
class HoldClockProbe:
    """Waits ``wait`` on a hold clock; signals hold, release and stop it."""

    def __init__(self) -> None:
        self.clock = HoldClock()
        self.stopped = False
        self.holds: list[bool] = []
        self.released_after: list[timedelta | None] = []
        self.moves: list[timedelta | None] = []

    @workflow.run
    async def run(self, wait: timedelta) -> ProbeResult:
        start = workflow.now()

        def moved(at: datetime | None) -> None:
            self.moves.append(None if at is None else at - start)

        reached = await self.clock.wait_until(
            start + wait, summary="probe", stopped=lambda: self.stopped, moved=moved
        )
        return ProbeResult(
            reached=reached,
            waited=workflow.now() - start,
            held_when_stopped=self.clock.held_when_stopped,
            releases=self.clock.releases,
            holds=self.holds,
            released_after=self.released_after,
            moves=self.moves,
        )

    @workflow.signal
    def hold(self) -> None:
        self.holds.append(self.clock.hold())

    @workflow.signal
    def release(self) -> None:
        self.released_after.append(self.clock.release())

    @workflow.signal
    def stop(self) -> None:
        self.stopped = True


Probe = WorkflowHandle[HoldClockProbe, ProbeResult]


@contextlib.asynccontextmanager
async def probe(env: WorkflowEnvironment, wait: timedelta) -> AsyncIterator[Probe]:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=task_queue, workflows=[HoldClockProbe]):
        handle = await env.client.start_workflow(
            HoldClockProbe.run, wait, id=f"probe-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        try:
            yield handle
        finally:  # a probe left waiting would hold the shared server's clock
            with contextlib.suppress(RPCError):
                await handle.terminate("test finished")


def near(actual: timedelta, expected: timedelta) -> bool:
    """Signals take real time; the skipped clock moves a little meanwhile."""
    return abs(actual - expected) < timedelta(minutes=1)


async def test_a_hold_stops_the_clock_and_the_release_waits_what_was_left(
    time_env: WorkflowEnvironment,
) -> None:
    async with probe(time_env, timedelta(hours=1)) as handle:
        await time_env.sleep(timedelta(minutes=20))
        await handle.signal(HoldClockProbe.hold)
        await time_env.sleep(timedelta(hours=3))  # nothing is due while held
        await handle.signal(HoldClockProbe.release)
        result = await handle.result()

    assert result.reached
    # 20 minutes, 3 hours held, then the 40 minutes left.
    assert near(result.waited, timedelta(hours=4))
    assert result.holds == [True] and result.releases == 1
    [held_for] = result.released_after
    assert held_for is not None and near(held_for, timedelta(hours=3))
    [paused, resumed] = result.moves
    assert paused is None and resumed is not None and near(resumed, timedelta(hours=4))


async def test_a_second_hold_changes_nothing_and_each_hold_counts_once(
    time_env: WorkflowEnvironment,
) -> None:
    async with probe(time_env, timedelta(hours=1)) as handle:
        await time_env.sleep(timedelta(minutes=10))
        await handle.signal(HoldClockProbe.hold)
        await time_env.sleep(timedelta(minutes=30))
        await handle.signal(HoldClockProbe.hold)  # already held: still from the first
        await time_env.sleep(timedelta(minutes=30))
        await handle.signal(HoldClockProbe.release)
        await time_env.sleep(timedelta(minutes=20))
        await handle.signal(HoldClockProbe.hold)
        await time_env.sleep(timedelta(hours=2))
        await handle.signal(HoldClockProbe.release)
        result = await handle.result()

    assert result.reached
    # 10 minutes, held an hour, 20 minutes, held two hours, then the 30 minutes left.
    assert near(result.waited, timedelta(hours=4))
    assert result.holds == [True, False, True]
    first, second = result.released_after
    assert first is not None and near(first, timedelta(hours=1))
    assert second is not None and near(second, timedelta(hours=2))
    assert result.moves[0::2] == [None, None]


async def test_a_release_without_a_hold_is_counted_and_moves_nothing(
    time_env: WorkflowEnvironment,
) -> None:
    async with probe(time_env, timedelta(hours=1)) as handle:
        await time_env.sleep(timedelta(minutes=10))
        await handle.signal(HoldClockProbe.release)
        result = await handle.result()

    assert result.reached and near(result.waited, timedelta(hours=1))
    assert result.released_after == [None] and result.releases == 1
    assert result.moves == []


async def test_stopped_during_a_hold_it_says_how_long_the_hold_had_lasted(
    time_env: WorkflowEnvironment,
) -> None:
    async with probe(time_env, timedelta(hours=1)) as handle:
        await time_env.sleep(timedelta(minutes=10))
        await handle.signal(HoldClockProbe.hold)
        await time_env.sleep(timedelta(minutes=30))
        await handle.signal(HoldClockProbe.stop)
        result = await handle.result()

    assert not result.reached
    assert near(result.waited, timedelta(minutes=40))
    assert near(result.held_when_stopped, timedelta(minutes=30))
    assert result.moves == [None]
