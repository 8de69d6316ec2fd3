"""The owner's sequences editor and scoring rules with a preview
(``/app/settings/sequences``, ``/app/settings/scoring``).

A sequence is saved by the same use case as ``PUT /v1/sequences/{name}`` and validated by the
same schema (``SequenceIn``); the scoring rules by ``ScoringRules``, as ``PATCH /v1/orgs/me``
validates them. The scoring preview runs the engine's own rule (``score_lead``) on the rules
as typed, before they are saved. Every saved change goes on the settings audit list.

A step is one text or an experiment with 2 to 4 versions of it; the page shows each
step's results (``reads.experiments.sequence_results``) under the editor. A step's fallback
is one channel on the page: a longer list saved through the API is kept as it is while its
first channel is unchanged (and shown after it).
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from api.deps import DatabaseDep, OrgCacheDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.reads.experiments import sequence_results
from models.reads.sequence_choice import CART, sequence_by_intent
from models.reads.sequences import list_sequences
from models.rules.experiments import MIN_SAMPLE
from models.rules.messages import SUBJECTS
from models.rules.orgs import org_settings
from models.rules.scoring import Scored, score_lead
from models.rules.settings_changes import describe_changes, summarize
from models.schemas import (
    TEMPLATE_FIELDS,
    ScoringRules,
    SequenceIn,
    SequencePublic,
    SequenceStep,
)
from models.schemas.experiments import SequenceResults, StepResult, VariantResult
from models.schemas.intake import SEQUENCE_NAME, SequenceName, check_template
from models.services.sequence_editing import SequenceSaved, duration_words, save_sequence
from models.services.settings import change_settings
from models.services.sign_in import Current
from models.tables import utcnow
from models.values import Channel, Intent, OperatorRole

#: The audit list's section for scoring changes.
SCORING = "scoring"

router = APIRouter(prefix="/app", include_in_schema=False)

NameParam = Annotated[SequenceName, Path()]

INTENTS = {
    Intent.HIGH_VALUE.value: "High value",
    Intent.ENGAGED.value: "Engaged",
    Intent.WINDOW_SHOPPER.value: "Window shopper",
    Intent.BROWSING.value: "Browsing",
}
CHANNELS = {
    Channel.SMS.value: "SMS",
    Channel.WHATSAPP.value: "WhatsApp",
    Channel.EMAIL.value: "Email",
    Channel.VOICE.value: "Voice call",
}
STOPS = {"reply": "They reply", "booking": "They book", "payment": "They pay"}
STOP_VERBS = {"reply": "reply", "booking": "book", "payment": "pay"}
#: Units a step's wait is typed in, largest first (how a saved wait is shown).
UNITS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
#: What the placeholders stand for in a preview.
SAMPLE = {"first_name": "Ada", "name": "Ada Lovelace"}
#: The subject of a sequence's emails (``models.services.outbound``: the default subject, as
#: sequences have none of their own).
SEQUENCE_SUBJECT = SUBJECTS.get("sequence", "A note from {org_name}")
#: The channels a version or a fallback may use: messages, not calls.
MESSAGE_CHANNELS = {key: label for key, label in CHANNELS.items() if key != Channel.VOICE.value}
#: Versions a step may test at most (``SequenceStep.variants``).
MAX_VARIANTS = 4
#: Blank rows under each list of the scoring form, for adding one.
BLANK_ROWS = 3


def _owner(me: Current) -> None:
    if me.operator.role != OperatorRole.OWNER:
        raise ApiError(403, "Only the owner can change settings.", code="owner_only")


def _number(value: Any) -> Any:
    """A bound as a person writes it: 0, not 0.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _message(problem: Any) -> str:
    """pydantic's message, as a person would say it."""
    kind, ctx = problem["type"], {k: _number(v) for k, v in (problem.get("ctx") or {}).items()}
    if kind == "int_parsing" or kind == "int_from_float":
        return "Enter a whole number."
    if kind == "float_parsing":
        return "Enter a number."
    if kind == "greater_than_equal":
        return f"Must be {ctx['ge']} or more."
    if kind == "greater_than":
        return f"Must be more than {ctx['gt']}."
    if kind == "less_than_equal":
        return f"Must be {ctx['le']} or less."
    if kind == "enum":
        return "Choose one of the options."
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "Choose at least one." if problem["loc"][-1] != "[key]" else "Can't be empty."
    if kind == "string_too_short":
        return "Can't be empty."
    if kind == "string_too_long":
        return f"At most {ctx['max_length']} characters."
    if kind == "too_long":
        unit = " characters" if problem["loc"][-1] == "[key]" else ""
        return f"At most {ctx['max_length']}{unit}."
    text = str(problem["msg"]).removeprefix("Value error, ")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# --- sequences -----------------------------------------------------------------------------


