"""The analytics at scale: ``GET /v1/pipeline``, ``GET /v1/revenue`` and ``GET /v1/agents``
for an org with 100,000 leads, 1,000,000 messages, 100,000 calls and 20,000 payments over 180
days on PostgreSQL, against a small org in the same database.

Run ``python bench/analytics.py`` (``--help`` lists the options). It creates its own database
(``keepwarm_bench_analytics_<random>``, dropped at the end unless ``--keep``; ``--database
NAME`` reuses one kept earlier), migrates it to head, creates the orgs through the services and
generates everything else inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``,
seeded with ``setseed``), so loading takes about a minute:

* a **big** org: ``--leads`` leads over the last ``--days`` days, 85 % of contacts with one
  lead and the rest with two (a first and a later one, from sources drawn independently), in
  eight sources, every stage, 95 % touched after a wait of 1 s to 20 min (log-uniform) by SMS,
  email or WhatsApp; a thread per contact; ``--messages`` messages on the contacts' threads
  (each touched lead's first touch, the rest spread over the leads after their intake: 45 %
  from the customer in a few phrasings, the rest from the AI, a person or the system), each
  thread's last message, last inbound and last human message as the inbox keeps them, one
  in forty held by a person, an escalation on a tenth of the threads (a fifth still open);
  ``--calls`` calls; ``--payments`` Stripe payments on converted leads (paid invoices and
  checkouts, failed invoices, refunds; 2 % in euros) and ``--subscriptions`` subscriptions
  (monthly and yearly, a quarter of them ended);
* a **baseline** org: a hundredth of each.

Then it serves the real app (``api.main.create_app``) with uvicorn in a child process
(Temporal pointed where nothing listens: these GET routes never use it) and times, after a
warm-up, the pipeline and revenue reports for the last 30 days, for the last 30 days with
``compare=previous``, and for all time, and the agents for the last 30 days and for all time,
with the org's API key. It prints p50/p95/p99 for the big org, p95 for the
baseline org, their ratio, the API process's CPU per request and whether the big org's p95 is
under the target (100 ms). ``bench/README.md`` explains the choices and has figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.schemas import OrgSettings
from models.services.orgs import create_org
from models.store import agent_days, lead_groups

#: The p95 each measured report must stay under for the big org.
TARGET_P95_MS = 100.0
#: The administrative connection that creates and drops the bench database.
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Seconds to wait for the API child process to answer ``/healthz``.
START_TIMEOUT_S = 60.0
#: Where nothing listens: the GET routes measured here must not need Temporal.
NO_TEMPORAL = "127.0.0.1:1"
BIG, BASELINE = "big", "baseline"
#: The baseline org is this fraction of the big one.
BASELINE_SHARE = 100


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the results)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --- the database ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OrgSpec:
    """One org to load."""

    label: str
    name: str
    leads: int
    messages: int
    calls: int
    payments: int
    subscriptions: int
    days: int


@dataclass(kw_only=True)
class Dataset:
    """One loaded org: its label, id and API key."""

    label: str
    org_id: str
    api_key: str
    counts: dict[str, int] = field(default_factory=dict)


def plain_url(sa_url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as psycopg takes it."""
    return sa_url.replace("postgresql+psycopg://", "postgresql://", 1)


