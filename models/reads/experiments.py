"""A sequence's results: each step's variants, what their sends led to, how likely each is
best and a verdict in words (``GET /v1/sequences/{name}/results``, the sequence's page)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models.errors import NotFound
from models.rules.experiments import MIN_SAMPLE, Tally, probability_best, verdict
from models.schemas import SequenceStep
from models.schemas.experiments import SequenceResults, StepResult, VariantResult
from models.services.sequences import sequence_definition, step_experiment
from models.store.experiments import StepFigures, sequence_figures
from models.store.orgs import settings_for
from models.values import Channel


def sequence_results(
    session: Session,
    *,
    org_id: str,
    name: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> SequenceResults:
    """The sequence's results for sends in ``[start, end)``: every step it has now (and any
    it had that still has sends in the window), each variant's figures; ``NotFound`` for a
    sequence the org neither has nor gets by default."""
    definition = sequence_definition(session, org_id=org_id, name=name)
    if definition is None:
        raise NotFound(name)
    # Dry-run sends are a rehearsal: a live org's figures are its live sends alone.
    mode = settings_for(session, org_id=org_id).provider_mode.value
    figures = sequence_figures(
        session, org_id=org_id, sequence=name, sent_from=start, sent_to=end, mode=mode
    )
    by_step: dict[int, list[StepFigures]] = {}
    for row in figures:
        by_step.setdefault(row.step, []).append(row)
    numbers = sorted(set(range(1, len(definition.steps) + 1)) | set(by_step))
    steps = [
        _step(
            number,
            definition.steps[number - 1] if number <= len(definition.steps) else None,
            by_step.get(number, []),
        )
        for number in numbers
    ]
    return SequenceResults(
        name=name, start=start, end=end, mode=mode, min_sample=MIN_SAMPLE, steps=steps
    )


def _step(number: int, step: SequenceStep | None, rows: list[StepFigures]) -> StepResult:
    """One step's results: its current variants in order (with no sends yet too), then the
    sends of earlier versions of the step (a variant removed, a text since edited, the plain
    template before the experiment), which are shown but never judged."""
    experiment = step is not None and step.variants is not None
    key = step_experiment(step) if step is not None else None
    current: list[tuple[str | None, Channel | None]] = []
    if step is not None and step.variants is not None:
        current = [(v.name, v.channel or step.channel) for v in step.variants]
    elif step is not None:
        current = [(None, step.channel)]
    judged = {(name, key) for name, _ in current}
    now = {row.variant: row for row in rows if (row.variant, row.experiment) in judged}
    earlier = [row for row in rows if (row.variant, row.experiment) not in judged]
    tallies = [_tally(name, now.get(name)) for name, _ in current] if experiment else []
    best = probability_best(tallies) if experiment else []
    variants = [
        _variant(name, channel, now.get(name), best[i] if experiment else None)
        for i, (name, channel) in enumerate(current)
    ] + [
        _variant(row.variant, None, row, None, earlier=True)
        for row in sorted(earlier, key=lambda r: (r.variant or "", r.experiment or ""))
    ]
    if experiment:
        words = verdict(tallies, best)
    elif step is None:
        words = "step removed from the sequence"
    else:
        words = "no experiment: one version only"
    return StepResult(step=number, experiment=experiment, variants=variants, verdict=words)


def _tally(name: str | None, row: StepFigures | None) -> Tally:
    return Tally(name=name or "", sent=row.sent if row else 0, replied=row.replied if row else 0)


def _variant(
    name: str | None,
    channel: Channel | None,
    row: StepFigures | None,
    best: float | None,
    *,
    earlier: bool = False,
) -> VariantResult:
    sent = row.sent if row else 0
    return VariantResult(
        name=name,
        channel=channel,
        earlier=earlier,
        sent=sent,
        replied=row.replied if row else 0,
        booked=row.booked if row else 0,
        converted=row.converted if row else 0,
        reply_rate=round(row.replied / sent, 4) if row and sent else 0.0,
        conversion_rate=round(row.converted / sent, 4) if row and sent else 0.0,
        probability_best=round(best, 4) if best is not None else None,
    )
