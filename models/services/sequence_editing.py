"""The owner edits a nudge sequence on the Settings pages: the sequence is replaced through the
same use case as ``PUT /v1/sequences/{name}`` and the change is written to the settings audit
list in the same transaction, in plain words ("Sequence hot: step 2 text changed")."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from models.database import locking
from models.rules.sequences import DEFAULTS
from models.schemas import SequenceIn, SequencePublic, SequenceStep
from models.services.sequences import put_sequence
from models.store.audit import record_change
from models.tables import Sequence

#: The audit list's section for sequence changes.
SECTION = "sequences"

CHANNEL_WORDS = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "Email", "voice": "Voice call"}
INTENT_WORDS = {
    "high_value": "high value",
    "engaged": "engaged",
    "window_shopper": "window shopper",
    "browsing": "browsing",
}
STOP_WORDS = {"reply": "a reply", "booking": "a booking", "payment": "a payment"}


@dataclass(frozen=True, kw_only=True)
class SequenceSaved:
    """What saving did: the sequence as it now stands, what changed and the audit entry's
    summary (``None`` when nothing differed, so nothing was saved or recorded)."""

    sequence: SequencePublic
    changes: tuple[str, ...]
    summary: str | None


def save_sequence(
    session: Session,
    *,
    org_id: str,
    operator_id: str | None,
    actor: str,
    name: str,
    body: SequenceIn,
    at: datetime,
) -> SequenceSaved:
    """Replace sequence ``name`` with ``body`` and record who changed what, in one transaction.

    The row (if the org has one) is locked while it is compared and written, so the summary
    describes exactly the change made. A body equal to what the org already runs saves
    nothing: saving an untouched built-in default would copy it and make it the most
    recently changed sequence, which changes which sequence new leads get.
    """
    row = session.exec(
        locking(select(Sequence).where(Sequence.org_id == org_id, Sequence.name == name))
    ).first()
    before = SequenceIn.model_validate(row.definition) if row else DEFAULTS.get(name)
    changes = differences(before, body)
    if not changes:
        assert before is not None
        shown = SequencePublic(name=name, default=row is None, **before.model_dump())
        return SequenceSaved(sequence=shown, changes=(), summary=None)
    saved = put_sequence(session, org_id=org_id, name=name, body=body)
    summary = f"Sequence {name}: {'; '.join(changes)}"
    record_change(
        session,
        org_id=org_id,
        operator_id=operator_id,
        actor=actor,
        section=SECTION,
        summary=summary,
        at=at,
    )
    return SequenceSaved(sequence=saved, changes=tuple(changes), summary=summary)


def duration_words(after: timedelta) -> str:
    """``after`` in the largest whole unit: "15 minutes", "1 day", "90 seconds"."""
    seconds = after.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    shown = f"{seconds:g}"
    return f"{shown} second{'' if shown == '1' else 's'}"


def differences(before: SequenceIn | None, after: SequenceIn) -> list[str]:
    """What changed from ``before`` to ``after``, in plain words, steps numbered from 1;
    empty when nothing did (the order intents and stops are listed in doesn't count)."""
    if before is None:
        steps = len(after.steps)
        return [f"created with {steps} step{'' if steps == 1 else 's'}"]
    parts: list[str] = []
    if set(before.applies_to) != set(after.applies_to):
        parts.append(
            "used for "
            + (", ".join(INTENT_WORDS[i.value] for i in after.applies_to) or "no leads")
            + " leads"
        )
    if before.max_attempts != after.max_attempts:
        parts.append(f"sends at most {after.max_attempts} steps, was {before.max_attempts}")
    if set(before.stop_on) != set(after.stop_on):
        stops = " or ".join(STOP_WORDS[s] for s in after.stop_on) or "nothing"
        parts.append(f"stops on {stops}")
    return parts + _step_changes(before.steps, after.steps)


def _step_key(step: SequenceStep) -> tuple[float, str, str, str, str]:
    return (
        step.after.total_seconds(),
        step.channel.value,
        step.template or "",
        _experiment(step),
        ",".join(channel.value for channel in step.fallback),
    )


def _experiment(step: SequenceStep) -> str:
    """A step's variants, shares and allocation as one comparable string."""
    if step.variants is None:
        return ""
    variants = [variant.model_dump_json() for variant in step.variants]
    return f"{variants}|{step.weights}|{step.allocation}"


def _step_changes(before: list[SequenceStep], after: list[SequenceStep]) -> list[str]:
    """Steps added, removed, moved or edited (their number in the new order, or in the old
    one for a removed step)."""
    old, new = [_step_key(s) for s in before], [_step_key(s) for s in after]
    if old == new:
        return []
    if sorted(old) == sorted(new):
        return ["steps reordered"]
    parts: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(a1 - a0, b1 - b0) if tag == "replace" else 0
        for offset in range(paired):
            parts += _edited(b0 + offset + 1, before[a0 + offset], after[b0 + offset])
        parts += [f"step {a0 + k + 1} removed" for k in range(paired, a1 - a0)]
        parts += [f"step {b0 + k + 1} added" for k in range(paired, b1 - b0)]
    return parts


def _edited(number: int, old: SequenceStep, new: SequenceStep) -> list[str]:
    changed = []
    if old.after != new.after:
        changed.append(
            f"step {number} wait {duration_words(old.after)} → {duration_words(new.after)}"
        )
    if old.channel != new.channel:
        changed.append(
            f"step {number} channel {CHANNEL_WORDS[old.channel.value]} → "
            f"{CHANNEL_WORDS[new.channel.value]}"
        )
    if old.template != new.template and old.template and new.template:
        changed.append(f"step {number} text changed")
    if _experiment(old) != _experiment(new):
        names = ", ".join(variant.name for variant in new.variants or [])
        changed.append(
            f"step {number} variants now {names} ({new.allocation})"
            if names
            else f"step {number} variants removed"
        )
    if old.fallback != new.fallback:
        words = ", ".join(CHANNEL_WORDS[channel.value] for channel in new.fallback) or "none"
        changed.append(f"step {number} fallback {words}")
    return changed