def database_url(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the admin URL's server."""
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def create_database(admin_url: str) -> str:
    """A new, empty database; its name."""
    name = f"keepwarm_bench_analytics_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` (closing its connections)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


#: Each statement generates one table's rows for one org. Parameters: ``org`` (its id),
#: ``tag`` (what its generated ids hash), ``now``, ``days`` and the counts. Ids are
#: ``<prefix>_<md5>`` like keepwarm's own (``new_id``): random order in every index. Rows
#: go in in time order, as they would have arrived (a table's recent rows sit together).
LOAD_STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "contacts",
        """
        INSERT INTO contacts (id, org_id, name, created_at)
        SELECT 'ct_' || md5(%(tag)s || '-ct-' || g), %(org)s, 'Contact ' || g,
               %(now)s - make_interval(days => %(days)s)
        FROM generate_series(1, %(contacts)s) g
        """,
    ),
    (
        "leads",
        """
        INSERT INTO leads (id, org_id, contact_id, workflow_id, stage, score, source, value,
                           fields, created_at, updated_at, first_contact_at,
                           first_contact_channel)
        SELECT 'lead_' || md5(%(tag)s || '-lead-' || g), %(org)s,
               'ct_' || md5(%(tag)s || '-ct-' || CASE WHEN g <= %(contacts)s THEN g
                                                   ELSE g - %(contacts)s END),
               'lead-bench-' || %(tag)s || '-' || g, stage, (r_score * 100)::int, source,
               CASE WHEN stage IN ('converted', 'quoted') OR r_value < 0.3
                    THEN round((50 + r_value * 1950)::numeric, 2) END,
               '{}', created_at, created_at,
               CASE WHEN stage <> 'new' AND r_touch < 0.97
                    THEN created_at + make_interval(secs => exp(r_wait * ln(1200))) END,
               CASE WHEN stage = 'new' OR r_touch >= 0.97 THEN NULL
                    WHEN r_channel < 0.6 THEN 'sms' WHEN r_channel < 0.9 THEN 'email'
                    ELSE 'whatsapp' END
        FROM (
            SELECT g, created_at, r_score, r_value, r_touch, r_wait, r_channel,
                   CASE WHEN r_source < 0.35 THEN 'google' WHEN r_source < 0.55 THEN 'facebook'
                        WHEN r_source < 0.70 THEN 'website' WHEN r_source < 0.82 THEN 'referral'
                        WHEN r_source < 0.90 THEN 'yelp' WHEN r_source < 0.95 THEN 'cart'
                        WHEN r_source < 0.98 THEN 'instagram' END AS source,
                   CASE WHEN r_stage < 0.08 THEN 'new' WHEN r_stage < 0.33 THEN 'contacted'
                        WHEN r_stage < 0.48 THEN 'engaged' WHEN r_stage < 0.55 THEN 'quoted'
                        WHEN r_stage < 0.67 THEN 'converted' WHEN r_stage < 0.85 THEN 'ghosting'
                        WHEN r_stage < 0.97 THEN 'lost' ELSE 'opted_out' END AS stage
            FROM (
                SELECT g, %(now)s - make_interval(secs => random() * %(days)s * 86400)
                           AS created_at,
                       random() AS r_source, random() AS r_stage, random() AS r_score,
                       random() AS r_value, random() AS r_touch, random() AS r_wait,
                       random() AS r_channel
                FROM generate_series(1, %(leads)s) g
            ) drawn
        ) leads
        ORDER BY created_at
        """,
    ),
    (
        "threads",
        """
        INSERT INTO threads (id, org_id, contact_id, created_at, status, handled_by, priority)
        SELECT 'th_' || md5(contact_id), org_id, contact_id, min(created_at), 'resolved', 'ai',
               'low'
        FROM leads WHERE org_id = %(org)s GROUP BY org_id, contact_id ORDER BY min(created_at)
        """,
    ),
    (
        "first touches",
        """
        INSERT INTO messages (id, org_id, lead_id, thread_id, channel, direction, sender, body,
                              status, idempotency_key, mode, created_at, sent_at, status_at)
        SELECT 'msg_' || md5(l.id || '-first'), l.org_id, l.id, 'th_' || md5(l.contact_id),
               l.first_contact_channel,
               'outbound', 'ai', 'Hi! Thanks for getting in touch, when suits you?',
               'delivered', l.workflow_id || '/first-touch', 'dry_run',
               l.first_contact_at, l.first_contact_at, l.first_contact_at
        FROM leads l WHERE l.org_id = %(org)s AND l.first_contact_at IS NOT NULL
        ORDER BY l.first_contact_at
        """,
    ),
    (
        "messages",
        """
        INSERT INTO messages (id, org_id, lead_id, thread_id, channel, direction, sender, body,
                              status, idempotency_key, mode, created_at, sent_at, status_at)
        SELECT 'msg_' || md5(%(tag)s || '-msg-' || m.g), %(org)s, l.id,
               'th_' || md5(l.contact_id),
               CASE WHEN m.r_channel < 0.6 THEN 'sms' WHEN m.r_channel < 0.85 THEN 'email'
                    ELSE 'whatsapp' END,
               CASE WHEN m.r_sender < 0.45 THEN 'inbound' ELSE 'outbound' END,
               CASE WHEN m.r_sender < 0.45 THEN 'customer' WHEN m.r_sender < 0.9 THEN 'ai'
                    WHEN m.r_sender < 0.97 THEN 'human' ELSE 'system' END,
               CASE WHEN m.r_sender >= 0.45 THEN 'Hi! Just checking in, shall we book you in?'
                    WHEN m.r_body < 0.3 THEN 'Can you come on Thursday morning instead?'
                    WHEN m.r_body < 0.5 THEN 'Great, thanks so much! See you then.'
                    WHEN m.r_body < 0.65 THEN 'How much would that cost?'
                    WHEN m.r_body < 0.8 THEN 'Yes please, that works for me'
                    WHEN m.r_body < 0.9 THEN 'Not happy, nobody turned up yesterday.'
                    ELSE 'Sorry, I am busy this week. Maybe next month?' END,
               CASE WHEN m.r_sender < 0.45 THEN 'received' ELSE 'delivered' END,
               'bench/' || %(tag)s || '/' || m.g, 'dry_run', at,
               CASE WHEN m.r_sender >= 0.45 THEN at END, at
        FROM (
            SELECT g, random() AS r_channel, random() AS r_sender, random() AS r_at,
                   random() AS r_body, 1 + floor(random() * %(leads)s)::int AS k
            FROM generate_series(1, %(more_messages)s) g
        ) m
        JOIN leads l ON l.id = 'lead_' || md5(%(tag)s || '-lead-' || m.k)
        CROSS JOIN LATERAL (  -- most messages in the days after intake, some much later
            SELECT l.created_at + (%(now)s - l.created_at) * power(m.r_at, 4) AS at
        ) t
        ORDER BY t.at
        """,
    ),
    (
        "threads moved",
        """
        UPDATE threads t
        SET last_message_at = m.last_at, last_inbound_at = m.inbound_at,
            last_human_at = m.human_at,
            status = CASE WHEN m.inbound_at = m.last_at THEN 'unread'
                          WHEN m.r < 0.09 THEN 'assigned' ELSE 'resolved' END,
            handled_by = CASE WHEN m.human_at IS NOT NULL AND m.r < 0.05 THEN 'human'
                              ELSE 'ai' END,
            held_by = CASE WHEN m.human_at IS NOT NULL AND m.r < 0.05 THEN 'op_bench' END,
            held_since = CASE WHEN m.human_at IS NOT NULL AND m.r < 0.05 THEN m.human_at END
        FROM (
            SELECT thread_id, max(created_at) AS last_at,
                   max(created_at) FILTER (WHERE direction = 'inbound') AS inbound_at,
                   max(created_at) FILTER (WHERE sender = 'human') AS human_at,
                   random() AS r
            FROM messages WHERE org_id = %(org)s GROUP BY thread_id
        ) m
        WHERE t.id = m.thread_id
        """,
    ),
    (
        "escalations",
        """
        INSERT INTO escalations (id, org_id, thread_id, contact_id, reason, priority, summary,
                                 status, level, data, opened_at, sla_due_at, resolved_at)
        SELECT 'esc_' || md5(t.id), t.org_id, t.id, t.contact_id, reason, 'medium',
               'Bench escalation', status, 0, '{}', at, at + interval '1 hour',
               CASE WHEN status = 'resolved' THEN at + interval '2 hours' END
        FROM (
            SELECT t.id, t.org_id, t.contact_id, coalesce(t.last_message_at, t.created_at) AS at,
                   CASE WHEN random() < 0.3 THEN 'call_attempts_exhausted'
                        ELSE 'negative_sentiment' END AS reason,
                   CASE WHEN random() < 0.2 THEN 'open' ELSE 'resolved' END AS status,
                   random() AS r
            FROM threads t WHERE t.org_id = %(org)s
        ) t
        WHERE t.r < 0.1
        ORDER BY t.at
        """,
    ),
    (
        "calls",
        """
        INSERT INTO calls (id, org_id, lead_id, workflow_id, attempt, idempotency_key, mode,
                           status, outcome, ended_reason, duration_s, cost, local_hour,
                           created_at, placed_at, ended_at)
        SELECT 'call_' || md5(%(tag)s || '-call-' || c.g), %(org)s, l.id, l.workflow_id,
               1 + (c.r_attempt * 3)::int, 'bench-call/' || %(tag)s || '/' || c.g, 'dry_run',
               'ended', outcome, outcome, duration, round((duration / 60 * 0.09)::numeric, 4),
               (8 + c.r_hour * 12)::int, at, at, at + make_interval(secs => duration)
        FROM (
            SELECT g, random() AS r_attempt, random() AS r_hour, random() AS r_at,
                   CASE WHEN random() < 0.45 THEN 'answered' WHEN random() < 0.6
                        THEN 'no_answer' WHEN random() < 0.8 THEN 'voicemail'
                        ELSE 'busy' END AS outcome,
                   5 + random() * 300 AS duration,
                   1 + floor(random() * %(leads)s)::int AS k
            FROM generate_series(1, %(calls)s) g
        ) c
        JOIN leads l ON l.id = 'lead_' || md5(%(tag)s || '-lead-' || c.k)
        CROSS JOIN LATERAL (  -- in the two weeks after intake
            SELECT l.created_at + least(%(now)s - l.created_at, interval '14 days') * c.r_at AS at
        ) t
        ORDER BY t.at
        """,
    ),
    (
        "payments",
        """
        WITH converted AS (
            SELECT id, contact_id, created_at, row_number() OVER (ORDER BY id) AS n
            FROM leads WHERE org_id = %(org)s AND stage = 'converted'
        ), total AS (SELECT count(*) AS n FROM converted)
        INSERT INTO payments (id, org_id, lead_id, contact_id, source, stripe_event_id,
                              stripe_object_id, kind, status, amount, currency,
                              amount_refunded, payment_intent, occurred_at, created_at)
        SELECT 'pay_' || md5(%(tag)s || '-pay-' || p.g), %(org)s, c.id, c.contact_id,
               (SELECT f.source FROM leads f WHERE f.contact_id = c.contact_id
                ORDER BY f.created_at, f.id LIMIT 1),
               'evt_' || md5(%(tag)s || '-evt-' || p.g),
               CASE WHEN kind = 'refund' THEN 'ch_' ELSE 'in_' END || md5(%(tag)s || p.g::text),
               kind, status, amount,
               CASE WHEN p.r_currency < 0.98 THEN 'usd' ELSE 'eur' END,
               CASE WHEN kind = 'refund' THEN amount END,
               'pi_' || md5(%(tag)s || '-pi-' || p.g), at, at
        FROM (
            SELECT g, random() AS r_currency, random() AS r_at,
                   (1000 + random() * 49000)::int AS amount,
                   CASE WHEN r < 0.72 THEN 'invoice' WHEN r < 0.82 THEN 'checkout'
                        WHEN r < 0.92 THEN 'invoice' ELSE 'refund' END AS kind,
                   CASE WHEN r < 0.82 THEN 'paid' WHEN r < 0.92 THEN 'failed'
                        ELSE 'refunded' END AS status,
                   random() AS r_lead
            FROM (SELECT g, random() AS r FROM generate_series(1, %(payments)s) g) drawn
        ) p
        CROSS JOIN total
        JOIN converted c ON c.n = 1 + floor(p.r_lead * total.n)::int
        CROSS JOIN LATERAL (  -- in the two months after intake
            SELECT c.created_at + least(%(now)s - c.created_at, interval '60 days') * p.r_at AS at
        ) t
        ORDER BY t.at
        """,
    ),
    (
        "subscriptions",
        """
        WITH converted AS (
            SELECT id, row_number() OVER (ORDER BY id) AS n
            FROM leads WHERE org_id = %(org)s AND stage = 'converted'
        ), total AS (SELECT count(*) AS n FROM converted)
        INSERT INTO subscriptions (id, org_id, lead_id, stripe_subscription_id, status,
                                   currency, amount, interval, interval_count, started_at,
                                   ended_at, event_at, created_at, updated_at)
        SELECT 'sub_' || md5(%(tag)s || '-sub-' || s.g), %(org)s, c.id,
               'sub_' || md5(%(tag)s || '-stripe-sub-' || s.g),
               CASE WHEN ended THEN 'canceled' WHEN s.r_status < 0.05 THEN 'past_due'
                    WHEN s.r_status < 0.08 THEN 'trialing' ELSE 'active' END,
               'usd', CASE WHEN yearly THEN 99000 ELSE 9900 END,
               CASE WHEN yearly THEN 'year' ELSE 'month' END, 1,
               started, CASE WHEN ended THEN started + (%(now)s - started) * s.r_end END,
               %(now)s, started, %(now)s
        FROM (
            SELECT g, random() AS r_status, random() AS r_end, random() < 0.25 AS ended,
                   random() < 0.2 AS yearly, random() AS r_lead,
                   %(now)s - make_interval(secs => random() * %(days)s * 86400) AS started
            FROM generate_series(1, %(subscriptions)s) g
        ) s
        CROSS JOIN total
        JOIN converted c ON c.n = 1 + floor(s.r_lead * total.n)::int
        ORDER BY s.started
        """,
    ),
)


