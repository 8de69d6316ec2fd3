"""Saving a sequence or the scoring rules from the Settings pages: the change and its audit
entry in one transaction, worded in plain words; an unchanged save writes nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from models.database import session_scope
from models.reads.sequence_choice import CART, sequence_by_intent
from models.reads.sequences import list_sequences
from models.rules.orgs import org_settings
from models.rules.sequences import DEFAULTS
from models.schemas import OrgSettings, ScoringRules, SequenceIn, SequenceStep
from models.services.orgs import create_org
from models.services.sequence_editing import differences, save_sequence
from models.services.settings import change_settings
from models.store.audit import recent_changes
from models.tables import utcnow
from models.values import Channel, Intent


@pytest.fixture
def org_id(engine: Engine) -> str:
    with session_scope(engine) as session:
        org, _ = create_org(session, name="Shine", settings=OrgSettings(timezone="UTC"))
        return org.id


def summaries(engine: Engine, org_id: str) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        return [
            (row.section, row.actor, row.summary) for row in recent_changes(session, org_id=org_id)
        ]


def edited_hot(text: str) -> SequenceIn:
    hot = DEFAULTS["hot"]
    steps = list(hot.steps)
    steps[1] = steps[1].model_copy(update={"template": text})
    return hot.model_copy(update={"steps": steps})


def test_a_saved_sequence_and_its_audit_entry_go_together(engine: Engine, org_id: str) -> None:
    with session_scope(engine) as session:
        saved = save_sequence(
            session,
            org_id=org_id,
            operator_id="op_1",
            actor="Olivia",
            name="hot",
            body=edited_hot("Hi {first_name}, still keen?"),
            at=utcnow(),
        )

    assert saved.summary == "Sequence hot: step 2 text changed"
    assert summaries(engine, org_id) == [("sequences", "Olivia", saved.summary)]
    with session_scope(engine) as session:
        hot = next(s for s in list_sequences(session, org_id=org_id) if s.name == "hot")
    assert hot.default is False
    assert hot.steps[1].template == "Hi {first_name}, still keen?"


def test_saving_an_untouched_default_writes_nothing(engine: Engine, org_id: str) -> None:
    with session_scope(engine) as session:
        saved = save_sequence(
            session,
            org_id=org_id,
            operator_id="op_1",
            actor="Olivia",
            name="nurture",
            body=DEFAULTS["nurture"],
            at=utcnow(),
        )
        routes = sequence_by_intent(session, org_id=org_id)

    assert saved.summary is None
    assert saved.sequence.default is True
    assert summaries(engine, org_id) == []
    assert routes == {
        "high_value": "hot",
        "engaged": "hot",
        "window_shopper": "nurture",
        "browsing": "nurture",
        CART: "cart_recovery",
    }


def test_the_sequence_saved_last_is_the_one_new_leads_get(engine: Engine, org_id: str) -> None:
    mine = SequenceIn(
        applies_to=[Intent.BROWSING],
        steps=[SequenceStep(after=timedelta(hours=2), channel=Channel.SMS, template="Hi")],
    )
    with session_scope(engine) as session:
        saved = save_sequence(
            session,
            org_id=org_id,
            operator_id=None,
            actor="Olivia",
            name="gentle",
            body=mine,
            at=utcnow(),
        )
        routes = sequence_by_intent(session, org_id=org_id)

    assert saved.summary == "Sequence gentle: created with 1 step"
    assert routes["browsing"] == "gentle"
    assert routes["window_shopper"] == "nurture"


def step(after: timedelta, channel: Channel, text: str) -> SequenceStep:
    return SequenceStep(after=after, channel=channel, template=text)


A = step(timedelta(minutes=15), Channel.SMS, "a")
B = step(timedelta(days=1), Channel.EMAIL, "b")
C = step(timedelta(days=2), Channel.SMS, "c")


@pytest.mark.parametrize(
    ("before", "after", "said"),
    [
        ([A, B, C], [A, B, C], []),
        ([A, B, C], [A, C, B], ["steps reordered"]),
        ([A, B, C], [A, C], ["step 2 removed"]),
        ([A, B], [A, B, C], ["step 3 added"]),
        (
            [A, B],
            [A, step(timedelta(seconds=90), Channel.SMS, "b")],
            ["step 2 wait 1 day → 90 seconds", "step 2 channel Email → SMS"],
        ),
    ],
)
def test_step_changes_in_plain_words(
    before: list[SequenceStep], after: list[SequenceStep], said: list[str]
) -> None:
    old = SequenceIn(applies_to=[Intent.BROWSING], steps=before)
    new = SequenceIn(applies_to=[Intent.BROWSING], steps=after)

    assert differences(old, new) == said


def test_the_other_settings_of_a_sequence_in_plain_words() -> None:
    old = SequenceIn(applies_to=[Intent.BROWSING, Intent.ENGAGED], steps=[A], max_attempts=3)
    new = SequenceIn(
        applies_to=[Intent.ENGAGED], steps=[A], max_attempts=1, stop_on=["reply", "payment"]
    )

    assert differences(old, new) == [
        "used for engaged leads",
        "sends at most 1 steps, was 3",
        "stops on a reply or a payment",
    ]
    # The order the intents are listed in is no change.
    assert differences(old, old.model_copy(update={"applies_to": old.applies_to[::-1]})) == []


def test_scoring_rules_are_replaced_whole_with_their_audit_entry(
    engine: Engine, org_id: str
) -> None:
    rules = ScoringRules()
    words = {**rules.words, "emergency": 25}
    del words["asap"]
    changed = rules.model_copy(update={"words": words, "base": 5})

    change = {
        "operator_id": "op_1",
        "actor": "Olivia",
        "section": "scoring",
        "changes": {"scoring": changed.model_dump(mode="json")},
        "replace": frozenset({"scoring"}),
    }
    with session_scope(engine) as session:
        change_settings(session, org_id=org_id, at=utcnow(), **change)  # type: ignore[arg-type]
    with session_scope(engine) as session:
        again = change_settings(session, org_id=org_id, at=utcnow(), **change)  # type: ignore[arg-type]
        stored = org_settings(again).scoring

    assert stored == changed
    assert "asap" not in stored.words  # a deleted word is gone, not merged back
    # Worded by the same rule as every settings change (models.rules.settings_changes);
    # the same rules again record nothing.
    [(section, actor, summary)] = [row[:3] for row in summaries(engine, org_id)]
    assert (section, actor) == ("scoring", "Olivia")
    assert re.search(r"asap.*removed", summary) and re.search(r"emergency.*added", summary)
