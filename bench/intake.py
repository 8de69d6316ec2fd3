"""Intake throughput: ``POST /v1/leads`` against a bare ``start_workflow`` on the same Temporal.

Run ``python bench/intake.py`` (``--help`` lists the options). By default it starts its own stack
with ``keepwarm up`` in a fresh data directory on free ports, and stops it at the end; with
``--attach URL --api-key KEY --temporal ADDRESS`` it uses a stack that is already running.

For each concurrency it measures two paths against the same Temporal server:

* **intake**: ``POST /v1/leads`` through the API (auth, validation, the receipt and open-lead
  lookup in the database, then ``start_workflow`` of the Lead workflow), each request a new
  person; keepwarm's worker works the Lead workflows;
* **bare**: ``client.start_workflow`` of a no-op workflow defined here, worked by a worker in
  a child process (``--worker inline`` runs it in this process instead).

The paths alternate order from round to round. It prints throughput and latency for both, the
intake/bare throughput ratio, and the first-touch latency: the time from a ``POST`` to the
simulated first message showing in ``GET /v1/messages``, timed on the idle stack before the
rounds (``--first-touch-at end`` times it after them, once their backlog has been worked).
``bench/README.md`` explains the choices and has figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio import workflow

# The sandbox re-imports this module to run BenchNoop; the rest is never used by the workflow.
with workflow.unsafe.imports_passed_through():
    import httpx
    from temporalio.client import Client, WorkflowHandle
    from temporalio.worker import Worker

    from models.settings import Settings
    from workers.client import connect

#: Seconds to wait for ``keepwarm up`` to print its banner and answer ``/healthz``.
START_TIMEOUT_S = 180.0
#: Seconds ``keepwarm up`` gets to stop after SIGINT (then SIGTERM, then SIGKILL).
STOP_GRACE_S = 60.0
#: How often the drain between phases polls for the newest leads' first touch.
DRAIN_POLL_S = 0.2
#: How many of the newest leads and no-op workflows a drain waits for.
NEWEST = 3
#: Seconds to wait, before a first-touch probe at the end, for every earlier lead to be worked.
FINAL_DRAIN_S = 900.0
#: Seconds to wait for one first touch before counting it as missed.
FIRST_TOUCH_TIMEOUT_S = 30.0
#: How often the first-touch probe polls ``GET /v1/messages``.
POLL_INTERVAL_S = 0.02
#: Message statuses that mean "not sent yet".
UNSENT_STATUSES = frozenset({"pending"})
#: The ratio intake/bare throughput keepwarm aims for at concurrency 50.
TARGET_RATIO = 0.8
TARGET_CONCURRENCY = 50
#: The first-touch p50 keepwarm aims for, in milliseconds.
TARGET_FIRST_TOUCH_MS = 1000.0


@workflow.defn(name="BenchNoop")
class BenchNoop:
    """A workflow that returns at once: the baseline for ``start_workflow``."""

    @workflow.run
    async def run(self) -> None:
        """Do nothing."""
        return None


# --- the stack ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where to send the load."""

    api_url: str
    api_key: str
    temporal_address: str
    namespace: str


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