def _new_org(url: str, name: str) -> tuple[str, str]:
    engine = make_engine(url, pool_size=1)
    try:
        with session_scope(engine) as session:
            org, api_key = create_org(session, name=name, settings=OrgSettings())
            return org.id, api_key
    finally:
        engine.dispose()


def _message_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """The ``messages`` indexes that back no constraint: (name, definition)."""
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "AND tablename = 'messages' AND indexname NOT IN (SELECT conname FROM pg_constraint) "
        "ORDER BY indexname"
    ).fetchall()
    return [(str(name), str(definition)) for name, definition in rows]


def load(
    url: str, specs: Sequence[OrgSpec], *, seed: int, now: datetime
) -> tuple[dict[str, float], list[Dataset]]:
    """Create the orgs (through the services), then generate their rows in PostgreSQL.

    The ``messages`` indexes without a constraint (the trigram index among them) are dropped
    for the load and created again from their own definitions after it, and foreign keys are
    not checked row by row (``session_replication_role = replica``): the rows are consistent
    by construction. ``VACUUM (ANALYZE)`` last, as autovacuum would have done by then.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    datasets = []
    with psycopg.connect(plain_url(url)) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SELECT setseed(%s)", (seed / 1000,))
        indexes = _message_indexes(conn)
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        for spec in specs:
            org_id, api_key = _new_org(url, spec.name)
            contacts = round(spec.leads * 0.85)
            params = {
                "org": org_id,
                "tag": f"{spec.label}-{seed}",
                "now": now,
                "days": spec.days,
                "leads": spec.leads,
                "contacts": contacts,
                "calls": spec.calls,
                "payments": spec.payments,
                "subscriptions": spec.subscriptions,
            }
            counts: dict[str, int] = {}
            for table, statement in LOAD_STATEMENTS:
                phase = time.perf_counter()
                if table == "messages":
                    params["more_messages"] = max(0, spec.messages - counts["first touches"])
                counts[table] = conn.execute(statement.encode(), params).rowcount
                took = round(time.perf_counter() - phase, 1)
                timings[f"{spec.label}_{table.replace(' ', '_')}_s"] = took
                progress(f"{spec.label}: {counts[table]:,} {table} in {took}s")
            datasets.append(
                Dataset(label=spec.label, org_id=org_id, api_key=api_key, counts=counts)
            )
        conn.commit()
        phase = time.perf_counter()
        for name, definition in indexes:
            progress(f"creating {name}")
            conn.execute(definition.encode())
        conn.commit()
        timings["indexes_s"] = round(time.perf_counter() - phase, 1)
    # The rows were written around the app: its leads' facts and running totals (what
    # ``GET /v1/agents`` and the pipeline over all time add up) are derived from them, as
    # the migrations did for the rows they found.
    phase = time.perf_counter()
    engine = make_engine(url)
    try:
        for dataset in datasets:
            with session_scope(engine) as session:
                agent_days.rebuild(session, org_id=dataset.org_id)
                lead_groups.rebuild(session, org_id=dataset.org_id)
            progress(f"{dataset.label}: running totals derived")
    finally:
        engine.dispose()
    timings["running_totals_s"] = round(time.perf_counter() - phase, 1)
    phase = time.perf_counter()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        for table in (
            "agent_days",
            "lead_groups",
            "contacts",
            "leads",
            "threads",
            "messages",
            "escalations",
            "calls",
            "payments",
            "subscriptions",
        ):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    timings["vacuum_analyze_s"] = round(time.perf_counter() - phase, 1)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    return timings, datasets


def reuse(url: str, specs: Sequence[OrgSpec]) -> list[Dataset]:
    """A kept database's orgs by name, each with a new API key (only its hash is stored)."""
    from models.rules.orgs import API_KEY_PREFIX, hash_api_key

    datasets = []
    with psycopg.connect(plain_url(url)) as conn:
        for spec in specs:
            api_key = API_KEY_PREFIX + uuid.uuid4().hex + uuid.uuid4().hex
            row = conn.execute(
                "UPDATE orgs SET api_key_hash = %s, api_key_prefix = %s WHERE name = %s "
                "RETURNING id",
                (hash_api_key(api_key), api_key[:10], spec.name),
            ).fetchone()
            assert row is not None, f"no org named {spec.name!r} in the database"
            datasets.append(Dataset(label=spec.label, org_id=str(row[0]), api_key=api_key))
        conn.commit()
    return datasets


