"""The inbox pages at scale: list and thread fragments with 60,000 threads and 1,000,000
messages on PostgreSQL, against a small org in the same database.

Run ``python bench/inbox_pages.py`` (``--help`` lists the options). It creates its own
database (``keepwarm_bench_inbox_<random>``, dropped at the end unless ``--keep``; ``--database
NAME`` reuses one kept earlier), migrates it to head and loads it with ``COPY``:

* a **big** org with ``--threads`` contacts and threads (each contact with a name and a phone,
  some with an email) and ``--messages`` messages spread with a heavy tail (a few threads with
  thousands of messages, most with a handful), over the last 90 days, in time order as they
  would have been written; leads for most contacts; open escalations on some threads; each
  thread's ``last_message_at``, ``last_inbound_at`` and ``status`` matching its messages;
* a **baseline** org of ``--baseline-threads`` / ``--baseline-messages`` made the same way.

Then it serves the real app (``api.main.create_app``) with uvicorn in a child process on a free
port (Temporal pointed at an address where nothing listens: these GET routes never use it),
signs in an operator of each org (a session cookie, as a browser) and times, after a warm-up,
the inbox list (first page, unread, name searches, a search for words in many messages, the
next page), the thread pane (a random thread and the longest one), the earlier-messages page of
the longest thread, and the JSON ``/v1/threads`` list and thread (the org's API key) as a
baseline without HTML. It prints p50/p95/p99 for the big org, p95 for the baseline org, their
ratio, the API process's CPU per request and whether the big org's p95 is under the target
(100 ms). ``bench/README.md`` explains the choices and has figures.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import html
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlmodel import select

from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.rules.orgs import API_KEY_PREFIX, hash_api_key
from models.schemas import OrgSettings
from models.services.operators import create_operator
from models.services.orgs import create_org
from models.services.sign_in import accept_invite, reinvite
from models.tables import Operator, Org, utcnow
from models.values import OperatorRole, new_id

#: The p95 each measured page must stay under at 60k threads / 1M messages.
TARGET_P95_MS = 100.0
#: The administrative connection that creates and drops the bench database.
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Seconds to wait for the API child process to answer ``/healthz``.
START_TIMEOUT_S = 60.0
#: Where nothing listens: the GET routes measured here must not need Temporal.
NO_TEMPORAL = "127.0.0.1:1"
#: Messages are spread over this many days before now.
HISTORY_DAYS = 90
#: The tail of messages per thread: Pareto with this shape (smaller is heavier).
PARETO_ALPHA = 1.3
#: The longest thread holds at most this share of the org's messages.
LONGEST_SHARE = 1 / 125
#: ... and at least this many (the pane shows 50, then pages of 50 earlier ones).
LONGEST_MIN = 150
#: How many "earlier messages" pages of the longest thread the earlier route cycles through.
EARLIER_PAGES = 10
#: Message-text searches for words many messages hold (in the big org: "thank" 20 % of the
#: messages, "reschedule" 6 %, "change" and "invoice" 4 % each).
TEXT_SEARCHES = ("thank", "change", "invoice", "reschedule")
PASSWORD = "bench-inbox-pages-1"
BIG, BASELINE = "big", "baseline"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Maria James Robert Mary Michael Patricia John Jennifer David Linda William Elizabeth "
    "Richard Barbara Joseph Susan Thomas Jessica Charles Sarah Christopher Karen Daniel Lisa "
    "Matthew Nancy Anthony Betty Mark Sandra Donald Margaret Steven Ashley Paul Kimberly Andrew "
    "Emily Joshua Donna Kenneth Michelle Kevin Carol Brian Amanda George Melissa Timothy "
    "Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob "
    "Dorothy Gary Amy Nicholas Kathleen Eric Angela Jonathan Shirley Stephen Brenda Larry Emma "
    "Justin Anna Scott Pamela Brandon Nicole Benjamin Samantha Samuel Katherine Gregory "
    "Christine Alexander Helen Patrick Debra Frank Rachel Raymond Carolyn Jack Janet Dennis "
    "Priya Wei Aisha Mohammed Sofia Mateo Chloe Yuki Kwame Ingrid Olga Diego Fatima Nikhil"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
    "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres "
    "Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts "
    "Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales "
    "Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos "
    "Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes "
    "Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Okafor Kowalski "
    "Lindqvist Haddad Tanaka Novak Petrov Moreau Schmidt Rossi Yamamoto Oyelaran Fitzgerald"
)
#: Syllables for the long tail of rarer surnames.
SYLLABLES = _words(
    "ka ro vin del mar ten sul bro ash wick ford lan dor mel qui zan per ost hel vik bur"
)
AREA_CODES = ("212", "415", "312", "617", "305", "206", "512", "303", "404", "702", "615", "503")
CUSTOMER_LINES = (
    "Hi, is the quote still valid?",
    "Can you come on Thursday morning instead?",
    "What time will the technician arrive?",
    "The leak under the kitchen sink is back again.",
    "Thanks, that works for me.",
    "How much would it be for the full service?",
    "I'm not home until 6pm, is later ok?",
    "Do you take card payments on site?",
    "Please call me when you're on the way.",
    "Sorry, I missed your call earlier.",
    "We'd like to go ahead with the second option.",
    "Is there any discount for repeat customers?",
    "The boiler is making a banging noise when it starts.",
    "Can I change the appointment to next week?",
    "Great service last time, thank you!",
    "Not interested anymore, we found someone else.",
    "Could you send the invoice by email please?",
    "Is parking available near you or should I leave the driveway free?",
)
AI_LINES = (
    "Thanks for getting in touch! We can book a visit this week.",
    "Your appointment is confirmed for {day} between 8 and 10am.",
    "Our technician is on the way and should arrive within 30 minutes.",
    "Here is your quote for the work we discussed: $%d including parts.",
    "Just checking in: would you still like us to take a look?",
    "We have a slot free tomorrow afternoon if that suits you.",
    "No problem at all, I've moved your booking.",
    "You can pay by card or bank transfer once the job is done.",
    "Thanks for your message, a member of the team will reply shortly.",
    "Reminder: your visit is tomorrow. Reply C to confirm or R to reschedule.",
    "We'd love your feedback on the visit, it takes a minute.",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
#: Outbound statuses and their weights; inbound messages are ``received``.
OUTBOUND_STATUSES = (
    ("delivered", 60),
    ("sent", 20),
    ("simulated", 8),
    ("failed", 5),
    ("queued", 4),
    ("pending", 3),
)
CHANNELS = ("sms", "email", "whatsapp")
CHANNEL_WEIGHTS = (60, 25, 15)
STAGES = (
    ("new", 10),
    ("contacted", 25),
    ("engaged", 20),
    ("quoted", 10),
    ("converted", 10),
    ("ghosting", 10),
    ("lost", 10),
    ("opted_out", 5),
)


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the results)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --- the database ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class OrgSpec:
    """One org to load."""

    label: str
    name: str
    threads: int
    messages: int


@dataclass(kw_only=True)
class Dataset:
    """One loaded org and what the bench needs to request its pages."""

    label: str
    org_id: str
    api_key: str
    session_token: str
    threads: int
    messages: int
    thread_ids: list[str]
    longest_thread_id: str
    longest_thread_messages: int
    fragments: list[str]


def plain_url(sa_url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as psycopg takes it."""
    return sa_url.replace("postgresql+psycopg://", "postgresql://", 1)


