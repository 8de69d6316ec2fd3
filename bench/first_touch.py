"""First-touch latency at a steady arrival rate, beside the bare-SDK ceiling of the same run.

Run ``python -m bench.first_touch`` from the repository root (``--help`` lists the options).
It starts its own stack with ``keepwarm up`` (dry-run providers, rate limit off) and, on the
same Temporal server:

* **bare**: ``start_workflow`` of a workflow defined here whose one activity returns the time
  it ran, paced at ``--rate`` starts per second; latency = that time minus the start call's.
  This is the ceiling: one workflow task and one activity round trip, nothing else.
* **keepwarm**: ``POST /v1/leads`` (phone with SMS consent) paced at the same rate; latency =
  the first-touch message row's ``created_at`` minus the lead's ``created_at`` (the intake
  receipt's time), read from the app database after the run.

It prints p50 and p99 for both and the keepwarm/bare ratios. ``bench/README.md`` has figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx
    from sqlalchemy import create_engine, text
    from temporalio.api.enums.v1 import EventType, TimeoutType
    from temporalio.client import Client

    from bench.intake import (
        OwnStack,
        Target,
        cpu_per_item,
        cpu_seconds,
        free_ports,
        memory_mb,
        percentile,
        progress,
        serve_worker,
        worker_process,
    )
    from models.settings import Settings
    from workers.client import connect

#: The first-touch p50 keepwarm aims for, in milliseconds.
TARGET_P50_MS = 1000.0
#: Seconds to wait, after the last lead, for every first touch to be written.
SETTLE_S = 120.0


@activity.defn(name="bench_touch")
def bench_touch() -> float:
    """The wall-clock time the activity ran (the bare path's "message row")."""
    return time.time()


@workflow.defn(name="BenchTouch")
class BenchTouch:
    """Runs one activity, like a first touch with nothing else around it."""

    @workflow.run
    async def run(self) -> float:
        """The time the activity ran."""
        result: float = await workflow.execute_activity(
            bench_touch, start_to_close_timeout=timedelta(seconds=30)
        )
        return result


async def paced(rate: float, count: int, send: Any) -> list[Any]:
    """Call ``send(i)`` ``count`` times at ``rate`` per second; gather the results."""
    tasks = []
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    return list(await asyncio.gather(*tasks))


async def bare(client: Client, task_queue: str, rate: float, count: int) -> list[float]:
    """Latencies (ms) from ``start_workflow`` to the activity running."""

    async def one(_: int) -> float:
        sent = time.time()
        handle = await client.start_workflow(
            BenchTouch.run, id=f"bench-touch-{uuid.uuid4().hex}", task_queue=task_queue
        )
        ran: float = await handle.result()
        return (ran - sent) * 1000

    return await paced(rate, count, one)


async def keepwarm(
    target: Target, database_url: str, rate: float, count: int
) -> tuple[list[float], int]:
    """Latencies (ms) from intake to the first-touch row, and how many failed or went missing."""
    async with httpx.AsyncClient(
        base_url=target.api_url,
        headers={"Authorization": f"Bearer {target.api_key}"},
        timeout=30,
        # uvicorn closes a connection idle for 5 s: expire ours sooner, so a post never goes
        # out on a connection the server is closing at that moment.
        limits=httpx.Limits(max_connections=100, keepalive_expiry=2.0),
    ) as api:
        base = uuid.uuid4().int % 10**5  # a block of valid UK mobile numbers

        async def one(i: int) -> str | None:
            try:
                response = await api.post(
                    "/v1/leads",
                    json={
                        "name": "Bench Lead",
                        "phone": f"+4479111{(base + i) % 10**5:05d}",
                        "consent": {"sms": True},
                        "source": "bench",
                    },
                )
            except httpx.TransportError as error:  # counted as missed
                progress(f"  intake failed: {error!r}")
                return None
            if response.status_code != 202:
                progress(f"  intake answered {response.status_code}: {response.text[:200]}")
                return None
            lead_id: str = response.json()["lead_id"]
            return lead_id

        lead_ids = [lead for lead in await paced(rate, count, one) if lead]
    query = (
        "SELECT l.created_at, m.created_at FROM leads l JOIN messages m ON m.lead_id = l.id "
        "WHERE m.idempotency_key LIKE '%/touch-1' AND l.source = 'bench'"
    )
    deadline = time.monotonic() + SETTLE_S
    found: list[Any] = []
    while time.monotonic() < deadline:
        found = rows(database_url, query)
        if len(found) >= len(lead_ids):
            break
        await asyncio.sleep(0.5)
    # In arrival order, so a long run can be cut into windows (``--windows``).
    ordered = sorted((epoch_ms(lead_at), epoch_ms(message_at)) for lead_at, message_at in found)
    latencies = [message_at - lead_at for lead_at, message_at in ordered]
    return latencies, count - len(latencies)


def rows(database_url: str, query: str) -> list[Any]:
    """The rows ``query`` returns from the app database."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = list(connection.execute(text(query)))
    engine.dispose()
    return found


def workflow_ids(database_url: str) -> list[str]:
    """The bench leads' Lead workflow ids."""
    return [
        str(row[0])
        for row in rows(database_url, "SELECT workflow_id FROM leads WHERE source = 'bench'")
    ]


async def workflow_tasks(client: Client, ids: Sequence[str]) -> dict[str, int]:
    """Over the leads' histories: workflow tasks that timed out (by kind: started but not
    completed in time, a task stretched by the work inside it; or not picked up in time from
    the worker's own queue, a worker too busy to take it), and those that took over 5 s from
    start to completion."""
    counts = {"workflow_task_timeouts": 0, "of_which_not_picked_up": 0, "workflow_tasks_over_5s": 0}
    gate = asyncio.Semaphore(16)

    async def one(workflow_id: str) -> None:
        started: datetime | None = None
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                counts["workflow_task_timeouts"] += 1
                kind = event.workflow_task_timed_out_event_attributes.timeout_type
                if kind == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START:
                    counts["of_which_not_picked_up"] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                started = event.event_time.ToDatetime()
            elif (
                event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                and started is not None
                and event.event_time.ToDatetime() - started > timedelta(seconds=5)
            ):
                counts["workflow_tasks_over_5s"] += 1

    await asyncio.gather(*(one(workflow_id) for workflow_id in ids))
    return counts


def sticky_cache(metrics_url: str) -> dict[str, float]:
    """The worker's workflow cache counters from its Prometheus metrics (hits: a task for a
    run held in memory; misses: a run replayed from its history first)."""
    counts: dict[str, float] = {}
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        for name in ("sticky_cache_hit", "sticky_cache_miss"):
            if line.startswith(f"temporal_{name}") and not line.startswith("#"):
                counts[name] = counts.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def stack_env(cached: int | None, settings: Sequence[str] = ()) -> tuple[dict[str, str], str]:
    """Settings for a bench stack whose first worker serves its SDK metrics, and their URL
    (worker N serves port + N - 1); ``cached`` sets the worker's workflow cache, and each of
    ``settings`` (``KEEPWARM_NAME=value``, ``--setting``) one more setting."""
    (port,) = free_ports(1)
    env = {"KEEPWARM_METRICS_PORT": str(port)}
    if cached is not None:
        env["KEEPWARM_WORKER_CACHED_WORKFLOWS"] = str(cached)
    for setting in settings:
        name, equals, value = setting.partition("=")
        if not name.startswith("KEEPWARM_") or not equals:
            raise SystemExit(f"--setting {setting!r}: give KEEPWARM_NAME=value")
        env[name] = value
    return env, f"http://127.0.0.1:{port}/metrics"


def add_setting_option(parser: argparse.ArgumentParser) -> None:
    """``--setting KEEPWARM_NAME=value`` (repeatable): a setting for the bench's stack (the
    stack does not inherit the shell's ``KEEPWARM_*`` variables)."""
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEEPWARM_NAME=value",
        help="a setting for the stack (repeatable)",
    )


