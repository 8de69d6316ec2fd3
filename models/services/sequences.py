"""Nudge sequences as use cases: replace a sequence, and read a lead's next step as it stands."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.database import locking
from models.payloads import NextStep
from models.rules.experiments import Tally, allocation, bucket, choose, experiment_key
from models.rules.sequences import DEFAULTS, local_due
from models.schemas import SequenceIn, SequencePublic, SequenceStep, Variant
from models.store.experiments import sequence_figures
from models.store.leads import lead_timezone
from models.store.messages import variant_sent
from models.store.orgs import settings_for
from models.tables import Sequence, utcnow
from models.values import new_id


def put_sequence(session: Session, *, org_id: str, name: str, body: SequenceIn) -> SequencePublic:
    """Create or replace the named sequence; running leads see it from their next step."""
    row = session.exec(
        locking(select(Sequence).where(Sequence.org_id == org_id, Sequence.name == name))
    ).first()
    definition = body.model_dump(mode="json")
    if row is None:
        row = Sequence(id=new_id("seq"), org_id=org_id, name=name, definition=definition)
    else:
        row.definition = definition
        row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return SequencePublic(name=name, default=False, **definition)


def sequence_definition(session: Session, *, org_id: str, name: str) -> SequenceIn | None:
    """The org's sequence ``name`` as it stands: its own, else the built-in default of that
    name (``None``: neither)."""
    row = session.exec(
        select(Sequence).where(Sequence.org_id == org_id, Sequence.name == name)
    ).first()
    return SequenceIn.model_validate(row.definition) if row else DEFAULTS.get(name)


def next_step(
    session: Session,
    *,
    org_id: str,
    name: str,
    index: int,
    lead_id: str | None = None,
    anchor: datetime | None = None,
) -> NextStep | None:
    """Step ``index`` of the sequence as it stands now; ``None`` past its steps or its cap.

    With ``lead_id`` and ``anchor`` (when the previous step was due), the step's ``due_at`` is
    worked out in the lead's local time.
    """
    definition = sequence_definition(session, org_id=org_id, name=name)
    if definition is None:
        return None
    total = min(len(definition.steps), definition.max_attempts)
    if index >= total:
        return None
    step = definition.steps[index]
    channel, template, variant = step.channel, step.template or "", None
    experiment = step_experiment(step)
    if step.variants is not None and lead_id is not None:
        chosen = _variant(
            session, org_id=org_id, sequence=name, index=index, lead_id=lead_id, step=step
        )
        channel, template, variant = chosen.channel or step.channel, chosen.template, chosen.name
    due_at = zone = due_local = None
    if lead_id is not None and anchor is not None:
        zone = lead_timezone(session, org_id=org_id, lead_id=lead_id)
        due_at = local_due(anchor, step.after, ZoneInfo(zone))
        due_local = f"{due_at.astimezone(ZoneInfo(zone)):%a %d %b %H:%M} {zone}"
    return NextStep(
        index=index,
        total=total,
        after_s=int(step.after.total_seconds()),
        channel=channel,
        template=template,
        due_at=due_at,
        timezone=zone,
        due_local=due_local,
        stop_on=tuple(definition.stop_on),
        variant=variant,
        fallback=tuple(step.fallback),
        experiment=experiment if variant is not None else None,
    )


#: How long a step's Thompson shares are reused before its figures are counted again: an
#: allocation that lags a minute behind its data is as good, and a busy step is not counted
#: for every lead.
THOMPSON_TTL_S = 60.0
_shares: dict[tuple[str, str, int, str, str], tuple[float, list[float]]] = {}


def _thompson_shares(
    session: Session,
    *,
    org_id: str,
    sequence: str,
    number: int,
    step: SequenceStep,
    names: list[str],
) -> list[float]:
    """Step ``number``'s shares under Thompson sampling, from the figures of this version of
    its experiment in the org's provider mode (reused for ``THOMPSON_TTL_S``)."""
    experiment = step_experiment(step) or ""
    mode = settings_for(session, org_id=org_id).provider_mode.value
    key = (org_id, sequence, number, experiment, mode)
    cached = _shares.get(key)
    if cached is not None and time.monotonic() - cached[0] < THOMPSON_TTL_S:
        return cached[1]
    figures = {
        row.variant: row
        for row in sequence_figures(
            session,
            org_id=org_id,
            sequence=sequence,
            step=number,
            mode=mode,
            experiment=experiment,
            outcomes=False,
        )
    }
    tallies = [
        Tally(
            name=name,
            sent=figures[name].sent if name in figures else 0,
            replied=figures[name].replied if name in figures else 0,
        )
        for name in names
    ]
    shares = allocation(tallies, weights=step.weights, thompson=True)
    _shares[key] = (time.monotonic(), shares)
    return shares


def step_experiment(step: SequenceStep) -> str | None:
    """The version of the step's experiment (``None``: the step has no variants)."""
    if step.variants is None:
        return None
    return experiment_key(
        [(v.name, v.template, (v.channel or step.channel).value) for v in step.variants]
    )


def _variant(
    session: Session, *, org_id: str, sequence: str, index: int, lead_id: str, step: SequenceStep
) -> Variant:
    """The variant of step ``index`` the lead gets: the one already sent to it, else the one
    its hash falls on under the step's allocation (``rules.experiments``)."""
    assert step.variants is not None
    variants = {variant.name: variant for variant in step.variants}
    sent = variant_sent(session, lead_id=lead_id, sequence=sequence, step=index + 1)
    if sent in variants:
        return variants[sent]
    names = list(variants)
    shares: list[float] = list(step.weights or [1.0] * len(names))
    if step.allocation == "thompson":
        shares = _thompson_shares(
            session, org_id=org_id, sequence=sequence, number=index + 1, step=step, names=names
        )
    return variants[choose(names, shares, bucket(lead_id, sequence, str(index + 1)))]
