"""The worker's database work per lead, without Temporal: CPU and statements of each activity
a new lead's Lead workflow runs before it waits (record the lead, send the first touch,
record the stage), called one lead after another on one thread.

Run ``python -m bench.lead_cpu`` from the repository root (``--help`` lists the options).
With ``--baseline REF`` it also runs the same measurement on that commit (a git worktree
under a temporary directory), alternating rounds, and prints both and the ratio.

Each round migrates a fresh SQLite file (or uses ``--database-url``), creates an org like
the demo one with quiet hours off, records ``--leads`` intake receipts as the API does
(``prepare_intake``), then for each lead runs, through ``temporalio.testing.ActivityEnvironment``:
``record_lead`` (with the workflow's ``now``), ``send_message`` (the first touch, dry run)
and ``record_stage`` (contacted). It reports the thread's CPU time per lead for each, and
the SQL statements each issued.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ACTIVITIES = ("prepare_intake", "record_lead", "send_message", "record_stage")


def measure(leads: int, database_url: str | None) -> dict[str, Any]:
    """One round in this interpreter: CPU ms and statements per lead, per activity."""
    from sqlalchemy import event
    from temporalio.testing import ActivityEnvironment

    from activities.messages import MessageActivities, SendMessageInput
    from activities.records import LeadRecordActivities, RecordLeadInput, RecordStageInput
    from models.database import make_engine, session_scope, transaction
    from models.migrate import upgrade
    from models.schemas import OrgSettings, QuietHours
    from models.services.intake import prepare_intake
    from models.services.orgs import create_org
    from models.tables import utcnow
    from models.values import Channel, Stage
    from workers.registry import dry_run_adapters

    with tempfile.TemporaryDirectory() as data:
        url = database_url or f"sqlite:///{data}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        statements: Counter[str] = Counter()
        current = ["setup"]

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            statements[current[0]] += 1

        with session_scope(engine) as session:
            org, _ = create_org(
                session,
                name=f"Bench {uuid.uuid4().hex[:6]}",
                settings=OrgSettings(
                    timezone="Europe/London",
                    default_region="GB",
                    quiet_hours=QuietHours(sms=None, whatsapp=None, voice=None, email=None),
                ),
            )
        adapters = dry_run_adapters()
        records = LeadRecordActivities(engine=engine)
        messages = MessageActivities(
            engine=engine, senders=adapters.senders, public_url=adapters.public_url
        )
        env = ActivityEnvironment()
        cpu: dict[str, float] = dict.fromkeys(ACTIVITIES, 0.0)
        base = uuid.uuid4().int % 10**5

        def timed(name: str, call: Callable[..., Any], *args: Any) -> Any:
            current[0] = name
            start = time.thread_time()
            result = call(*args)
            cpu[name] += time.thread_time() - start
            return result

        for i in range(leads):
            payload = {
                "name": "Bench Lead",
                "phone": f"+4479111{(base + i) % 10**5:05d}",
                "consent": {"sms": True},
                "source": "bench",
            }
            prepare = functools.partial(
                transaction, engine, prepare_intake, org_id=org.id, event_id=None, kind="lead"
            )
            prepared = timed("prepare_intake", functools.partial(prepare, payload=payload))
            lead_id = f"ld_{uuid.uuid4().hex}"
            workflow_id = f"lead-{org.id}-{prepared.contact_key}"
            record = RecordLeadInput(
                org_id=org.id,
                lead_id=lead_id,
                workflow_id=workflow_id,
                receipt_id=prepared.receipt_id,
                now=utcnow(),
            )
            timed("record_lead", env.run, records.record_lead, record)
            # As the tree's Lead workflow does: its send moves the lead to contacted where
            # the send can (``stage_when_sent``), else a ``record_stage`` follows.
            with_send = "stage_when_sent" in SendMessageInput.__dataclass_fields__
            contacted = {"stage_when_sent": Stage.CONTACTED, "stage_reason": "first touch sent"}
            touch = SendMessageInput(
                org_id=org.id,
                lead_id=lead_id,
                channel=Channel.SMS,
                template="first_touch",
                idempotency_key=f"{workflow_id}/{lead_id}/touch-1",
                **(contacted if with_send else {}),  # type: ignore[arg-type]
            )
            timed("send_message", env.run, messages.send_message, touch)
            if not with_send:
                stage = RecordStageInput(
                    org_id=org.id, lead_id=lead_id, stage=Stage.CONTACTED, reason="first touch sent"
                )
                timed("record_stage", env.run, records.record_stage, stage)
        engine.dispose()
    return {
        name: {"cpu_ms": 1000 * cpu[name] / leads, "statements": statements[name] / leads}
        for name in ACTIVITIES
    }


def run_in(tree: Path, leads: int, database_url: str | None) -> dict[str, Any]:
    """One round in a fresh interpreter in ``tree`` (this script copied in: the same
    measurement in both trees)."""
    script = tree / "bench" / "lead_cpu.py"
    if script.resolve() != Path(__file__).resolve():
        script.write_text(Path(__file__).read_text())
    command = [sys.executable, "-m", "bench.lead_cpu", "--round", "--leads", str(leads)]
    if database_url:
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPWARM_")}
    env["KEEPWARM_LOG_LEVEL"] = "WARNING"
    out = subprocess.run(
        command, cwd=tree, env=env, check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=300, help="leads per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per tree")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--baseline", metavar="REF", help="also measure this commit")
    parser.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:
        print(json.dumps(measure(args.leads, args.database_url)))
        return
    here = Path(__file__).resolve().parent.parent
    trees = {"this tree": here}
    with tempfile.TemporaryDirectory() as scratch:
        if args.baseline:
            baseline = Path(scratch) / "baseline"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(baseline), args.baseline],
                cwd=here,
                check=True,
                capture_output=True,
            )
            trees = {args.baseline: baseline, "this tree": here}
        try:
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for name in order:
                    print(f"round {round_ + 1}: {name}", file=sys.stderr)
                    results[name].append(run_in(trees[name], args.leads, args.database_url))
        finally:
            if args.baseline:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(baseline)], cwd=here, check=False
                )
    print(f"per lead, {args.leads} leads x {args.rounds} rounds (CPU ms: best round)")
    print(f"{'activity':16}" + "".join(f"{name[:22]:>26}" for name in trees))
    totals = {name: 0.0 for name in trees}
    for activity in ACTIVITIES:
        cells = []
        for name in trees:
            best = min(r[activity]["cpu_ms"] for r in results[name])
            totals[name] += best
            cells.append(f"{best:8.2f} ms {results[name][0][activity]['statements']:5.1f} stmts")
        print(f"{activity:16}" + "".join(f"{cell:>26}" for cell in cells))
    print(f"{'total':16}" + "".join(f"{totals[name]:20.2f} ms" for name in trees))
    if args.baseline:
        print(f"baseline / this tree: x{totals[args.baseline] / totals['this tree']:.2f}")


if __name__ == "__main__":
    main()