class OwnStack:
    """``keepwarm up`` in a subprocess with a fresh data directory and free ports."""

    def __init__(
        self,
        *,
        database_url: str | None,
        namespace: str,
        log_level: str,
        keep_data: bool,
        worker_processes: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        """Configure, but don't start, a stack.

        Args:
            database_url: ``KEEPWARM_DATABASE_URL`` for the stack; ``None`` means SQLite in the
                data directory.
            namespace: The Temporal namespace the dev server creates and the stack uses.
            log_level: ``KEEPWARM_LOG_LEVEL`` for the stack (``WARNING`` keeps access logs off).
            keep_data: Leave the data directory in place after stopping.
            worker_processes: ``KEEPWARM_WORKER_PROCESSES`` for the stack.
            env: More ``KEEPWARM_`` settings for the stack.
        """
        self.database_url = database_url
        self.worker_processes = worker_processes
        self.env = env or {}
        self.namespace = namespace
        self.log_level = log_level
        self.keep_data = keep_data
        self.data_dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.failed = False

    def start(self) -> Target:
        """Start ``keepwarm up`` and wait until it is serving.

        Returns:
            The API and Temporal addresses of the new stack and its demo org's API key.

        Raises:
            RuntimeError: The stack exited or did not come up in time.
        """
        self.data_dir = Path(tempfile.mkdtemp(prefix="keepwarm-bench-"))
        api_port, dev_port, ui_port = free_ports(3)
        env = {key: value for key, value in os.environ.items() if not key.startswith("KEEPWARM_")}
        env |= {
            "KEEPWARM_DATA_DIR": str(self.data_dir),
            "KEEPWARM_API_HOST": "127.0.0.1",
            "KEEPWARM_API_PORT": str(api_port),
            "KEEPWARM_TEMPORAL_DEV_PORT": str(dev_port),
            "KEEPWARM_TEMPORAL_UI_PORT": str(ui_port),
            "KEEPWARM_TEMPORAL_NAMESPACE": self.namespace,
            "KEEPWARM_PROVIDER_MODE": "dry_run",
            "KEEPWARM_LOG_LEVEL": self.log_level,
            # The bench is one org sending far more than a business would; measure, don't limit.
            "KEEPWARM_RATE_LIMIT_PER_MINUTE": "0",
            "KEEPWARM_WORKER_PROCESSES": str(self.worker_processes),
        } | self.env
        if self.database_url:
            env["KEEPWARM_DATABASE_URL"] = self.database_url
        log_path = self.data_dir / "up.log"
        progress(f"starting keepwarm up in {self.data_dir} (API port {api_port})")
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "up"],
                cwd=Path(__file__).resolve().parents[1],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        api_url = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                self.failed = True
                raise RuntimeError(
                    f"keepwarm up exited with {self.process.returncode}; see {log_path}"
                )
            if "keepwarm is up" in log_path.read_text(errors="replace") and _healthy(api_url):
                break
            if time.monotonic() > deadline:
                self.failed = True
                raise RuntimeError(
                    f"keepwarm up did not come up in {START_TIMEOUT_S:.0f}s; see {log_path}"
                )
            time.sleep(0.3)
        api_key = (self.data_dir / "demo_api_key").read_text().strip()
        # The benches time the pipeline, not the clock: quiet hours would hold every text
        # back at night.
        response = httpx.patch(
            f"{api_url}/v1/orgs/me",
            json={"quiet_hours": {"sms": None, "whatsapp": None, "voice": None, "email": None}},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )
        response.raise_for_status()
        return Target(
            api_url=api_url,
            api_key=api_key,
            temporal_address=f"127.0.0.1:{dev_port}",
            namespace=self.namespace,
        )

    def stop(self) -> None:
        """Stop the stack (SIGINT, then SIGTERM, then SIGKILL) and remove its data directory."""
        process = self.process
        if process is not None and process.poll() is None:
            progress("stopping keepwarm up")
            for signum, grace in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGTERM, 15.0)):
                process.send_signal(signum)
                try:
                    process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                process.kill()
                process.wait()
        if self.data_dir is None:
            return
        if self.keep_data or self.failed:
            progress(f"data and logs kept in {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- measuring ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Phase:
    """One measured run of one path at one concurrency."""

    path: str
    concurrency: int
    requests: int
    elapsed_s: float
    latencies_ms: list[float]
    errors: Counter[str] = field(default_factory=Counter)
    drain_s: float | None = None

    @property
    def throughput(self) -> float:
        """Successful requests per second of wall time."""
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Outcome:
    """What one request produced: success, or the reason it failed."""

    __slots__ = ("error",)

    def __init__(self, error: str | None = None) -> None:
        """``error`` is ``None`` for a success."""
        self.error = error


async def drive(
    *, count: int, concurrency: int, call: Callable[[int], Awaitable[Outcome]]
) -> tuple[float, list[float], Counter[str]]:
    """Run ``call(0..count-1)`` on ``concurrency`` tasks and time each call.

    Args:
        count: How many calls to make.
        concurrency: How many calls are in flight at once.
        call: Makes request ``i``.

    Returns:
        The wall time in seconds, the successful calls' latencies in milliseconds and the
        failures counted by reason.
    """
    indexes = iter(range(count))
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def worker() -> None:
        for index in indexes:
            started = time.perf_counter()
            try:
                outcome = await call(index)
            except Exception as error:
                outcome = Outcome(type(error).__name__)
            if outcome.error is None:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors[outcome.error] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` by linear interpolation (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Bench:
    """Both paths against one target, sharing one Temporal client and one HTTP client."""

    def __init__(
        self, *, target: Target, client: Client, http: httpx.AsyncClient, task_queue: str
    ) -> None:
        """Measure against ``target``.

        Args:
            target: The stack under test.
            client: A Temporal client on the stack's server (keepwarm's data converter).
            http: An HTTP client whose pool allows the highest concurrency.
            task_queue: The task queue the no-op worker polls.
        """
        self.target = target
        self.client = client
        self.http = http
        self.task_queue = task_queue
        self.run_token = uuid.uuid4().hex[:10]
        self._serial = itertools.count()
        self._headers = {"Authorization": f"Bearer {target.api_key}"}
        #: The newest leads and no-op workflows started, which :meth:`drain` waits for.
        self._newest_leads: list[str] = []
        self._newest_starts: list[WorkflowHandle[Any, Any]] = []

    def _person(self) -> dict[str, Any]:
        n = next(self._serial)
        tag = f"bench-{self.run_token}-{n}"
        return {
            "event_id": tag,
            "name": f"Bench Person {n}",
            "email": f"{tag}@example.com",
            "source": "bench",
            "consent": {"email": True},
        }

    async def post_lead(self) -> tuple[Outcome, str | None]:
        """``POST /v1/leads`` for a new person; the outcome and the new lead's id."""
        response = await self.http.post(
            f"{self.target.api_url}/v1/leads", json=self._person(), headers=self._headers
        )
        if response.status_code != 202:
            return Outcome(f"HTTP {response.status_code}"), None
        body = response.json()
        if body.get("duplicate"):
            return Outcome("duplicate"), None
        lead_id: str = body["lead_id"]
        self._newest_leads = [*self._newest_leads[-(NEWEST - 1) :], lead_id]
        return Outcome(), lead_id

    async def start_noop(self) -> Outcome:
        """Start one no-op workflow with a unique id."""
        handle = await self.client.start_workflow(
            BenchNoop.run,
            id=f"bench-noop-{self.run_token}-{next(self._serial)}",
            task_queue=self.task_queue,
        )
        self._newest_starts = [*self._newest_starts[-(NEWEST - 1) :], handle]
        return Outcome()

    async def intake_call(self, _index: int) -> Outcome:
        """One intake request (for :func:`drive`)."""
        outcome, _ = await self.post_lead()
        return outcome

    async def bare_call(self, _index: int) -> Outcome:
        """One bare start (for :func:`drive`)."""
        return await self.start_noop()

    async def phase(
        self, path: str, *, concurrency: int, count: int, warmup: int, drain_timeout_s: float
    ) -> Phase:
        """Warm up, then measure ``count`` requests of ``path`` at ``concurrency``.

        Args:
            path: ``intake`` or ``bare``.
            concurrency: Requests in flight at once.
            count: Measured requests.
            warmup: Unmeasured requests first, at the same concurrency.
            drain_timeout_s: How long to wait, after the warm-up and after the measured
                requests, for the workflows they started to be worked (0: don't wait).

        Returns:
            The measurement, including how long its backlog took to be worked afterwards.
        """
        call = self.intake_call if path == "intake" else self.bare_call
        if warmup:
            await drive(count=warmup, concurrency=concurrency, call=call)
            await self.drain(drain_timeout_s)
        elapsed, latencies, errors = await drive(count=count, concurrency=concurrency, call=call)
        return Phase(
            path=path,
            concurrency=concurrency,
            requests=count,
            elapsed_s=elapsed,
            latencies_ms=latencies,
            errors=errors,
            drain_s=await self.drain(drain_timeout_s),
        )

    async def drain(self, timeout_s: float) -> float | None:
        """Wait until the newest workflows started have been worked; seconds waited.

        Keeps one phase's backlog (Lead workflows recording the lead and sending the first
        touch, or no-op workflows completing) from being worked during the next one. Task
        queues are roughly first in, first out, so the newest being done means the backlog is.

        Args:
            timeout_s: Give up after this long (0: don't wait at all).

        Returns:
            The seconds waited, or ``None`` if not waited or timed out.
        """
        if timeout_s <= 0:
            return None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                for lead_id in list(self._newest_leads):
                    await self.wait_for_first_touch(lead_id, interval_s=DRAIN_POLL_S)
                for handle in list(self._newest_starts):
                    await handle.result()
        except TimeoutError:
            progress(f"  backlog not worked within {timeout_s:.0f}s; carrying on")
            return None
        return time.perf_counter() - started

    async def first_message_status(self, lead_id: str) -> str | None:
        """The status of the lead's newest message, or ``None`` while it has none."""
        response = await self.http.get(
            f"{self.target.api_url}/v1/messages",
            params={"lead_id": lead_id, "limit": 1},
            headers=self._headers,
        )
        response.raise_for_status()
        items = response.json()["items"]
        return str(items[0]["status"]) if items else None

    async def wait_for_first_touch(self, lead_id: str, *, interval_s: float) -> None:
        """Poll ``GET /v1/messages`` every ``interval_s`` until the lead's first touch is sent."""
        while True:
            status = await self.first_message_status(lead_id)
            if status is not None and status not in UNSENT_STATUSES:
                return
            await asyncio.sleep(interval_s)

    async def first_touch(self, samples: int) -> tuple[list[float], int]:
        """Sequentially, time ``POST /v1/leads`` → the first touch sent (dry run: simulated).

        Args:
            samples: How many leads to time.

        Returns:
            The latencies in milliseconds and how many leads saw no first touch in time.
        """
        latencies: list[float] = []
        missed = 0
        for _ in range(samples):
            started = time.perf_counter()
            outcome, lead_id = await self.post_lead()
            if lead_id is None:
                progress(f"  first touch: intake failed ({outcome.error})")
                missed += 1
                continue
            try:
                async with asyncio.timeout(FIRST_TOUCH_TIMEOUT_S):
                    await self.wait_for_first_touch(lead_id, interval_s=POLL_INTERVAL_S)
            except TimeoutError:
                missed += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies, missed


# --- the no-op worker -----------------------------------------------------------------------


@contextlib.contextmanager
def noop_worker_process(target: Target, task_queue: str) -> Iterator[None]:
    """A worker for ``BenchNoop`` in a child process, like keepwarm's own worker.

    A worker in the load generator's process would share its event loop and GIL, slowing the
    bare starts it is meant to serve (and the sandbox re-imports this module for every run).
    """
    with worker_process(
        [sys.executable, str(Path(__file__).resolve()), "--serve-noop-worker"], target, task_queue
    ):
        yield


#: The processes whose CPU the benches report, by a part of their command line.
CPU_ROLES = {
    "worker": "workers.cli worker",
    "api": "workers.cli api",
    "temporal": "temporal server",
    "bare worker": "--serve-worker",
}


def _role_stats() -> Iterator[tuple[str, list[str]]]:
    """Each running process of a ``CPU_ROLES`` role: its role and its ``/proc/<pid>/stat``
    fields after the command name (Linux)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended meanwhile
        role = next((role for role, marker in CPU_ROLES.items() if marker in command), None)
        if role is not None:
            yield role, fields


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system, in seconds) used so far by this machine's processes of each
    ``CPU_ROLES`` role, from ``/proc`` (Linux): take two readings and subtract."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(CPU_ROLES, 0.0)
    for role, fields in _role_stats():
        used[role] += (int(fields[11]) + int(fields[12])) / tick
    return used


def memory_mb(role: str = "worker") -> float:
    """Resident memory (MB) of this machine's processes of ``role`` together, from ``/proc``."""
    page = os.sysconf("SC_PAGE_SIZE")
    pages = sum(int(fields[21]) for found, fields in _role_stats() if found == role)
    return round(pages * page / 2**20, 1)


def cpu_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """Milliseconds of CPU per item for each role that used any between two readings."""
    return {
        role: round(1000 * (after[role] - before[role]) / items, 1)
        for role in CPU_ROLES
        if after[role] > before[role]
    }


@contextlib.contextmanager
def worker_process(serve: Sequence[str], target: Target, task_queue: str) -> Iterator[None]:
    """A bare path's worker in a child process (``serve`` plus the address, namespace and
    task queue), like keepwarm's own worker.

    Args:
        serve: The command that serves the worker, before its three arguments.
        target: The stack whose Temporal the worker polls.
        task_queue: The task queue to poll.

    Yields:
        Once the worker is polling; it is stopped on exit.

    Raises:
        RuntimeError: The worker exited before it was ready.
    """
    process = subprocess.Popen(
        [*serve, target.temporal_address, target.namespace, task_queue],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the bench worker exited with {process.wait()}")
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_noop_worker(address: str, namespace: str, task_queue: str) -> None:
    """Run a ``BenchNoop`` worker until SIGINT or SIGTERM; print ``ready`` once polling."""
    serve_worker(address, namespace, task_queue, workflows=[BenchNoop])


def serve_worker(
    address: str,
    namespace: str,
    task_queue: str,
    *,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]] = (),
) -> None:
    """Run a worker for ``workflows`` and ``activities`` until SIGINT or SIGTERM; print
    ``ready`` once polling. The bare paths' workers, in their own processes.

    Args:
        address: Temporal ``host:port``.
        namespace: The Temporal namespace.
        task_queue: The task queue to poll.
        workflows: The workflows to run.
        activities: Their (synchronous) activities.
    """

    async def serve() -> None:
        client = await connect(Settings(temporal_namespace=namespace), address=address)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        with ThreadPoolExecutor(32) as executor:
            async with Worker(
                client,
                task_queue=task_queue,
                workflows=list(workflows),
                activities=list(activities),
                activity_executor=executor if activities else None,
            ):
                sys.stdout.write("ready\n")
                sys.stdout.flush()
                await stop.wait()

    asyncio.run(serve())
    # The SDK's native threads can still call into Python during interpreter finalization
    # ("PyGILState_Release ... finalizing"); the worker has shut down, so skip finalization.
    sys.stdout.flush()
    os._exit(0)


# --- reporting ------------------------------------------------------------------------------


def summarize(phases: list[Phase]) -> dict[str, Any]:
    """One path at one concurrency over all rounds: mean throughput, pooled percentiles."""
    latencies = [value for phase in phases for value in phase.latencies_ms]
    errors: Counter[str] = Counter()
    for phase in phases:
        errors.update(phase.errors)
    drains = [phase.drain_s for phase in phases if phase.drain_s is not None]
    return {
        "path": phases[0].path,
        "concurrency": phases[0].concurrency,
        "rounds": len(phases),
        "requests": sum(phase.requests for phase in phases),
        "ok": len(latencies),
        "errors": dict(errors),
        "throughput_rps": sum(phase.throughput for phase in phases) / len(phases),
        "throughput_rps_by_round": [round(phase.throughput, 1) for phase in phases],
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "drained_phases": len(drains),
        "max_drain_s": max(drains) if drains else None,
    }


def report(results: dict[str, Any]) -> str:
    """The human-readable table and verdicts for ``results``."""
    draining = results["drain_timeout_s"] > 0
    drain_head = f"{'drained':>9}{'drain s':>9}" if draining else ""
    drain_note = f"up to {results['drain_timeout_s']:g}s" if draining else "no"
    lines = [
        f"database: {results['database']}   rounds: {results['rounds']}   "
        f"cpus: {results['machine']['cpus']}   no-op worker: {results['noop_worker']}   "
        f"drain between phases: {drain_note}",
        "",
        f"{'path':<8}{'conc':>6}{'requests':>10}{'errors':>8}{'req/s':>10}"
        f"{'p50 ms':>10}{'p99 ms':>10}{drain_head}",
    ]
    for row in results["runs"]:
        line = (
            f"{row['path']:<8}{row['concurrency']:>6}{row['requests']:>10}"
            f"{sum(row['errors'].values()):>8}{row['throughput_rps']:>10.1f}"
            f"{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}"
        )
        if draining:
            drain = "-" if row["max_drain_s"] is None else f"{row['max_drain_s']:.1f}"
            line += f"{row['drained_phases']:>6}/{row['rounds']:<2}{drain:>9}"
        lines.append(line)
    lines.append("")
    for concurrency, ratio in results["ratio_intake_over_bare"].items():
        lines.append(f"intake/bare throughput at concurrency {concurrency}: {ratio:.2f}")
    target = results["target"]
    if target["ratio"] is None:
        lines.append(f"target ≥{TARGET_RATIO} at concurrency {TARGET_CONCURRENCY}: not measured")
    else:
        verdict = "met" if target["ratio_met"] else "NOT met"
        lines.append(
            f"target ≥{TARGET_RATIO} at concurrency {TARGET_CONCURRENCY}: {verdict} "
            f"({target['ratio']:.2f})"
        )
    touch = results["first_touch"]
    if touch is not None and touch["samples"]:
        verdict = "met" if touch["p50_ms"] <= TARGET_FIRST_TOUCH_MS else "NOT met"
        when = f"at the {touch['at']}"
        if touch["backlog_worked_in_s"] is not None:
            when += f", after the backlog was worked in {touch['backlog_worked_in_s']:.0f}s"
        elif not touch["after_backlog_worked"]:
            when += ", WITH a backlog"
        lines.append(
            f"first touch ({touch['samples']} sequential leads {when}; {touch['missed']} missed): "
            f"p50 {touch['p50_ms']:.0f} ms, p90 {touch['p90_ms']:.0f} ms, "
            f"max {touch['max_ms']:.0f} ms; target p50 ≤{TARGET_FIRST_TOUCH_MS:.0f} ms {verdict}"
        )
    return "\n".join(lines)


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the results)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Compare POST /v1/leads with a bare Temporal start_workflow."
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[10, 50], help="requests in flight"
    )
    parser.add_argument("--requests", type=int, default=500, help="measured requests per phase")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests per phase")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating path order")
    parser.add_argument(
        "--first-touch", type=int, default=50, help="sequential leads for first-touch latency"
    )
    parser.add_argument(
        "--first-touch-at",
        choices=("start", "end"),
        default="start",
        help="time first touches before the rounds, or after them once their backlog is worked",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=0.0,
        help="seconds to wait after each phase for its workflows to be worked (default 0: "
        "don't; the Lead backlog then runs under every later phase)",
    )
    parser.add_argument(
        "--json", action="store_true", help="results as JSON on stdout (the table goes to stderr)"
    )
    parser.add_argument(
        "--database-url", help="KEEPWARM_DATABASE_URL for the stack this starts (default SQLite)"
    )
    parser.add_argument("--namespace", default="default", help="Temporal namespace")
    parser.add_argument(
        "--stack-log-level", default="WARNING", help="KEEPWARM_LOG_LEVEL for the stack"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the stack's data dir")
    parser.add_argument(
        "--worker",
        choices=("process", "inline"),
        default="process",
        help="run the no-op workflow's worker in a child process or in this one",
    )
    parser.add_argument("--attach", metavar="URL", help="use the running API at URL")
    parser.add_argument("--api-key", help="org API key for --attach")
    parser.add_argument("--temporal", metavar="ADDRESS", help="Temporal host:port for --attach")
    parser.add_argument("--serve-noop-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attach and not (args.api_key and args.temporal):
        parser.error("--attach needs --api-key and --temporal")
    if args.attach and args.database_url:
        parser.error("--database-url only applies to the stack this starts, not --attach")
    if min(args.concurrency) < 1 or args.requests < 1 or args.rounds < 1:
        parser.error("--concurrency, --requests and --rounds must be positive")
    return args


@contextlib.contextmanager
def stack_for(args: argparse.Namespace) -> Iterator[Target]:
    """The target: the attached stack, or one started for the run and stopped after it."""
    if args.attach:
        yield Target(
            api_url=args.attach.rstrip("/"),
            api_key=args.api_key,
            temporal_address=args.temporal,
            namespace=args.namespace,
        )
        return
    stack = OwnStack(
        database_url=args.database_url,
        namespace=args.namespace,
        log_level=args.stack_log_level,
        keep_data=args.keep_data,
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


async def run(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    """Run every round and the first-touch probe against ``target``; the results."""
    client = await connect(
        Settings(temporal_namespace=target.namespace), address=target.temporal_address
    )
    task_queue = f"keepwarm-bench-{uuid.uuid4().hex[:8]}"
    most = max(args.concurrency)
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    phases: dict[tuple[str, int], list[Phase]] = {}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))
        )
        if args.worker == "inline":
            await stack.enter_async_context(
                Worker(client, task_queue=task_queue, workflows=[BenchNoop])
            )
        else:
            stack.enter_context(noop_worker_process(target, task_queue))
        bench = Bench(target=target, client=client, http=http, task_queue=task_queue)
        probe, _ = await bench.post_lead()
        if probe.error is not None:
            raise RuntimeError(f"POST /v1/leads failed before the run: {probe.error}")
        first_touch = None
        if args.first_touch and args.first_touch_at == "start":
            first_touch = await measure_first_touch(bench, args.first_touch, at="start")
        for round_index in range(args.rounds):
            order = ("intake", "bare") if round_index % 2 == 0 else ("bare", "intake")
            for concurrency in args.concurrency:
                for path in order:
                    phase = await bench.phase(
                        path,
                        concurrency=concurrency,
                        count=args.requests,
                        warmup=args.warmup,
                        drain_timeout_s=args.drain_timeout,
                    )
                    phases.setdefault((path, concurrency), []).append(phase)
                    failures = sum(phase.errors.values())
                    progress(
                        f"round {round_index + 1} {path:<6} c={concurrency:<3} "
                        f"{phase.throughput:7.1f} req/s  "
                        f"p50 {percentile(phase.latencies_ms, 0.5):6.1f} ms  "
                        f"p99 {percentile(phase.latencies_ms, 0.99):6.1f} ms  "
                        f"errors {failures}  drain {_seconds(phase.drain_s)}"
                    )
        if args.first_touch and args.first_touch_at == "end":
            first_touch = await measure_first_touch(bench, args.first_touch, at="end")
    runs = [summarize(group) for group in phases.values()]
    by_key = {(row["path"], row["concurrency"]): row for row in runs}
    ratios = {
        concurrency: by_key[("intake", concurrency)]["throughput_rps"]
        / by_key[("bare", concurrency)]["throughput_rps"]
        for concurrency in args.concurrency
    }
    target_ratio = ratios.get(TARGET_CONCURRENCY)
    return {
        "database": _database_kind(args),
        "rounds": args.rounds,
        "requests_per_phase": args.requests,
        "warmup_per_phase": args.warmup,
        "noop_worker": args.worker,
        "drain_timeout_s": args.drain_timeout,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "ratio_intake_over_bare": ratios,
        "target": {
            "concurrency": TARGET_CONCURRENCY,
            "ratio_min": TARGET_RATIO,
            "ratio": target_ratio,
            "ratio_met": None if target_ratio is None else target_ratio >= TARGET_RATIO,
        },
        "first_touch": first_touch,
    }


async def measure_first_touch(bench: Bench, samples: int, *, at: str) -> dict[str, Any]:
    """First-touch latency over ``samples`` sequential leads, on an idle stack.

    Args:
        bench: The bench to use.
        samples: How many leads to time.
        at: ``start`` (before the throughput rounds) or ``end`` (after them, once their
            backlog has been worked, which can take minutes).

    Returns:
        The latency percentiles and how the measurement went.
    """
    backlog_s = None
    if at == "end":
        progress("waiting for the backlog of leads to be worked")
        backlog_s = await bench.drain(FINAL_DRAIN_S)
    progress(f"first touch: {samples} sequential leads")
    touches, missed = await bench.first_touch(samples)
    return {
        "at": at,
        "backlog_worked_in_s": backlog_s,
        "after_backlog_worked": at == "start" or backlog_s is not None,
        "samples": len(touches),
        "missed": missed,
        "p50_ms": percentile(touches, 0.5),
        "p90_ms": percentile(touches, 0.9),
        "max_ms": max(touches, default=float("nan")),
    }


def _finite(value: Any) -> Any:
    """``value`` with NaN (a percentile of nothing) as ``None``, so the JSON is standard."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _database_kind(args: argparse.Namespace) -> str:
    if args.attach:
        return "attached stack"
    url: str | None = args.database_url
    if url:
        return url.split(":", 1)[0].split("+", 1)[0]
    return "sqlite"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, run the benchmark and print the results."""
    args = parse_args(argv)
    if args.serve_noop_worker:
        serve_noop_worker(*args.serve_noop_worker)
        return
    started = time.monotonic()
    with stack_for(args) as target:
        results = asyncio.run(run(args, target))
    results["wall_s"] = round(time.monotonic() - started, 1)
    table = report(results) + f"\n(total {results['wall_s']}s)"
    if args.json:
        progress(table)
        sys.stdout.write(json.dumps(_finite(results), indent=2) + "\n")
    else:
        sys.stdout.write(table + "\n")


if __name__ == "__main__":
    main()