# --- the API --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_api(port: str, url: str) -> None:
    """The app on ``url`` under uvicorn on ``port``, as ``keepwarm up`` serves it (no access
    log, no rate limit, no Temporal); the child process of :func:`api_process`."""
    import uvicorn

    from api.main import create_app
    from models.settings import Settings

    settings = Settings(
        database_url=url,
        temporal_address=NO_TEMPORAL,
        rate_limit_per_minute=0,
        log_level="WARNING",
        api_port=int(port),
    )
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=int(port),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@dataclass(frozen=True)
class Server:
    """The app under test: its base URL and process id."""

    url: str
    pid: int

    def cpu_s(self) -> float:
        """CPU seconds (user and system) the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def api_process(url: str) -> Iterator[Server]:
    """The app in a child process, until the block ends."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("KEEPWARM_")}
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-api", str(port), url],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not answer in {START_TIMEOUT_S:.0f}s")
            time.sleep(0.2)
        yield Server(url=base, pid=process.pid)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Route:
    """One measured request: a key, a label and its path and query."""

    key: str
    label: str
    path: str
    params: dict[str, str]
    #: A string every good response contains.
    expect: str


def routes(now: datetime) -> list[Route]:
    """The measured requests: the pipeline and revenue reports for the last 30 days (alone and
    compared with the 30 days before) and for all time; the agents for the last 30 days and for
    all time."""
    month = {
        "from": (now - timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "to": now.isoformat().replace("+00:00", "Z"),
    }
    compared = month | {"compare": "previous"}
    return [
        Route(key="pipeline_30d", label="/v1/pipeline, 30 days", path="/v1/pipeline",
              params=month, expect='"funnel"'),
        Route(key="pipeline_30d_prev", label="/v1/pipeline, 30 days + previous",
              path="/v1/pipeline", params=compared, expect='"window"'),
        Route(key="pipeline_all", label="/v1/pipeline, all time", path="/v1/pipeline",
              params={}, expect='"funnel"'),
        Route(key="revenue_30d", label="/v1/revenue, 30 days", path="/v1/revenue",
              params=month, expect='"mrr"'),
        Route(key="revenue_30d_prev", label="/v1/revenue, 30 days + previous",
              path="/v1/revenue", params=compared, expect='"window"'),
        Route(key="revenue_all", label="/v1/revenue, all time", path="/v1/revenue",
              params={}, expect='"mrr"'),
        Route(key="agents_30d", label="/v1/agents, 30 days", path="/v1/agents",
              params=month, expect='"takeover_rate"'),
        Route(key="agents_all", label="/v1/agents, all time", path="/v1/agents",
              params={}, expect='"takeover_rate"'),
        # The lead list, every documented sort, and with each filter (issue 20).
        Route(key="leads_recent", label="/v1/leads, recent", path="/v1/leads",
              params={}, expect='"items"'),
        Route(key="leads_oldest", label="/v1/leads, oldest", path="/v1/leads",
              params={"sort": "oldest"}, expect='"items"'),
        Route(key="leads_score", label="/v1/leads, by score", path="/v1/leads",
              params={"sort": "score"}, expect='"items"'),
        Route(key="leads_value", label="/v1/leads, by value", path="/v1/leads",
              params={"sort": "value"}, expect='"items"'),
        Route(key="leads_stage_score", label="/v1/leads, stage engaged, by score",
              path="/v1/leads", params={"stage": "engaged", "sort": "score"},
              expect='"items"'),
        Route(key="leads_source_value", label="/v1/leads, source referral, by value",
              path="/v1/leads", params={"source": "referral", "sort": "value"},
              expect='"items"'),
        Route(key="leads_q", label="/v1/leads, q=contact 4242", path="/v1/leads",
              params={"q": "contact 4242"}, expect='"items"'),
        Route(key="inbox_q", label="/v1/threads, q=thursday", path="/v1/threads",
              params={"q": "thursday"}, expect='"items"'),
    ]  # fmt: skip


@dataclass(kw_only=True)
class Samples:
    """Latencies of one route, org and concurrency, pooled over rounds."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    #: CPU seconds the API process spent over the measured requests.
    server_cpu_s: float = 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` by linear interpolation (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def phase(
    http: httpx.AsyncClient,
    server: Server,
    route: Route,
    dataset: Dataset,
    *,
    concurrency: int,
    count: int,
    warmup: int,
    into: Samples,
) -> None:
    """``warmup`` unmeasured then ``count`` measured requests of ``route`` on ``concurrency``
    tasks pulling from a shared counter; the results go ``into`` the samples."""
    headers = {"Authorization": f"Bearer {dataset.api_key}"}

    async def run(indexes: Iterator[int], measured: bool) -> None:
        for _ in indexes:
            started = time.perf_counter()
            try:
                response = await http.get(route.path, params=route.params, headers=headers)
            except httpx.HTTPError as error:
                into.errors[type(error).__name__] += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                into.errors[f"HTTP {response.status_code}"] += 1
            elif route.expect not in response.text:
                into.errors["unexpected body"] += 1
            elif measured:
                into.latencies_ms.append(elapsed)

    warm = iter(range(warmup))
    await asyncio.gather(*(run(warm, False) for _ in range(concurrency)))
    measured = iter(range(count))
    started, cpu = time.perf_counter(), server.cpu_s()
    await asyncio.gather(*(run(measured, True) for _ in range(concurrency)))
    into.elapsed_s += time.perf_counter() - started
    into.server_cpu_s += server.cpu_s() - cpu


async def measure(
    server: Server, datasets: list[Dataset], args: argparse.Namespace, now: datetime
) -> dict[tuple[str, str, int], Samples]:
    """Every route for every org at every concurrency, over ``args.rounds`` rounds; the org
    order alternates from round to round, so drift hits both orgs alike."""
    most = max(args.concurrency)
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    samples: dict[tuple[str, str, int], Samples] = {}
    async with httpx.AsyncClient(
        base_url=server.url, limits=limits, timeout=httpx.Timeout(60.0)
    ) as http:
        for round_index in range(args.rounds):
            order = datasets if round_index % 2 == 0 else list(reversed(datasets))
            for route in routes(now):
                if args.routes and route.key not in args.routes:
                    continue
                for concurrency in args.concurrency:
                    for dataset in order:
                        into = samples.setdefault(
                            (route.key, dataset.label, concurrency), Samples()
                        )
                        await phase(
                            http,
                            server,
                            route,
                            dataset,
                            concurrency=concurrency,
                            count=args.requests,
                            warmup=args.warmup,
                            into=into,
                        )
                    big = samples.get((route.key, BIG, concurrency))
                    base = samples.get((route.key, BASELINE, concurrency))
                    progress(
                        f"round {round_index + 1} {route.label:<34} c={concurrency} "
                        f"big p95 {_p(big, 0.95):7.1f} ms  baseline p95 {_p(base, 0.95):6.1f} ms"
                        f"  errors {_errors(big) + _errors(base)}"
                    )
    return samples


def _p(samples: Samples | None, fraction: float) -> float:
    return percentile(samples.latencies_ms, fraction) if samples else float("nan")


def _errors(samples: Samples | None) -> int:
    return sum(samples.errors.values()) if samples else 0


# --- reporting ------------------------------------------------------------------------------


def _stats(samples: Samples) -> dict[str, Any]:
    handled = len(samples.latencies_ms) + sum(samples.errors.values())
    return {
        "requests": len(samples.latencies_ms),
        "errors": dict(samples.errors),
        "p50_ms": _p(samples, 0.50),
        "p95_ms": _p(samples, 0.95),
        "p99_ms": _p(samples, 0.99),
        "max_ms": max(samples.latencies_ms, default=float("nan")),
        "server_cpu_ms_per_req": samples.server_cpu_s * 1000 / handled if handled else None,
    }


def summarize(samples: dict[tuple[str, str, int], Samples], now: datetime) -> list[dict[str, Any]]:
    """One row per route and concurrency: the big org's figures, the baseline's, the ratio of
    their p95s and the verdict against ``TARGET_P95_MS``."""
    labels = {route.key: route.label for route in routes(now)}
    keys = sorted(
        {(key, conc) for key, _, conc in samples}, key=lambda k: (k[1], list(labels).index(k[0]))
    )
    rows = []
    for key, concurrency in keys:
        big, base = samples[(key, BIG, concurrency)], samples[(key, BASELINE, concurrency)]
        big_p95, base_p95 = _p(big, 0.95), _p(base, 0.95)
        rows.append(
            {
                "route": key,
                "label": labels[key],
                "concurrency": concurrency,
                "big": _stats(big),
                "baseline": _stats(base),
                "ratio_p95": big_p95 / base_p95 if base_p95 > 0 else None,
                "pass": big_p95 < TARGET_P95_MS and not big.errors,
            }
        )
    return rows


def report(results: dict[str, Any]) -> str:
    """The human-readable table."""
    lines = [
        f"PostgreSQL {results['postgres']['version']}, shared_buffers "
        f"{results['postgres']['shared_buffers']}, work_mem {results['postgres']['work_mem']}; "
        f"app under uvicorn in a child process; cpus {results['machine']['cpus']}",
        *(f"{label}: {json.dumps(counts)}" for label, counts in results["datasets"].items()),
        f"{results['requests']} requests x {results['rounds']} rounds per route, org and "
        f"concurrency after {results['warmup']} warm-up; target p95 < {TARGET_P95_MS:.0f} ms",
        "",
        f"{'route':<36}{'conc':>5}{'p50':>8}{'p95':>8}{'p99':>8}{'base p50':>10}"
        f"{'base p95':>10}{'ratio':>7}{'cpu':>7}{'err':>5}  target",
    ]
    for row in results["rows"]:
        errors = sum(row["big"]["errors"].values()) + sum(row["baseline"]["errors"].values())
        ratio = "-" if row["ratio_p95"] is None else f"{row['ratio_p95']:.1f}"
        cpu = row["big"]["server_cpu_ms_per_req"]
        lines.append(
            f"{row['label']:<36}{row['concurrency']:>5}{row['big']['p50_ms']:>8.1f}"
            f"{row['big']['p95_ms']:>8.1f}{row['big']['p99_ms']:>8.1f}"
            f"{row['baseline']['p50_ms']:>10.1f}{row['baseline']['p95_ms']:>10.1f}{ratio:>7}"
            f"{'-' if cpu is None else f'{cpu:.1f}':>7}{errors:>5}  "
            f"{'PASS' if row['pass'] else 'FAIL'}"
        )
    lines.append("")
    lines.append(
        "latencies in ms (big org); ratio = big p95 / baseline p95; cpu = the API process's "
        "CPU ms per request (big org)"
    )
    if results.get("load"):
        lines.append(f"load: {results['load']}")
    failed = [row for row in results["rows"] if not row["pass"]]
    lines.append(
        "target met on every route" if not failed else f"target MISSED on {len(failed)} rows"
    )
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    """``value`` with NaN as ``None``, so the JSON is standard."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Time /v1/pipeline, /v1/revenue and /v1/agents at 100k leads against a "
        "small org."
    )
    parser.add_argument("--leads", type=int, default=100_000, help="leads of the big org")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--subscriptions", type=int, default=4_000)
    parser.add_argument("--days", type=int, default=180, help="the history's length")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1], help="requests in flight"
    )
    parser.add_argument(
        "--requests", type=int, default=100, help="measured requests per route, org, round"
    )
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests first")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating org order")
    parser.add_argument("--routes", nargs="+", help="measure only these routes (keys)")
    parser.add_argument("--seed", type=int, default=17, help="random seed of the data")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="psycopg URL to create DBs")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument(
        "--database", metavar="NAME", help="reuse a database an earlier --keep run loaded"
    )
    parser.add_argument(
        "--load-only", action="store_true", help="load (and keep) the database, measure nothing"
    )
    parser.add_argument(
        "--json", action="store_true", help="results as JSON on stdout (the table goes to stderr)"
    )
    parser.add_argument("--serve-api", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.concurrency) < 1 or args.requests < 1 or args.rounds < 1:
        parser.error("--concurrency, --requests and --rounds must be positive")
    if args.messages < args.leads:
        parser.error("--messages must be at least --leads (every touched lead has one)")
    return args


