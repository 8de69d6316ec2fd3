"""``python -m workers.main``: settings → telemetry → client → worker, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from models.database import make_engine
from models.settings import Settings, get_settings
from workers.client import connect
from workers.registry import build_adapters
from workers.telemetry import setup_telemetry
from workers.worker import ACTIVITY_THREADS, build_worker

log = logging.getLogger("keepwarm.worker")


async def run_worker(settings: Settings) -> None:
    """Run one worker until SIGINT or SIGTERM, then shut down gracefully."""
    adapters = build_adapters(settings)
    engine = make_engine(settings.effective_database_url)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(client, engine=engine, adapters=adapters, executor=executor)
        async with worker:
            log.info("worker running on %s (%s)", worker.task_queue, client.namespace)
            await stop.wait()
            log.info("worker stopping")
    engine.dispose()


def main() -> None:
    """Entry point for ``keepwarm worker``."""
    settings = get_settings()
    setup_telemetry(settings, service="worker")
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