@dataclass
class VariantForm:
    """One version of a step's text as typed: its name, text, share of the step's leads
    (empty: equal shares) and channel (empty: the step's)."""

    name: str
    template: str
    weight: str = ""
    channel: str = ""


@dataclass
class StepForm:
    """One step as typed: its wait (an amount and a unit), channel and text, or the versions
    it tests and how leads are shared among them, and its fallback channels."""

    amount: str
    unit: str
    channel: str
    template: str = ""
    variants: list[VariantForm] = field(default_factory=list)
    allocation: str = "weights"
    fallback: list[str] = field(default_factory=list)


@dataclass
class SequenceForm:
    """The sequence editor's fields as typed."""

    applies_to: list[str]
    stop_on: list[str]
    max_attempts: str
    steps: list[StepForm]


def _new_step() -> StepForm:
    """A new sequence starts with one step like this."""
    return StepForm(amount="1", unit="days", channel=Channel.EMAIL.value)


def _wait(after: timedelta) -> tuple[str, str]:
    seconds = after.total_seconds()
    for unit, size in UNITS.items():
        if seconds >= size and seconds % size == 0:
            return str(int(seconds // size)), unit
    return f"{seconds:.3f}".rstrip("0").rstrip("."), "seconds"


def _weight(weight: float) -> str:
    """A saved share as typed back: short, yet read back as the same number."""
    shown = f"{weight:g}"
    return shown if float(shown) == weight else repr(weight)


def _step_form(step: SequenceStep) -> StepForm:
    amount, unit = _wait(step.after)
    weights = step.weights
    return StepForm(
        amount=amount,
        unit=unit,
        channel=step.channel.value,
        template=step.template or "",
        variants=[
            VariantForm(
                name=variant.name,
                template=variant.template,
                weight=_weight(weights[j]) if weights else "",
                channel=variant.channel.value if variant.channel else "",
            )
            for j, variant in enumerate(step.variants or [])
        ],
        allocation=step.allocation,
        fallback=[channel.value for channel in step.fallback],
    )


def _form_of(sequence: SequenceIn) -> SequenceForm:
    return SequenceForm(
        applies_to=[intent.value for intent in sequence.applies_to],
        stop_on=list(sequence.stop_on),
        max_attempts=str(sequence.max_attempts),
        steps=[_step_form(step) for step in sequence.steps],
    )


def _text(form: FormData, key: str) -> str:
    return str(form.get(key, "")).replace("\r\n", "\n")


def _read_step(form: FormData, i: int) -> StepForm:
    prefix = f"steps-{i}"
    versions = sorted(
        {int(m[1]) for key in form if (m := re.fullmatch(rf"{prefix}-variants-(\d)-template", key))}
    )
    first = str(form.get(f"{prefix}-fallback", ""))
    # The rest of a fallback list saved through the API rides along unseen (a hidden field).
    more = [c for c in str(form.get(f"{prefix}-fallback-more", "")).split(",") if c]
    return StepForm(
        amount=str(form.get(f"{prefix}-amount", "")).strip(),
        unit=str(form.get(f"{prefix}-unit", "")),
        channel=str(form.get(f"{prefix}-channel", "")),
        template=_text(form, f"{prefix}-template") if not versions else "",
        variants=[
            VariantForm(
                name=str(form.get(f"{prefix}-variants-{j}-name", "")).strip(),
                template=_text(form, f"{prefix}-variants-{j}-template"),
                weight=str(form.get(f"{prefix}-variants-{j}-weight", "")).strip(),
                channel=str(form.get(f"{prefix}-variants-{j}-channel", "")),
            )
            for j in versions
        ],
        allocation="thompson"
        if versions and form.get(f"{prefix}-allocation") == "thompson"
        else "weights",
        fallback=[first, *(c for c in more if c != first)] if first else [],
    )


def _read_sequence_form(form: FormData) -> SequenceForm:
    indices = sorted(
        {int(m[1]) for key in form if (m := re.fullmatch(r"steps-(\d{1,2})-amount", key))}
    )
    return SequenceForm(
        applies_to=[str(v) for v in form.getlist("applies_to")],
        stop_on=[str(v) for v in form.getlist("stop_on")],
        max_attempts=str(form.get("max_attempts", "")).strip(),
        steps=[_read_step(form, i) for i in indices],
    )


def _after(step: StepForm) -> float | None:
    """The step's wait in seconds; ``None`` when it isn't a number."""
    try:
        amount = float(step.amount)
    except ValueError:
        return None
    if not math.isfinite(amount):
        return None
    return amount * UNITS.get(step.unit, 0)


def _weights(step: StepForm, i: int, errors: dict[str, str]) -> list[float] | None:
    """The versions' shares as typed; ``None`` (equal) when none is typed, 1 for an empty one."""
    if not any(variant.weight for variant in step.variants):
        return None
    weights: list[float] = []
    for j, variant in enumerate(step.variants):
        try:
            weight = float(variant.weight or "1")
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight):
            errors[f"steps-{i}-variants-{j}-weight"] = "Enter a number, or leave it empty."
            weight = 1.0
        weights.append(weight)
    return weights


def _step_body(step: StepForm, i: int, after: float, errors: dict[str, str]) -> dict[str, Any]:
    """One step as ``SequenceStep`` takes it; what the schema would say less clearly about a
    call step's versions or fallback goes into ``errors`` beside the field."""
    voice = step.channel == Channel.VOICE.value
    body: dict[str, Any] = {"after": after, "channel": step.channel}
    if step.variants:
        body["variants"] = [
            {"name": v.name, "template": v.template, "channel": v.channel or None}
            for v in step.variants
        ]
        body["weights"] = _weights(step, i, errors)
        body["allocation"] = step.allocation
        if voice:
            errors[f"steps-{i}-channel"] = (
                "A call can't test versions: send this step by SMS, WhatsApp or email, "
                "or remove the extra versions."
            )
    else:
        body["template"] = step.template
    if step.fallback:
        first, *rest = step.fallback
        body["fallback"] = [first, *(c for c in rest if c != step.channel)]
        if voice:
            errors[f"steps-{i}-fallback"] = "A call has no fallback: choose “Nothing” here."
        elif first == step.channel:
            errors[f"steps-{i}-fallback"] = "Choose another channel than the step's own."
    return body


def _error_key(loc: tuple[int | str, ...]) -> str:
    """The form field a step's problem at ``loc`` (``("steps", i, ...)``) belongs beside."""
    i, part = loc[1], loc[2]
    if part in ("variants", "weights") and len(loc) >= 4 and isinstance(loc[3], int):
        field_name = "weight" if part == "weights" else str(loc[4]) if len(loc) >= 5 else "template"
        return f"steps-{i}-variants-{loc[3]}-{field_name}"
    return f"steps-{i}-{part}"


def _sequence_body(form: SequenceForm) -> tuple[SequenceIn | None, dict[str, str]]:
    """The form as ``PUT /v1/sequences/{name}`` takes it, or the errors by field."""
    errors: dict[str, str] = {}
    steps: list[dict[str, Any]] = []
    for i, step in enumerate(form.steps):
        after = _after(step)
        if after is None or step.unit not in UNITS:
            errors[f"steps-{i}-after"] = "Enter a number."
        steps.append(_step_body(step, i, after or 0, errors))
    document = {
        "applies_to": form.applies_to,
        "stop_on": form.stop_on,
        "max_attempts": form.max_attempts,
        "steps": steps,
    }
    try:
        body = SequenceIn.model_validate(document)
    except ValidationError as error:
        for problem in error.errors():
            loc = problem["loc"]
            if loc[0] == "steps" and len(loc) >= 3:
                key = _error_key(loc)
                message = _message(problem)
                if loc[2] == "after":
                    too_long = problem["type"] == "time_delta_parsing"
                    message = "That wait is too long." if too_long else "Must be more than zero."
                errors.setdefault(key, message)
            elif loc[0] == "steps" and len(loc) == 2:
                # The step as a whole (``SequenceStep._one_message``), unless said already.
                if not any(key.startswith(f"steps-{loc[1]}-") for key in errors):
                    part = "fallback" if "fallback" in str(problem["msg"]) else "channel"
                    errors[f"steps-{loc[1]}-{part}"] = _message(problem)
            else:
                errors.setdefault(str(loc[0]), _message(problem))
        return None, errors
    return (None, errors) if errors else (body, errors)


@dataclass(frozen=True)
class Preview:
    """A step's text with sample values, or why it can't be shown yet."""

    text: str | None = None
    subject: str | None = None
    problem: str | None = None
    channel: str = ""


def _preview(template: str, channel: str, org_name: str) -> Preview:
    if not template.strip():
        return Preview(problem="Write the message to see it here.", channel=channel)
    try:
        check_template(template)
    except ValueError as error:
        return Preview(problem=f"{str(error)[:1].upper()}{str(error)[1:]}.", channel=channel)
    fields = {**SAMPLE, "org_name": org_name}
    subject = None
    if channel == Channel.EMAIL.value:
        subject = SEQUENCE_SUBJECT.format_map(fields)
    return Preview(text=template.format_map(fields), subject=subject, channel=channel)


def _step_previews(step: StepForm, org_name: str) -> list[Preview]:
    """The step's text with sample values: one, or one per version."""
    if not step.variants:
        return [_preview(step.template, step.channel, org_name)]
    return [_preview(v.template, v.channel or step.channel, org_name) for v in step.variants]


def _sequence_labels(
    errors: dict[str, str], form: SequenceForm | None = None
) -> dict[str, tuple[str, str]]:
    """For the error summary: each field with an error, its element id and its name."""
    labels = {
        "applies_to": ("applies_to", "Used for"),
        "stop_on": ("stop_on", "Stop the sequence when"),
        "max_attempts": ("max_attempts", "Send at most"),
        "steps": ("add-step", "Steps"),
    }
    parts = {"after": "wait", "template": "text", "weight": "share", "allocation": "sharing"}
    for key in errors:
        found = re.fullmatch(r"steps-(\d+)-(after|channel|template|fallback|allocation)", key)
        if found:
            i, part = int(found[1]), found[2]
            element = {"after": "amount"}.get(part, part)
            labels[key] = (f"steps-{i}-{element}", f"Step {i + 1} {parts.get(part, part)}")
        version = re.fullmatch(r"steps-(\d+)-variants-(\d+)-(template|channel|weight|name)", key)
        if version:
            i, j, part = int(version[1]), int(version[2]), version[3]
            variants = form.steps[i].variants if form and i < len(form.steps) else []
            name = variants[j].name if j < len(variants) else string.ascii_lowercase[j]
            element = "template" if part == "name" else part
            labels[key] = (
                f"steps-{i}-variants-{j}-{element}",
                f"Step {i + 1} version {name} {parts.get(part, part)}",
            )
    return labels


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultRow:
    """One version's figures as the results table shows them (numbers for people)."""

    version: str
    #: What else to know about the row: its channel when not the step's, "removed".
    note: str
    sent: str
    replied: str
    reply_rate: str
    booked: str
    converted: str
    chance: str


@dataclass(frozen=True)
class StepResults:
    """One step's results: what it is, the verdict in words and a row per version."""

    number: int
    title: str
    experiment: bool
    #: Whether every version has enough sends for the verdict to name a winner.
    enough: bool
    verdict: str
    rows: list[ResultRow]

    @property
    def headline(self) -> str:
        """The verdict's first words ("Version b is better", "Not enough data yet")."""
        return self.verdict.split(":", 1)[0].rstrip(".")


def _count(value: int) -> str:
    return f"{value:,}"


def _rate(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f} %" if whole else "—"


def _chance(probability: float | None, sent: int) -> str:
    if probability is None or not sent:
        return "—"
    if probability > 0.999:
        return "> 99.9 %"
    if probability < 0.001:
        return "< 0.1 %"
    return f"{probability * 100:.1f} %"


def _verdict(result: StepResult) -> str:
    """The verdict as a sentence: capitalised, and "Version b is better" for a winner."""
    for variant in result.variants:
        if variant.name and result.verdict.startswith(f"{variant.name} is better"):
            return f"Version {result.verdict}."
    text = result.verdict
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _row(variant: VariantResult, result: StepResult, channel: str | None) -> ResultRow:
    if variant.name is None:
        version = "Before the test" if variant.earlier else "The one version"
    else:
        version = variant.name
    note = ""
    if variant.earlier and variant.name is not None:
        note = "earlier text"
    elif variant.channel is not None and variant.channel.value != channel:
        note = CHANNELS.get(variant.channel.value, variant.channel.value)
    return ResultRow(
        version=version,
        note=note,
        sent=_count(variant.sent),
        replied=_count(variant.replied),
        reply_rate=_rate(variant.replied, variant.sent),
        booked=_count(variant.booked),
        converted=_count(variant.converted),
        chance=_chance(variant.probability_best, variant.sent),
    )


def _results(results: SequenceResults, sequence: SequenceIn) -> list[StepResults]:
    """Each step's results as the page shows them."""
    shown = []
    for result in results.steps:
        step = sequence.steps[result.step - 1] if result.step <= len(sequence.steps) else None
        channel = step.channel.value if step else None
        title = f"Step {result.step}"
        if step is None:
            title += " · no longer in the sequence"
        else:
            title += f" · {CHANNELS.get(step.channel.value, step.channel.value)}"
            if step.variants:
                title += f" · testing {len(step.variants)} versions"
        current = [v for v in result.variants if v.probability_best is not None]
        shown.append(
            StepResults(
                number=result.step,
                title=title,
                experiment=result.experiment,
                enough=bool(current) and all(v.sent >= results.min_sample for v in current),
                verdict=_verdict(result),
                rows=[_row(variant, result, channel) for variant in result.variants],
            )
        )
    return shown


async def _sequences(database: DatabaseDep, org_id: str) -> list[SequencePublic]:
    return await database.read(list_sequences, org_id=org_id)


async def _editor(
    request: Request,
    me: Current,
    database: DatabaseDep,
    *,
    name: str,
    form: SequenceForm | None = None,
    errors: dict[str, str] | None = None,
    block: str | None = None,
    focus: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    sequences = await _sequences(database, me.org.id)
    current = next((s for s in sequences if s.name == name), None)
    if form is None:
        form = (
            _form_of(current)
            if current
            else SequenceForm(
                applies_to=[], stop_on=list(STOPS), max_attempts="5", steps=[_new_step()]
            )
        )
    routes = await database.read(sequence_by_intent, org_id=me.org.id)
    results = None
    if current is not None and block is None:
        # Only the whole page shows results: a step action re-renders the editor alone.
        figures = await database.read(sequence_results, org_id=me.org.id, name=name)
        results = _results(figures, current)
    return page(
        request,
        "settings_sequence.html",
        me=me,
        block=block,
        title=f"Sequence {name}",
        section="settings",
        settings_section="sequences",
        seq_name=name,
        current=current,
        form=form,
        errors=errors or {},
        labels=_sequence_labels(errors or {}, form),
        subject=SEQUENCE_SUBJECT.format(org_name=me.org.name),
        previews=[_step_previews(step, me.org.name) for step in form.steps],
        runs_for=[INTENTS[key] for key, chosen in routes.items() if chosen == name and key != CART],
        cap=int(form.max_attempts) if form.max_attempts.isdigit() else None,
        is_cart=name == "cart_recovery",
        intents=INTENTS,
        channels=CHANNELS,
        message_channels=MESSAGE_CHANNELS,
        max_variants=MAX_VARIANTS,
        min_sample=MIN_SAMPLE,
        results=results,
        stops=STOPS,
        units=UNITS,
        placeholders=sorted(TEMPLATE_FIELDS),
        focus=focus,
        status_code=status_code,
        **extra,
    )


@router.get("/settings/sequences")
async def sequences_page(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    create: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The org's sequences (its own and the defaults it has not replaced), which one each kind
    of new lead runs, and a form to start a new one (``?create=name`` opens its editor)."""
    _owner(me)
    error = None
    if create is not None:
        wanted = create.strip().lower()
        if re.fullmatch(SEQUENCE_NAME.pattern, wanted):
            return RedirectResponse(f"/app/settings/sequences/{wanted}", status_code=303)
        error = SEQUENCE_NAME.rule.capitalize() + "."
    routes = await database.read(sequence_by_intent, org_id=me.org.id)
    return page(
        request,
        "settings_sequences.html",
        me=me,
        title="Sequences",
        section="settings",
        settings_section="sequences",
        sequences=await _sequences(database, me.org.id),
        routes=routes,
        cart=CART,
        intents=INTENTS,
        channels=CHANNELS,
        stop_verbs=STOP_VERBS,
        wait=duration_words,
        create=create or "",
        create_error=error,
        status_code=422 if error else 200,
    )


@router.get("/settings/sequences/{name}")
async def sequence_page(
    request: Request, name: NameParam, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """One sequence's editor (a new one if the org has none by that name)."""
    _owner(me)
    return await _editor(request, me, database, name=name)


@router.post("/settings/sequences/{name}")
async def save_sequence_page(
    request: Request, name: NameParam, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """Save the sequence as typed, validated as ``PUT /v1/sequences/{name}`` validates it,
    and note the change on the audit list; invalid: 422, nothing saved."""
    _owner(me)
    form = _read_sequence_form(await request.form())
    body, errors = _sequence_body(form)
    if body is None:
        return await _editor(
            request,
            me,
            database,
            name=name,
            form=form,
            errors=errors,
            error="Nothing was saved: fix the fields marked below.",
            status_code=422,
        )
    saved: SequenceSaved = await database.run(
        save_sequence,
        org_id=me.org.id,
        operator_id=me.operator.id,
        actor=me.operator.name,
        name=name,
        body=body,
        at=utcnow(),
    )
    notice = (
        f"Saved: {'; '.join(saved.changes)}. Leads already in this sequence get the new "
        "version from their next step."
        if saved.summary
        else "Nothing had changed, so nothing was saved."
    )
    return await _editor(request, me, database, name=name, notice=notice)


@router.post("/settings/sequences/{name}/steps")
async def edit_steps(
    request: Request, name: NameParam, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """Add, remove or move a step, or add or remove a version of one, in the form (htmx;
    nothing is saved until Save)."""
    _owner(me)
    data = await request.form()
    form = _read_sequence_form(data)
    action = str(data.get("step_action", ""))
    found = re.fullmatch(r"(add|remove|up|down|version|unversion)(?:-(\d{1,2}))?(?:-(\d))?", action)
    if found is None:
        raise ApiError(422, "Unknown step action.", code="invalid")
    verb, index = found[1], int(found[2] or 0)
    steps = form.steps
    focus = None
    if verb in ("version", "unversion") and index < len(steps):
        focus = _edit_versions(steps[index], index, verb, int(found[3] or 0))
    elif verb == "add" and len(steps) < 20:
        last = steps[-1] if steps else _new_step()
        if form.max_attempts == str(len(steps)):
            # Every step was being sent: the new one is meant to be sent too.
            form.max_attempts = str(len(steps) + 1)
        steps.append(StepForm(amount="1", unit="days", channel=last.channel, template=""))
        focus = f"steps-{len(steps) - 1}-amount"
    elif verb == "remove" and len(steps) > 1 and index < len(steps):
        if form.max_attempts == str(len(steps)):
            form.max_attempts = str(len(steps) - 1)
        del steps[index]
        focus = "add-step"
    elif verb == "up" and 0 < index < len(steps):
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
        focus = f"up-{index - 1}" if index - 1 > 0 else f"down-{index - 1}"
    elif verb == "down" and index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
        focus = f"down-{index + 1}" if index + 1 < len(steps) - 1 else f"up-{index + 1}"
    return await _editor(
        request,
        me,
        database,
        name=name,
        form=form,
        block="editor",
        focus=focus,
        unsaved=True,
    )


def _edit_versions(step: StepForm, index: int, verb: str, version: int) -> str | None:
    """Add a version to step ``index`` (a plain step becomes versions a, its text, and b) or
    remove its ``version`` (back to a plain step when one is left); what to focus next."""
    if verb == "version" and not step.variants:
        step.variants = [VariantForm(name="a", template=step.template), VariantForm("b", "")]
        step.template = ""
        return f"steps-{index}-variants-1-template"
    if verb == "version" and len(step.variants) < MAX_VARIANTS:
        taken = {variant.name for variant in step.variants}
        name = next(letter for letter in string.ascii_lowercase if letter not in taken)
        step.variants.append(VariantForm(name=name, template=""))
        return f"steps-{index}-variants-{len(step.variants) - 1}-template"
    if verb == "unversion" and version < len(step.variants):
        del step.variants[version]
        if len(step.variants) > 1:
            return f"version-{index}"
        (last,) = step.variants
        step.template, step.channel = last.template, last.channel or step.channel
        step.variants, step.allocation = [], "weights"
        return f"steps-{index}-template"
    return None


@router.post("/settings/sequences/{name}/preview")
async def step_preview(
    request: Request,
    name: NameParam,
    me: OperatorSessionDep,
    step: Annotated[int, Query(ge=0, lt=20)],
    version: Annotated[int, Query(ge=0, lt=MAX_VARIANTS)] = 0,
) -> Response:
    """One step's text (or one of its versions) with sample values, as typed (htmx)."""
    _owner(me)
    form = _read_sequence_form(await request.form())
    if step >= len(form.steps):
        raise ApiError(404, "No such step.")
    previews = _step_previews(form.steps[step], me.org.name)
    if version >= len(previews):
        raise ApiError(404, "No such version.")
    return page(
        request,
        "_sequence_preview.html",
        me=me,
        preview=previews[version],
        channels=CHANNELS,
    )


# --- scoring -------------------------------------------------------------------------------


@dataclass
class ScoringForm:
    """The scoring rules and the sample lead, as typed (numbers as text)."""

    base: str
    returning_customer: str
    tiers: list[tuple[str, str]]
    sources: list[tuple[str, str]]
    words: list[tuple[str, str]]
    thresholds: dict[str, str]
    #: The request words, comma-separated.
    requests: str = ""
    sample: dict[str, str] = field(default_factory=dict)


def _rows(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return pairs + [("", "")] * BLANK_ROWS


def _scoring_form_of(rules: ScoringRules, sample: dict[str, str] | None = None) -> ScoringForm:
    return ScoringForm(
        base=str(rules.base),
        returning_customer=str(rules.returning_customer),
        tiers=_rows([(f"{t.min:g}", str(t.points)) for t in rules.value_tiers]),
        sources=_rows([(k, str(v)) for k, v in rules.sources.items()]),
        words=_rows([(k, str(v)) for k, v in rules.words.items()]),
        thresholds={k: str(v) for k, v in rules.thresholds.model_dump().items()},
        requests=", ".join(rules.requests),
        sample=sample or {},
    )


def _pairs(form: FormData, prefix: str, first: str) -> list[tuple[str, str]]:
    indices = sorted(
        {int(m[1]) for key in form if (m := re.fullmatch(rf"{prefix}-(\d{{1,3}})-{first}", key))}
    )
    return [
        (
            str(form.get(f"{prefix}-{i}-{first}", "")).strip(),
            str(form.get(f"{prefix}-{i}-points", "")).strip(),
        )
        for i in indices
    ]


def _read_scoring_form(form: FormData) -> ScoringForm:
    return ScoringForm(
        base=str(form.get("base", "")).strip(),
        returning_customer=str(form.get("returning_customer", "")).strip(),
        tiers=_pairs(form, "tiers", "min"),
        sources=_pairs(form, "sources", "name"),
        words=_pairs(form, "words", "phrase"),
        thresholds={
            key: str(form.get(key, "")).strip()
            for key in ("high_value", "engaged", "window_shopper")
        },
        requests=str(form.get("requests", "")),
        sample={
            "source": str(form.get("sample_source", "")).strip(),
            "message": str(form.get("sample_message", "")),
            "value": str(form.get("sample_value", "")).strip(),
            "returning": "yes" if form.get("sample_returning") else "",
        },
    )


def _scoring_rules(form: ScoringForm) -> tuple[ScoringRules | None, dict[str, str]]:
    """The rules as ``PATCH /v1/orgs/me`` takes them (``scoring``), or the errors by field.

    A row with nothing typed is left out; a name listed twice is an error here (in the
    JSON document the second would silently win)."""
    errors: dict[str, str] = {}
    tiers, tier_rows = [], []
    for i, (minimum, points) in enumerate(form.tiers):
        if minimum or points:
            tiers.append({"min": minimum or None, "points": points or None})
            tier_rows.append(i)
    named: dict[str, dict[str, str]] = {"sources": {}, "words": {}}
    rows: dict[str, dict[str, int]] = {"sources": {}, "words": {}}
    for kind, pairs, label in (("sources", form.sources, "name"), ("words", form.words, "phrase")):
        seen: dict[str, int] = {}
        for i, (key, points) in enumerate(pairs):
            if not key and not points:
                continue
            if not key:
                errors[f"{kind}-{i}-{label}"] = "Can't be empty."
                continue
            folded = " ".join(key.lower().split())
            if folded in seen:
                errors[f"{kind}-{i}-{label}"] = f"Listed twice (also row {seen[folded] + 1})."
                continue
            seen[folded] = i
            named[kind][key] = points or ""
            rows[kind][key] = i
    document = {
        "base": form.base,
        "returning_customer": form.returning_customer,
        "value_tiers": tiers,
        "sources": named["sources"],
        "words": named["words"],
        "thresholds": form.thresholds,
        "requests": list(
            dict.fromkeys(w for w in (p.strip() for p in form.requests.split(",")) if w)
        ),
    }
    try:
        rules = ScoringRules.model_validate(document)
    except ValidationError as error:
        for problem in error.errors():
            loc = problem["loc"]
            key = str(loc[0])
            if loc[0] == "value_tiers" and len(loc) >= 3 and isinstance(loc[1], int):
                key = f"tiers-{tier_rows[loc[1]]}-{loc[2]}"
            elif loc[0] in ("sources", "words") and len(loc) >= 2:
                row = rows[str(loc[0])].get(str(loc[1]))
                label = "name" if loc[0] == "sources" else "phrase"
                part = label if loc[-1] == "[key]" else "points"
                key = f"{loc[0]}-{row}-{part}" if row is not None else str(loc[0])
            elif loc[0] == "thresholds" and len(loc) >= 2:
                key = str(loc[1])
            message = _message(problem)
            if key == "thresholds" and problem["type"] == "value_error":
                message = "High value must be above engaged, and engaged above window shopper."
            errors.setdefault(key, message)
        return None, errors
    return (None, errors) if errors else (rules, errors)


@dataclass(frozen=True)
class ScoringPreview:
    """The sample lead scored by the rules as typed, or why it can't be."""

    scored: Scored | None = None
    sequence: str | None = None
    problem: str | None = None
    #: What is wrong with the rules as typed, each with where.
    problems: tuple[str, ...] = ()
    value_error: str | None = None


_THRESHOLDS = {
    "high_value": "High value from",
    "engaged": "Engaged from",
    "window_shopper": "Window shopper from",
    "thresholds": "Intent",
}
_ROWS = {"tiers": "Value tier", "sources": "Source", "words": "Word"}


def _where(key: str) -> str:
    """A scoring form field's name as the page labels it."""
    if key in _THRESHOLDS:
        return _THRESHOLDS[key]
    found = re.fullmatch(r"(tiers|sources|words)-(\d+)-\w+", key)
    if found:
        return f"{_ROWS[found[1]]} {int(found[2]) + 1}"
    return {"base": "Starting points", "returning_customer": "Returning customer"}.get(
        key, key.replace("_", " ").capitalize()
    )


def _scoring_label(key: str) -> tuple[str, str]:
    """For the error summary: the field's element id and its name."""
    element = {"value_tiers": "tiers-0-min", "sources": "sources-0-name", "words": "words-0-phrase"}
    return element.get(key, key), _where(key)


async def _scoring_preview(
    form: ScoringForm,
    rules: ScoringRules | None,
    errors: dict[str, str],
    database: DatabaseDep,
    org_id: str,
) -> ScoringPreview:
    if rules is None:
        return ScoringPreview(
            problem="The rules as typed have a problem, so there is no score yet:",
            problems=tuple(f"{_where(key)}: {message}" for key, message in errors.items()),
        )
    value: float | None = None
    raw = form.sample.get("value", "")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            return ScoringPreview(value_error="Enter a number, or leave it empty.")
        if not math.isfinite(value) or value < 0:
            return ScoringPreview(value_error="Enter a number, or leave it empty.")
    scored = score_lead(
        rules,
        value=value,
        source=form.sample.get("source") or None,
        message=form.sample.get("message") or None,
        returning_customer=bool(form.sample.get("returning")),
    )
    routes = await database.read(sequence_by_intent, org_id=org_id)
    is_cart = (form.sample.get("source") or "").strip().lower() == CART
    return ScoringPreview(scored=scored, sequence=routes[CART if is_cart else scored.intent.value])


async def _scoring_page(
    request: Request,
    me: Current,
    database: DatabaseDep,
    *,
    form: ScoringForm,
    errors: dict[str, str] | None = None,
    block: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    rules, typed_errors = _scoring_rules(form)
    preview = await _scoring_preview(form, rules, typed_errors, database, me.org.id)
    return page(
        request,
        "settings_scoring.html",
        me=me,
        block=block,
        title="Scoring",
        section="settings",
        settings_section="scoring",
        form=form,
        errors=errors or {},
        labels={key: _scoring_label(key) for key in errors or {}},
        preview=preview,
        intents=INTENTS,
        status_code=status_code,
        **extra,
    )


DEFAULT_SAMPLE = {
    "source": "website_form",
    "message": "Need a quote for a deep clean this week, urgent please",
    "value": "300",
    "returning": "",
}


@router.get("/settings/scoring")
async def scoring_page(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The org's scoring rules as a form, with a preview of a sample lead."""
    _owner(me)
    rules = org_settings(me.org).scoring
    return await _scoring_page(
        request, me, database, form=_scoring_form_of(rules, dict(DEFAULT_SAMPLE))
    )


@router.post("/settings/scoring/preview")
async def scoring_preview(
    request: Request, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The sample lead scored by the rules as typed, not saved: the preview fragment for
    htmx, the whole page otherwise."""
    _owner(me)
    form = _read_scoring_form(await request.form())
    fragment = request.headers.get("hx-request") == "true"
    return await _scoring_page(
        request, me, database, form=form, block="preview" if fragment else None
    )


@router.post("/settings/scoring")
async def save_scoring(
    request: Request, me: OperatorSessionDep, database: DatabaseDep, cache: OrgCacheDep
) -> Response:
    """Save the rules as typed (validated as ``PATCH /v1/orgs/me`` validates ``scoring``) and
    note the change on the audit list; invalid: 422, nothing saved."""
    _owner(me)
    form = _read_scoring_form(await request.form())
    rules, errors = _scoring_rules(form)
    if rules is None:
        return await _scoring_page(
            request,
            me,
            database,
            form=form,
            errors=errors,
            error="Nothing was saved: fix the fields marked below.",
            status_code=422,
        )
    updated = await database.run(
        change_settings,
        org_id=me.org.id,
        operator_id=me.operator.id,
        actor=me.operator.name,
        section=SCORING,
        # The whole rules: a word or source left out of the form is removed.
        changes={"scoring": rules.model_dump(mode="json")},
        at=utcnow(),
        replace=frozenset({"scoring"}),
    )
    lines = describe_changes(org_settings(me.org), org_settings(updated))
    summary = summarize(lines) if lines else None
    if summary is None:
        notice = "Nothing had changed, so nothing was saved."
    else:
        cache.forget(me.org.id)
        notice = f"Saved: {summary}. New leads are scored with these rules; leads already in "
        notice += "keep their score."
    return await _scoring_page(
        request,
        me,
        database,
        form=_scoring_form_of(rules, form.sample),
        notice=notice,
    )
