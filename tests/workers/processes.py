"""Helpers for tests that run keepwarm as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody is listening on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keepwarm_env(**settings: str) -> dict[str, str]:
    """The current environment without KEEPWARM_ settings, plus ``settings`` (upper-cased)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KEEPWARM_")}
    env.update({f"KEEPWARM_{key.upper()}": value for key, value in settings.items()})
    return env


async def spawn(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``keepwarm <args>`` as a child process, output merged on stdout."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def read_until(process: asyncio.subprocess.Process, marker: str, *, within: float) -> str:
    """Output of ``process`` up to the line containing ``marker``."""
    assert process.stdout is not None
    seen: list[str] = []

    async def scan() -> str:
        assert process.stdout is not None
        while True:
            line = (await process.stdout.readline()).decode(errors="replace")
            if not line:
                raise AssertionError(
                    "process ended before printing " + repr(marker) + ":\n" + "".join(seen)
                )
            seen.append(line)
            if marker in line:
                return "".join(seen)

    try:
        return await asyncio.wait_for(scan(), timeout=within)
    except TimeoutError:
        raise AssertionError(f"no {marker!r} within {within}s:\n" + "".join(seen)) from None


def drain(process: asyncio.subprocess.Process) -> asyncio.Task[bytes]:
    """Keep reading a child's output so it never blocks on a full pipe."""
    assert process.stdout is not None
    return asyncio.create_task(process.stdout.read())


@asynccontextmanager
async def stopped_at_exit(process: asyncio.subprocess.Process) -> AsyncIterator[None]:
    """Make sure ``process`` (and, via its own Ctrl-C handling, its children) ends with the test."""
    try:
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=60)
            except TimeoutError:
                process.kill()
                await process.wait()