def database_url(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the admin URL's server."""
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def create_database(admin_url: str) -> str:
    """A new, empty database; its name."""
    name = f"keepwarm_bench_inbox_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` (closing its connections)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, int]]) -> str:
    return rng.choices([value for value, _ in pairs], weights=[w for _, w in pairs])[0]


def thread_lengths(rng: random.Random, threads: int, messages: int) -> list[int]:
    """Messages per thread: at least one each, a Pareto tail, the longest capped at
    ``LONGEST_SHARE`` of all messages but at least ``LONGEST_MIN`` (so even a small org's
    longest thread has earlier pages), summing to ``messages``."""
    if messages < threads:
        raise ValueError("need at least one message per thread")
    cap = max(LONGEST_MIN, int(messages * LONGEST_SHARE))
    weights = [rng.paretovariate(PARETO_ALPHA) for _ in range(threads)]
    total = sum(weights)
    extra = messages - threads
    counts = [1 + min(cap - 1, int(w / total * extra)) for w in weights]
    longest = max(range(threads), key=weights.__getitem__)
    counts[longest] = max(counts[longest], min(LONGEST_MIN, extra + 1))
    short = messages - sum(counts)
    while short != 0:
        index = rng.randrange(threads)
        if short > 0 and counts[index] < cap:
            step = min(cap - counts[index], short, 1 + counts[index] // 10)
            counts[index] += step
            short -= step
        elif short < 0 and counts[index] > 1 and index != longest:
            counts[index] -= 1
            short += 1
    return counts


def _surname(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(LAST_NAMES)
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _body(rng: random.Random, *, inbound: bool, first_name: str) -> str:
    if inbound:
        lines = rng.sample(CUSTOMER_LINES, rng.choice((1, 1, 1, 2, 3)))
        return " ".join(lines)
    line = rng.choice(AI_LINES)
    line = line.replace("{day}", rng.choice(DAYS)).replace("%d", str(rng.randint(90, 4000)))
    if rng.random() < 0.3:
        line = f"Hi {first_name}, {line[0].lower()}{line[1:]}"
    if rng.random() < 0.2:
        line += " " + rng.choice(AI_LINES).replace("{day}", "Friday").replace("%d", "250")
    return line


@dataclass
class _ThreadPlan:
    """One thread, planned before its messages are written in time order."""

    id: str
    contact_id: str
    first_name: str
    phone: str
    email: str | None
    channel: str
    lead_id: str | None
    count: int
    first_at: float = 0.0
    last_at: float = 0.0
    last_inbound_at: float | None = None
    last_inbound: bool = False


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def load_org(
    conn: psycopg.Connection[Any],
    *,
    spec: OrgSpec,
    org_id: str,
    operator_id: str,
    rng: random.Random,
    now: float,
) -> dict[str, Any]:
    """Load one org's contacts, identities, threads, leads, escalations and messages with
    ``COPY``; what was loaded.

    Messages are generated per thread (times, directions, channels), then written in time
    order across threads, as an org's messages arrive: a long thread's rows are spread over
    the table, not packed together.
    """
    window = HISTORY_DAYS * 86400.0
    start = now - window
    counts = thread_lengths(rng, spec.threads, spec.messages)
    locals_ = rng.sample(range(2_000_000, 9_999_999), spec.threads)
    plans: list[_ThreadPlan] = []
    msg_time = array.array("d")
    msg_thread = array.array("i")
    msg_flags = array.array("b")  # bit 0: inbound; bits 1-2: channel index
    long_thread = max(200, spec.messages // 5000)
    for index, count in enumerate(counts):
        first_name = rng.choice(FIRST_NAMES)
        channel = rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS)[0]
        plan = _ThreadPlan(
            id=new_id("thr"),
            contact_id=new_id("ct"),
            first_name=first_name,
            phone=f"+1{rng.choice(AREA_CODES)}{locals_[index]}",
            email=None,
            channel=channel,
            lead_id=new_id("lead") if rng.random() < 0.7 else None,
            count=count,
        )
        plans.append(plan)
        if count >= long_thread:
            # A long conversation started weeks ago and is still going.
            first = start + rng.random() * window * 0.1
            last = now - rng.random() * 6 * 3600
        else:
            last = now - window * rng.random() ** 2
            span = min(last - start, sum(rng.expovariate(1 / 21600) for _ in range(count - 1)))
            first = last - span
        times = sorted([first, last] + [rng.uniform(first, last) for _ in range(count - 2)])
        times = times[-count:]
        inbound = False
        for position, at in enumerate(times):
            # keepwarm writes first (the first touch); then customer and business take turns,
            # unevenly.
            inbound = position > 0 and rng.random() < (0.3 if inbound else 0.55)
            used = channel if rng.random() < 0.85 else rng.choice(CHANNELS)
            msg_time.append(at)
            msg_thread.append(index)
            msg_flags.append(int(inbound) | (CHANNELS.index(used) << 1))
            if inbound:
                plan.last_inbound_at = at
        plan.first_at, plan.last_at, plan.last_inbound = times[0], times[-1], inbound

    names: list[tuple[str, str]] = []
    stats: Counter[str] = Counter()
    with conn.cursor() as cur:
        with cur.copy("COPY contacts (id, org_id, name, timezone, created_at) FROM STDIN") as copy:
            for plan in plans:
                surname = _surname(rng)
                names.append((plan.first_name, surname))
                copy.write_row(
                    (
                        plan.contact_id,
                        org_id,
                        f"{plan.first_name} {surname}",
                        None,
                        _ts(plan.first_at - 60),
                    )
                )
        with cur.copy(
            "COPY identities (id, org_id, contact_id, kind, value, created_at) FROM STDIN"
        ) as copy:
            for serial, (plan, (given, family)) in enumerate(zip(plans, names, strict=True)):
                created = _ts(plan.first_at - 60)
                copy.write_row(
                    (new_id("idn"), org_id, plan.contact_id, "phone", plan.phone, created)
                )
                if plan.channel == "email" or rng.random() < 0.3:
                    plan.email = f"{given}.{family}{serial}@example.com".lower()
                    copy.write_row(
                        (new_id("idn"), org_id, plan.contact_id, "email", plan.email, created)
                    )
        with cur.copy(
            "COPY leads (id, org_id, contact_id, workflow_id, stage, score, source, value, "
            "fields, created_at, updated_at, first_contact_at) FROM STDIN"
        ) as copy:
            for plan in plans:
                if plan.lead_id is None:
                    continue
                stage = _weighted(rng, STAGES)
                value = (
                    round(rng.uniform(100, 5000), 2) if stage in ("quoted", "converted") else None
                )
                stats[f"lead_{stage}"] += 1
                copy.write_row(
                    (
                        plan.lead_id,
                        org_id,
                        plan.contact_id,
                        f"lead-{plan.lead_id}",
                        stage,
                        rng.randint(0, 100),
                        rng.choice(("web_form", "phone", "referral", "ads")),
                        value,
                        "{}",
                        _ts(plan.first_at - 30),
                        _ts(plan.last_at),
                        _ts(plan.first_at),
                    )
                )
        with cur.copy(
            "COPY threads (id, org_id, contact_id, created_at, status, handled_by, priority, "
            "assigned_to, last_message_at, last_inbound_at, held_by, held_since, last_human_at) "
            "FROM STDIN"
        ) as copy:
            escalations: list[tuple[Any, ...]] = []
            for plan in plans:
                # The customer wrote last: mostly still unread; otherwise answered or resolved.
                if plan.last_inbound and rng.random() < 0.6:
                    status = "unread"
                else:
                    status = "assigned" if rng.random() < 0.12 else "resolved"
                held = status == "assigned" and rng.random() < 0.5
                priority = _weighted(rng, (("low", 90), ("medium", 6), ("high", 3), ("urgent", 1)))
                stats[f"thread_{status}"] += 1
                last_at = _ts(plan.last_at)
                copy.write_row(
                    (
                        plan.id,
                        org_id,
                        plan.contact_id,
                        _ts(plan.first_at - 60),
                        status,
                        "human" if held else "ai",
                        priority,
                        operator_id if status == "assigned" else None,
                        last_at,
                        _ts(plan.last_inbound_at) if plan.last_inbound_at else None,
                        operator_id if held else None,
                        last_at if held else None,
                        last_at if held else None,
                    )
                )
                if priority != "low" and status != "resolved":
                    opened = _ts(plan.last_inbound_at or plan.last_at)
                    escalations.append(
                        (
                            new_id("esc"),
                            org_id,
                            plan.lead_id,
                            plan.id,
                            plan.contact_id,
                            "complaint",
                            priority,
                            "The customer is unhappy with the last visit.",
                            "open",
                            0,
                            "{}",
                            opened,
                            opened + timedelta(hours=1),
                        )
                    )
        with cur.copy(
            "COPY escalations (id, org_id, lead_id, thread_id, contact_id, reason, priority, "
            "summary, status, level, data, opened_at, sla_due_at) FROM STDIN"
        ) as copy:
            for row in escalations:
                copy.write_row(row)
        stats["escalations_open"] = len(escalations)

        order = sorted(range(len(msg_time)), key=msg_time.__getitem__)
        org_address = {
            "sms": "+12125550100",
            "whatsapp": "+12125550100",
            "email": "hi@bench.example",
        }
        with cur.copy(
            "COPY messages (id, org_id, lead_id, thread_id, channel, direction, sender, "
            "operator_id, to_address, from_address, body, subject, status, provider_message_id, "
            "error, mode, created_at, attempted_at, touched_at, sent_at, status_at) FROM STDIN"
        ) as copy:
            for position in order:
                plan = plans[msg_thread[position]]
                flags = msg_flags[position]
                inbound = bool(flags & 1)
                channel = CHANNELS[flags >> 1]
                written = _ts(msg_time[position])
                theirs = plan.email if channel == "email" and plan.email else plan.phone
                ours = org_address[channel]
                body = _body(rng, inbound=inbound, first_name=plan.first_name)
                if inbound:
                    copy.write_row(
                        (
                            new_id("msg"),
                            org_id,
                            plan.lead_id,
                            plan.id,
                            channel,
                            "inbound",
                            "customer",
                            None,
                            ours,
                            theirs,
                            body,
                            None,
                            "received",
                            f"IN{uuid.uuid4().hex[:30]}",
                            None,
                            "live",
                            written,
                            None,
                            None,
                            None,
                            written,
                        )
                    )
                    stats["inbound"] += 1
                    continue
                sender = _weighted(rng, (("ai", 82), ("human", 15), ("system", 3)))
                status = _weighted(rng, OUTBOUND_STATUSES)
                attempted = None if status == "pending" else written
                copy.write_row(
                    (
                        new_id("msg"),
                        org_id,
                        plan.lead_id,
                        plan.id,
                        channel,
                        "outbound",
                        sender,
                        operator_id if sender == "human" else None,
                        theirs,
                        ours,
                        body,
                        "A message from keepwarm" if channel == "email" else None,
                        status,
                        None if attempted is None else f"SM{uuid.uuid4().hex[:30]}",
                        "Carrier rejected the message" if status == "failed" else None,
                        "live",
                        written,
                        attempted,
                        written if sender == "ai" else None,
                        attempted,
                        attempted,
                    )
                )
                stats["outbound"] += 1
    return {
        "threads": spec.threads,
        "messages": len(order),
        "longest_thread": max(counts),
        "threads_over_1000_messages": sum(1 for c in counts if c > 1000),
        "median_thread": sorted(counts)[len(counts) // 2],
        **dict(sorted(stats.items())),
        "_plans": plans,
    }


def _sign_in(url: str, *, org_id: str, email: str, reuse: bool) -> tuple[str, str]:
    """A session token for the org's owner (made if new) and the owner's id: an invite, then
    ``accept_invite`` with a password, as a person would."""
    engine = make_engine(url, pool_size=1)
    try:
        with session_scope(engine) as session:
            now = utcnow()
            owner = session.exec(
                select(Operator).where(Operator.org_id == org_id, Operator.email == email)
            ).first()
            if owner is None or not reuse:
                invited = create_operator(
                    session, org_id=org_id, name="Bench Owner", role=OperatorRole.OWNER, email=email
                )
                operator_id, token = invited.operator.id, invited.invite_token
            else:
                operator_id = owner.id
                token = reinvite(session, org_id=org_id, operator_id=owner.id, now=now)
            assert token is not None
            signed = accept_invite(
                session, token=token, password=PASSWORD, now=now, user_agent="bench/inbox_pages"
            )
            return signed.token, operator_id
    finally:
        engine.dispose()


def _new_org(url: str, name: str) -> tuple[str, str]:
    engine = make_engine(url, pool_size=1)
    try:
        with session_scope(engine) as session:
            org, api_key = create_org(session, name=name, settings=OrgSettings())
            return org.id, api_key
    finally:
        engine.dispose()


def _rotate_key(url: str, name: str) -> tuple[str, str]:
    """A reused database's org by name, with a new API key (only its hash is stored)."""
    engine = make_engine(url, pool_size=1)
    try:
        with session_scope(engine) as session:
            org = session.exec(select(Org).where(Org.name == name)).one()
            api_key = API_KEY_PREFIX + uuid.uuid4().hex + uuid.uuid4().hex
            org.api_key_hash = hash_api_key(api_key)
            org.api_key_prefix = api_key[:10]
            session.add(org)
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


def load(url: str, specs: list[OrgSpec], *, seed: int) -> tuple[dict[str, Any], list[Dataset]]:
    """Create the orgs and their owners (through the services), then ``COPY`` their data in.

    The ``messages`` indexes without a constraint (the trigram index among them) are dropped
    for the load and created again from their own definitions after it, and foreign keys are
    not checked row by row (``session_replication_role = replica``): the data is consistent by
    construction. ``VACUUM (ANALYZE)`` last, as autovacuum would have done by then.
    """
    rng = random.Random(seed)
    now = time.time()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    datasets: list[Dataset] = []
    loaded: dict[str, Any] = {}
    orgs = []
    for spec in specs:
        org_id, api_key = _new_org(url, spec.name)
        token, operator_id = _sign_in(
            url, org_id=org_id, email=f"owner@{spec.label}.bench.example", reuse=False
        )
        orgs.append((spec, org_id, api_key, token, operator_id))
    with psycopg.connect(plain_url(url)) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = _message_indexes(conn)
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        for spec, org_id, api_key, token, operator_id in orgs:
            progress(f"loading {spec.label}: {spec.threads:,} threads, {spec.messages:,} messages")
            phase = time.perf_counter()
            stats = load_org(
                conn, spec=spec, org_id=org_id, operator_id=operator_id, rng=rng, now=now
            )
            timings[f"copy_{spec.label}_s"] = round(time.perf_counter() - phase, 1)
            plans: list[_ThreadPlan] = stats.pop("_plans")
            loaded[spec.label] = stats
            longest = max(plans, key=lambda plan: plan.count)
            datasets.append(
                Dataset(
                    label=spec.label,
                    org_id=org_id,
                    api_key=api_key,
                    session_token=token,
                    threads=spec.threads,
                    messages=spec.messages,
                    thread_ids=sorted(plan.id for plan in plans),
                    longest_thread_id=longest.id,
                    longest_thread_messages=longest.count,
                    fragments=search_fragments(conn, org_id, seed + 1),
                )
            )
        conn.commit()
        phase = time.perf_counter()
        for name, definition in indexes:
            progress(f"creating {name}")
            conn.execute(definition.encode())
        conn.commit()
        timings["indexes_s"] = round(time.perf_counter() - phase, 1)
    phase = time.perf_counter()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        for table in ("orgs", "contacts", "identities", "threads", "leads", "escalations"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        conn.execute("VACUUM (ANALYZE) messages")
    timings["vacuum_analyze_s"] = round(time.perf_counter() - phase, 1)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    return {"orgs": loaded, "timings": timings}, datasets


def search_fragments(conn: psycopg.Connection[Any], org_id: str, seed: int) -> list[str]:
    """Name searches as an operator types them, picked from the org's contacts with ``seed``
    (the same ones for a database however it was loaded or reused): the first 4-5 letters of
    three surnames and two first names, and one whole surname that only one or two contacts
    have (the search for one person: few matches, so the whole list is walked).
    """
    rows = conn.execute(
        "SELECT name, count(*) OVER (PARTITION BY split_part(name, ' ', 2)) FROM contacts "
        "WHERE org_id = %s AND name IS NOT NULL ORDER BY name",
        (org_id,),
    ).fetchall()
    rng = random.Random(seed)
    names = [(str(name).split(" ", 1), int(same)) for name, same in rows]
    picked = rng.sample(names, 5)
    fragments = [parts[-1][: rng.choice((4, 5))].lower() for parts, _ in picked[:3]]
    fragments += [parts[0][: rng.choice((4, 5))].lower() for parts, _ in picked[3:]]
    rare = [parts[-1] for parts, same in names if same <= 2]
    if rare:
        fragments.append(rng.choice(rare))
    return fragments


def reuse(url: str, specs: list[OrgSpec], *, seed: int) -> list[Dataset]:
    """The datasets of a database loaded by an earlier run (``--keep``), with fresh sessions
    and API keys."""
    datasets = []
    with psycopg.connect(plain_url(url)) as conn:
        for spec in specs:
            org_id, api_key = _rotate_key(url, spec.name)
            token, _ = _sign_in(
                url, org_id=org_id, email=f"owner@{spec.label}.bench.example", reuse=True
            )
            threads = [
                str(row[0])
                for row in conn.execute(
                    "SELECT id FROM threads WHERE org_id = %s ORDER BY id", (org_id,)
                )
            ]
            longest = conn.execute(
                "SELECT thread_id, count(*) FROM messages WHERE org_id = %s "
                "GROUP BY thread_id ORDER BY count(*) DESC LIMIT 1",
                (org_id,),
            ).fetchone()
            messages = conn.execute(
                "SELECT count(*) FROM messages WHERE org_id = %s", (org_id,)
            ).fetchone()
            assert longest is not None and messages is not None
            datasets.append(
                Dataset(
                    label=spec.label,
                    org_id=org_id,
                    api_key=api_key,
                    session_token=token,
                    threads=len(threads),
                    messages=int(messages[0]),
                    thread_ids=threads,
                    longest_thread_id=str(longest[0]),
                    longest_thread_messages=int(longest[1]),
                    fragments=search_fragments(conn, org_id, seed + 1),
                )
            )
    return datasets


# --- the server -----------------------------------------------------------------------------


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
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )


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


@dataclass(frozen=True)
class Server:
    """The app under test: its base URL and process id."""

    url: str
    pid: int

    def cpu_s(self) -> float:
        """CPU seconds (user and system) the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(kw_only=True)
class Route:
    """One measured request kind: its label and the path of request ``i`` for an org."""

    key: str
    label: str
    path: Callable[[Dataset, int], str]
    #: ``session`` (the operator's cookie, as a browser) or ``key`` (the org's API key).
    auth: str = "session"
    #: A string every good response contains.
    expect: str | None = None


@dataclass(kw_only=True)
class Samples:
    """Latencies of one route, org and concurrency, pooled over rounds."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sizes: list[int] = field(default_factory=list)
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


_NEXT = re.compile(r'href="/app/inbox\?[^"]*cursor=([^"&]+)"\s+rel="next"')
_EARLIER = re.compile(r'hx-get="/app/inbox/threads/[^/"]+/earlier\?before=([^"]+)"')


def _unquote(value: str) -> str:
    return httpx.QueryParams("v=" + html.unescape(value))["v"]


async def discover(http: httpx.AsyncClient, dataset: Dataset) -> dict[str, Any]:
    """What some routes need from the pages themselves: the second page's cursor, and a
    chain of the longest thread's earlier-message cursors."""
    first = await http.get("/app/inbox/list")
    first.raise_for_status()
    found = _NEXT.search(first.text)
    if found is None:
        raise RuntimeError(f"{dataset.label}: the first page has no next-page link")
    befores: list[str] = []
    pane = await http.get(f"/app/inbox/threads/{dataset.longest_thread_id}")
    pane.raise_for_status()
    text = pane.text
    while len(befores) < EARLIER_PAGES and (link := _EARLIER.search(text)):
        befores.append(_unquote(link.group(1)))
        page = await http.get(
            f"/app/inbox/threads/{dataset.longest_thread_id}/earlier",
            params={"before": befores[-1]},
        )
        page.raise_for_status()
        text = page.text
    if not befores:
        raise RuntimeError(f"{dataset.label}: the longest thread has no earlier messages")
    return {"cursor": _unquote(found.group(1)), "befores": befores}


def routes(found: dict[str, dict[str, Any]], seed: int) -> list[Route]:
    """Every measured route; ``found`` is :func:`discover`'s result by org label."""
    picks: dict[str, list[str]] = {}

    def random_thread(dataset: Dataset, i: int) -> str:
        if dataset.label not in picks:
            picks[dataset.label] = random.Random(seed + 2).sample(
                dataset.thread_ids, min(len(dataset.thread_ids), 5000)
            )
        chosen = picks[dataset.label]
        return f"/app/inbox/threads/{chosen[i % len(chosen)]}"

    def earlier(dataset: Dataset, i: int) -> str:
        befores: list[str] = found[dataset.label]["befores"]
        query = httpx.QueryParams({"before": befores[i % len(befores)]})
        return f"/app/inbox/threads/{dataset.longest_thread_id}/earlier?{query}"

    def search(dataset: Dataset, i: int) -> str:
        return "/app/inbox/list?" + str(
            httpx.QueryParams({"q": dataset.fragments[i % len(dataset.fragments)]})
        )

    def text_search(dataset: Dataset, i: int) -> str:
        query = httpx.QueryParams({"q": TEXT_SEARCHES[i % len(TEXT_SEARCHES)]})
        return f"/app/inbox/list?{query}"

    def next_page(dataset: Dataset, i: int) -> str:
        return "/app/inbox/list?" + str(
            httpx.QueryParams({"cursor": found[dataset.label]["cursor"]})
        )

    return [
        Route(
            key="list",
            label="list (recent)",
            path=lambda d, i: "/app/inbox/list",
            expect="thread-item",
        ),
        Route(
            key="unread",
            label="list ?status=unread",
            path=lambda d, i: "/app/inbox/list?status=unread",
            expect="thread-item",
        ),
        Route(key="search", label="list ?q=<name fragment>", path=search, expect="thread-list"),
        Route(
            key="search_text",
            label="list ?q=<word in many messages>",
            path=text_search,
            expect="thread-item",
        ),
        Route(key="next", label="list, next page (cursor)", path=next_page, expect="thread-item"),
        Route(
            key="pane_random",
            label="thread pane, random thread",
            path=random_thread,
            expect="thread-pane",
        ),
        Route(
            key="pane_longest",
            label="thread pane, longest thread",
            path=lambda d, i: f"/app/inbox/threads/{d.longest_thread_id}",
            expect="thread-pane",
        ),
        Route(key="earlier", label="earlier messages, longest", path=earlier, expect="msg "),
        Route(
            key="v1_list",
            label="JSON /v1/threads?limit=30",
            path=lambda d, i: "/v1/threads?limit=30",
            auth="key",
            expect='"items"',
        ),
        Route(
            key="v1_thread",
            label="JSON /v1/threads/{longest}?limit=50",
            path=lambda d, i: f"/v1/threads/{d.longest_thread_id}?limit=50",
            auth="key",
            expect='"messages"',
        ),
    ]


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
    headers = (
        {"HX-Request": "true", "Cookie": f"kw_session={dataset.session_token}"}
        if route.auth == "session"
        else {"Authorization": f"Bearer {dataset.api_key}"}
    )

    async def run(indexes: Iterator[int], measured: bool) -> None:
        for index in indexes:
            path = route.path(dataset, index)
            started = time.perf_counter()
            try:
                response = await http.get(path, headers=headers)
            except httpx.HTTPError as error:
                into.errors[type(error).__name__] += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                into.errors[f"HTTP {response.status_code}"] += 1
            elif route.expect is not None and route.expect not in response.text:
                into.errors["unexpected body"] += 1
            elif measured:
                into.latencies_ms.append(elapsed)
                into.sizes.append(len(response.content))

    warm = iter(range(warmup))
    await asyncio.gather(*(run(warm, False) for _ in range(concurrency)))
    measured = iter(range(warmup, warmup + count))
    started, cpu = time.perf_counter(), server.cpu_s()
    await asyncio.gather(*(run(measured, True) for _ in range(concurrency)))
    into.elapsed_s += time.perf_counter() - started
    into.server_cpu_s += server.cpu_s() - cpu


async def measure(
    server: Server, datasets: list[Dataset], args: argparse.Namespace
) -> dict[tuple[str, str, int], Samples]:
    """Every route for every org at every concurrency, over ``args.rounds`` rounds; the org
    order alternates from round to round, so drift hits both orgs alike."""
    most = max(args.concurrency)
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    samples: dict[tuple[str, str, int], Samples] = {}
    async with httpx.AsyncClient(
        base_url=server.url, limits=limits, timeout=httpx.Timeout(60.0)
    ) as http:
        found = {}
        for dataset in datasets:
            http.headers["Cookie"] = f"kw_session={dataset.session_token}"
            found[dataset.label] = await discover(http, dataset)
        del http.headers["Cookie"]
        measured = routes(found, args.seed)
        for round_index in range(args.rounds):
            order = datasets if round_index % 2 == 0 else list(reversed(datasets))
            for route in measured:
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
                    base_samples = samples.get((route.key, BASELINE, concurrency))
                    progress(
                        f"round {round_index + 1} {route.label:<36} c={concurrency} "
                        f"big p95 {_p(big, 0.95):7.1f} ms  "
                        f"baseline p95 {_p(base_samples, 0.95):6.1f} ms  "
                        f"errors {_errors(big) + _errors(base_samples)}"
                    )
    return samples


def _p(samples: Samples | None, fraction: float) -> float:
    return percentile(samples.latencies_ms, fraction) if samples else float("nan")


def _errors(samples: Samples | None) -> int:
    return sum(samples.errors.values()) if samples else 0


# --- reporting ------------------------------------------------------------------------------


def summarize(
    samples: dict[tuple[str, str, int], Samples], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """One row per route and concurrency: the big org's percentiles, the baseline's, the
    ratio of their p95s and the verdict against ``TARGET_P95_MS``."""
    rows = []
    labels = {route.key: route.label for route in routes({}, args.seed)}
    keys = sorted(
        {(key, conc) for key, _, conc in samples}, key=lambda k: (k[1], list(labels).index(k[0]))
    )
    for key, concurrency in keys:
        big = samples[(key, BIG, concurrency)]
        base = samples[(key, BASELINE, concurrency)]
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


def _stats(samples: Samples) -> dict[str, Any]:
    return {
        "requests": len(samples.latencies_ms),
        "errors": dict(samples.errors),
        "p50_ms": _p(samples, 0.50),
        "p95_ms": _p(samples, 0.95),
        "p99_ms": _p(samples, 0.99),
        "max_ms": max(samples.latencies_ms, default=float("nan")),
        "mean_kb": sum(samples.sizes) / len(samples.sizes) / 1024 if samples.sizes else None,
        "req_per_s": len(samples.latencies_ms) / samples.elapsed_s if samples.elapsed_s else None,
        "server_cpu_ms_per_req": (
            samples.server_cpu_s * 1000 / (len(samples.latencies_ms) + sum(samples.errors.values()))
            if samples.latencies_ms
            else None
        ),
    }


def report(results: dict[str, Any]) -> str:
    """The human-readable table."""
    big, base = results["datasets"][BIG], results["datasets"][BASELINE]
    lines = [
        f"PostgreSQL {results['postgres']['version']}, shared_buffers "
        f"{results['postgres']['shared_buffers']}; app under uvicorn in a child process; "
        f"cpus {results['machine']['cpus']}",
        f"big: {big['threads']:,} threads, {big['messages']:,} messages (longest thread "
        f"{big['longest_thread_messages']:,}); baseline: {base['threads']:,} threads, "
        f"{base['messages']:,} messages (longest {base['longest_thread_messages']:,})",
        f"{results['requests']} requests x {results['rounds']} rounds per route, org and "
        f"concurrency after {results['warmup']} warm-up; target p95 < {TARGET_P95_MS:.0f} ms",
        "",
        f"{'route':<38}{'conc':>5}{'p50':>8}{'p95':>8}{'p99':>8}{'base p95':>10}{'ratio':>7}"
        f"{'cpu':>7}{'KB':>5}{'err':>5}  target",
    ]
    for row in results["rows"]:
        errors = sum(row["big"]["errors"].values()) + sum(row["baseline"]["errors"].values())
        ratio = "-" if row["ratio_p95"] is None else f"{row['ratio_p95']:.1f}"
        size = row["big"]["mean_kb"]
        cpu = row["big"]["server_cpu_ms_per_req"]
        lines.append(
            f"{row['label']:<38}{row['concurrency']:>5}{row['big']['p50_ms']:>8.1f}"
            f"{row['big']['p95_ms']:>8.1f}{row['big']['p99_ms']:>8.1f}"
            f"{row['baseline']['p95_ms']:>10.1f}{ratio:>7}"
            f"{'-' if cpu is None else f'{cpu:.1f}':>7}"
            f"{'-' if size is None else f'{size:.0f}':>5}{errors:>5}  "
            f"{'PASS' if row['pass'] else 'FAIL'}"
        )
    lines.append("")
    lines.append(
        "latencies in ms (big org); ratio = big p95 / baseline p95; cpu = the API process's "
        "CPU ms per request; KB = mean response size"
    )
    timings = results.get("load", {}).get("timings")
    if timings:
        lines.append(f"load: {timings}")
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
        description="Time the inbox pages at 60k threads / 1M messages against a small org."
    )
    parser.add_argument("--threads", type=int, default=60_000, help="threads of the big org")
    parser.add_argument("--messages", type=int, default=1_000_000, help="its messages")
    parser.add_argument("--baseline-threads", type=int, default=100)
    parser.add_argument("--baseline-messages", type=int, default=1_000)
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4], help="requests in flight"
    )
    parser.add_argument(
        "--requests", type=int, default=150, help="measured requests per route, org, round"
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests first")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating org order")
    parser.add_argument("--routes", nargs="+", help="measure only these routes (keys)")
    parser.add_argument("--seed", type=int, default=15, help="random seed of the data")
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
    if args.messages < args.threads or args.baseline_messages < args.baseline_threads:
        parser.error("every thread needs a message: --messages must be at least --threads")
    return args


def _postgres(url: str) -> dict[str, str]:
    with psycopg.connect(plain_url(url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        buffers = conn.execute("SHOW shared_buffers").fetchone()
        work_mem = conn.execute("SHOW work_mem").fetchone()
    assert version and buffers and work_mem
    return {
        "version": str(version[0]),
        "shared_buffers": str(buffers[0]),
        "work_mem": str(work_mem[0]),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, load, measure and print the results."""
    args = parse_args(argv)
    if args.serve_api:
        serve_api(*args.serve_api)
        return
    specs = [
        OrgSpec(label=BIG, name="Bench big org", threads=args.threads, messages=args.messages),
        OrgSpec(
            label=BASELINE,
            name="Bench baseline org",
            threads=args.baseline_threads,
            messages=args.baseline_messages,
        ),
    ]
    started = time.monotonic()
    name = args.database or create_database(args.admin_url)
    url = database_url(args.admin_url, name)
    keep = args.keep or args.load_only or bool(args.database)
    results: dict[str, Any] = {"database": name}
    try:
        upgrade(url)
        if args.database:
            progress(f"reusing database {name}")
            datasets = reuse(url, specs, seed=args.seed)
        else:
            progress(f"loading database {name}")
            results["load"], datasets = load(url, specs, seed=args.seed)
            progress(
                f"loaded in {results['load']['timings']['total_s']}s: {results['load']['timings']}"
            )
            for label, stats in results["load"]["orgs"].items():
                progress(f"{label}: {json.dumps(stats)}")
        if args.load_only:
            progress(f"database {name} kept; measure with --database {name}")
            return
        with api_process(url) as server:
            samples = asyncio.run(measure(server, datasets, args))
        results |= {
            "postgres": _postgres(url),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "server": "uvicorn (one process, a child of the bench), httpx client",
            "requests": args.requests,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "target_p95_ms": TARGET_P95_MS,
            "datasets": {
                d.label: {
                    "threads": d.threads,
                    "messages": d.messages,
                    "longest_thread_messages": d.longest_thread_messages,
                    "search_fragments": d.fragments,
                }
                for d in datasets
            },
            "rows": summarize(samples, args),
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