def _postgres(url: str) -> dict[str, str]:
    with psycopg.connect(plain_url(url)) as conn:
        found = {
            setting: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
            for setting in ("server_version", "shared_buffers", "work_mem")
        }
    return {
        "version": str((found["server_version"] or [""])[0]),
        "shared_buffers": str((found["shared_buffers"] or [""])[0]),
        "work_mem": str((found["work_mem"] or [""])[0]),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, load, measure and print the results."""
    args = parse_args(argv)
    if args.serve_api:
        serve_api(*args.serve_api)
        return
    big = OrgSpec(
        label=BIG,
        name="Bench analytics big org",
        leads=args.leads,
        messages=args.messages,
        calls=args.calls,
        payments=args.payments,
        subscriptions=args.subscriptions,
        days=args.days,
    )
    base = OrgSpec(
        label=BASELINE,
        name="Bench analytics baseline org",
        leads=args.leads // BASELINE_SHARE,
        messages=args.messages // BASELINE_SHARE,
        calls=args.calls // BASELINE_SHARE,
        payments=args.payments // BASELINE_SHARE,
        subscriptions=args.subscriptions // BASELINE_SHARE,
        days=args.days,
    )
    started = time.monotonic()
    now = datetime.now(UTC).replace(microsecond=0)
    name = args.database or create_database(args.admin_url)
    url = database_url(args.admin_url, name)
    keep = args.keep or args.load_only or bool(args.database)
    results: dict[str, Any] = {"database": name}
    try:
        upgrade(url)
        if args.database:
            progress(f"reusing database {name}")
            datasets = reuse(url, [big, base])
        else:
            progress(f"loading database {name}")
            results["load"], datasets = load(url, [big, base], seed=args.seed, now=now)
            progress(f"loaded in {results['load']['total_s']}s")
        if args.load_only:
            progress(f"database {name} kept; measure with --database {name}")
            return
        with api_process(url) as server:
            samples = asyncio.run(measure(server, datasets, args, now))
        results |= {
            "postgres": _postgres(url),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "server": "uvicorn (one process, a child of the bench), httpx client",
            "requests": args.requests,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "target_p95_ms": TARGET_P95_MS,
            "datasets": {dataset.label: dataset.counts for dataset in datasets},
            "rows": summarize(samples, now),
        }
    finally:
        if keep:
            progress(f"database {name} kept")
        else:
            drop_database(args.admin_url, name)
    results["wall_s"] = round(time.monotonic() - started, 1)
    table = report(results) + f"\n(total {results['wall_s']}s)"
    if args.json:
        progress(table)
        sys.stdout.write(json.dumps(_finite(results), indent=2) + "\n")
    else:
        sys.stdout.write(table + "\n")


if __name__ == "__main__":
    main()
