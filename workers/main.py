"""``python -m workers.main``: settings → telemetry → client → worker, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from models.database import make_engine
from models.settings import Settings, get_settings
from workers.client import connect
from workers.registry import build_adapters
from workers.telemetry import flush_spans, metrics_runtime, setup_telemetry
from workers.worker import build_worker

log = logging.getLogger("keepwarm.worker")


def keep_bytecode(settings: Settings) -> None:
    """Let the worker cache compiled bytecode even where ``PYTHONDONTWRITEBYTECODE`` is set.

    The workflow sandbox imports the workflow modules afresh for every workflow run; without
    bytecode each of those imports compiles the source again (a fifth of the worker's CPU at
    20 leads a second). The cache goes under the data directory, not into the source tree.
    """
    if not sys.dont_write_bytecode:
        return
    prefix = settings.data_dir.resolve() / "pycache"
    try:
        prefix.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log.warning("no bytecode cache (%s): workflow runs will recompile their modules", error)
        return
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False
    log.info("caching workflow bytecode in %s", prefix)


async def run_worker(settings: Settings) -> None:
    """Run one worker until SIGINT or SIGTERM, then shut down gracefully."""
    keep_bytecode(settings)
    adapters = build_adapters(settings)
    engine = make_engine(settings.effective_database_url)
    client = await connect(settings, runtime=metrics_runtime(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    threads = settings.worker_activity_threads
    with ThreadPoolExecutor(max_workers=threads) as executor:
        worker = build_worker(
            client,
            engine=engine,
            adapters=adapters,
            executor=executor,
            max_cached_workflows=settings.worker_cached_workflows,
            activity_threads=threads,
        )
        async with worker:
            log.info(
                "worker running on %s (%s), %d activity threads",
                worker.task_queue,
                client.namespace,
                threads,
            )
            await stop.wait()
            log.info("worker stopping")
    engine.dispose()
    flush_spans()


def main() -> None:
    """Entry point for ``keepwarm worker``."""
    settings = get_settings()
    setup_telemetry(settings, service="worker")
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