def epoch_ms(value: Any) -> float:
    """A timestamp from either database as epoch milliseconds (SQLite gives strings)."""
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return float(moment.timestamp() * 1000)


def touch_worker(target: Target, task_queue: str) -> AbstractContextManager[None]:
    """The bare path's worker, in its own process like keepwarm's."""
    return worker_process(
        [sys.executable, "-m", "bench.first_touch", "--serve-worker"], target, task_queue
    )


def serve_touch_worker(address: str, namespace: str, task_queue: str) -> None:
    """Serve ``BenchTouch`` until SIGTERM; print ``ready`` once polling."""
    serve_worker(address, namespace, task_queue, workflows=[BenchTouch], activities=[bench_touch])


def stats(values: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    return {
        "p50_ms": round(percentile(values, 0.5), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
    }


async def run(
    args: argparse.Namespace, target: Target, database_url: str, metrics_url: str
) -> dict[str, Any]:
    """Both paths at the same rate, bare first; the figures."""
    client = await connect(
        Settings(temporal_namespace=target.namespace), address=target.temporal_address
    )
    queue = f"bench-touch-{uuid.uuid4().hex[:6]}"
    with touch_worker(target, queue):
        await bare(client, queue, args.rate, 5)  # warm up
        bare_count = args.bare_leads or args.leads
        progress(f"bare: {bare_count} workflows at {args.rate}/s")
        before = cpu_seconds()
        ceiling = await bare(client, queue, args.rate, bare_count)
        bare_cpu = cpu_per_item(before, cpu_seconds(), bare_count)
    progress(f"keepwarm: {args.leads} leads at {args.rate}/s")
    before, cache_before = cpu_seconds(), sticky_cache(metrics_url)
    touches, missed = await keepwarm(target, database_url, args.rate, args.leads)
    keepwarm_cpu = cpu_per_item(before, cpu_seconds(), args.leads)
    cache_after, worker_mb = sticky_cache(metrics_url), memory_mb()
    progress("reading the leads' workflow histories")
    tasks = await workflow_tasks(client, workflow_ids(database_url))
    results = {
        "rate_per_s": args.rate,
        "workers": args.workers,
        "leads": args.leads,
        "bare": stats(ceiling) | {"cpu_ms": bare_cpu},
        "keepwarm": stats(touches) | {"missed": missed, "cpu_ms": keepwarm_cpu} | tasks,
        "cache": {name: cache_after[name] - cache_before.get(name, 0.0) for name in cache_after},
        "worker_mb": worker_mb,
    }
    size = max(1, len(touches) // args.windows)
    results["windows"] = [stats(touches[i : i + size]) for i in range(0, len(touches), size)][
        : args.windows
    ]
    results["ratio_p50"] = round(results["keepwarm"]["p50_ms"] / results["bare"]["p50_ms"], 2)
    results["ratio_p99"] = round(results["keepwarm"]["p99_ms"] / results["bare"]["p99_ms"], 2)
    return results


def report(results: dict[str, Any]) -> str:
    """The figures as a small table."""
    bare, kw = results["bare"], results["keepwarm"]
    verdict = "met" if kw["p50_ms"] <= TARGET_P50_MS else "MISSED"
    return "\n".join(
        [
            f"first touch at {results['rate_per_s']}/s, {results['leads']} leads each path, "
            f"{results['workers']} keepwarm worker process(es)",
            f"  bare SDK   p50 {bare['p50_ms']:8.1f} ms   p99 {bare['p99_ms']:8.1f} ms",
            f"  keepwarm   p50 {kw['p50_ms']:8.1f} ms   p99 {kw['p99_ms']:8.1f} ms"
            f"   ({kw['missed']} missed)",
            f"  keepwarm/bare: p50 x{results['ratio_p50']}, p99 x{results['ratio_p99']}",
            "  CPU per workflow (bare) / per lead (keepwarm), ms: "
            + "; ".join(
                f"{path} path: {_roles(results[path]['cpu_ms'])}" for path in ("bare", "keepwarm")
            ),
            f"  keepwarm's Lead workflows: {kw['workflow_task_timeouts']} workflow task "
            f"timeouts ({kw['of_which_not_picked_up']} not picked up in time), "
            f"{kw['workflow_tasks_over_5s']} tasks over 5 s; worker cache "
            f"{results['cache'].get('sticky_cache_hit', 0):.0f} hits, "
            f"{results['cache'].get('sticky_cache_miss', 0):.0f} misses",
            f"  keepwarm worker memory with every lead live: {results['worker_mb']:.0f} MB",
            f"  target p50 <= {TARGET_P50_MS:.0f} ms: {verdict}",
        ]
        + (
            [
                f"  window {n}/{len(windows)}: p50 {w['p50_ms']:8.1f} ms  p99 {w['p99_ms']:8.1f} ms"
                for n, w in enumerate(windows, 1)
            ]
            if len(windows := results["windows"]) > 1
            else []
        )
    )


def _roles(cpu_ms: dict[str, float]) -> str:
    return ", ".join(f"{role} {ms}" for role, ms in cpu_ms.items())


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, start a stack, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=20.0, help="arrivals per second")
    parser.add_argument("--leads", type=int, default=300, help="leads (and bare starts)")
    parser.add_argument(
        "--bare-leads", type=int, default=None, help="bare starts (default: as many as leads)"
    )
    parser.add_argument("--database-url", default=None, help="app database (default SQLite)")
    parser.add_argument(
        "--windows", type=int, default=1, help="also report p50/p99 of this many arrival windows"
    )
    parser.add_argument("--workers", type=int, default=1, help="keepwarm worker processes")
    parser.add_argument(
        "--cached", type=int, default=None, help="KEEPWARM_WORKER_CACHED_WORKFLOWS for the stack"
    )
    add_setting_option(parser)
    parser.add_argument("--serve-worker", nargs=3, metavar=("ADDRESS", "NAMESPACE", "QUEUE"))
    args = parser.parse_args(argv)
    if args.serve_worker:
        serve_touch_worker(*args.serve_worker)
        return
    if args.rate <= 0 or args.leads < 1:
        parser.error("--rate and --leads must be positive")
    env, metrics_url = stack_env(args.cached, args.setting)
    stack = OwnStack(
        database_url=args.database_url,
        namespace="keepwarm-bench",
        log_level="WARNING",
        keep_data=False,
        worker_processes=args.workers,
        env=env,
    )
    try:
        target = stack.start()
        assert stack.data_dir is not None
        url = args.database_url or f"sqlite:///{stack.data_dir / 'keepwarm.db'}"
        results = asyncio.run(run(args, target, url, metrics_url))
    finally:
        stack.stop()
    sys.stdout.write(report(results) + "\n")


if __name__ == "__main__":
    main()
