"""What makes an inbound message page a person: complaint words, negative sentiment."""

from __future__ import annotations

import pytest

from models.database import make_engine, session_scope
from models.rules.needs_person import NEGATIVE_SENTIMENT, complaint_words, sentiment
from models.schemas import OrgSettings
from models.services.escalations import escalate_thread, handoff_text
from models.services.orgs import create_org
from models.store.contacts import resolve_contact
from models.store.threads import thread_of_contact


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("This is TERRIBLE. I want my money back!", ["terrible", "money back"]),
        ("Very disappointed with the service", ["disappointed"]),
        ("I'm complaining about the terrible-ness", ["terrible"]),
        ("Can you do Saturday?", []),
        ("Refundable deposit?", []),  # whole words only
    ],
)
def test_complaint_words_are_whole_words_in_any_case(text: str, words: list[str]) -> None:
    assert complaint_words(text) == words


@pytest.mark.parametrize(
    "text",
    [
        "The job was awful and your staff were rude",
        "I'm not happy",
        "I hate waiting",
        "This is TERRIBLE. I want my money back!",
    ],
)
def test_negative_messages_read_as_negative(text: str) -> None:
    assert sentiment(text) <= NEGATIVE_SENTIMENT


@pytest.mark.parametrize(
    "text",
    [
        "Can you do Saturday?",
        "No thanks",  # a polite no is not a complaint
        "Thanks!",
        "Is anyone there? I need a person.",
        "Could you also do the windows?",
        "I'm happy with it, not upset at all",
    ],
)
def test_ordinary_messages_page_nobody(text: str) -> None:
    assert sentiment(text) > NEGATIVE_SENTIMENT


def test_a_long_story_is_cut_but_the_way_to_act_always_fits(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        org, _ = create_org(session, name="Shine", settings=OrgSettings(timezone="UTC"))
        contact = resolve_contact(
            session, org_id=org.id, payload={"phone": "+447911123456", "name": "Grace"}
        )
        thread_id = thread_of_contact(session, contact_id=contact.id)
        assert thread_id is not None
        row, _ = escalate_thread(
            session,
            org_id=org.id,
            thread_id=thread_id,
            reason="complaint",
            priority="high",
            summary="The clean was not finished. " * 80,
        )
        text = handoff_text(session, escalation=row)
    engine.dispose()

    assert len(text) == 600
    assert text.startswith("keepwarm HIGH: complaint | Grace | The clean was not finished.")
    assert f"… | Ack: POST /v1/escalations/{row.id}/acknowledge | " in text
    assert text.endswith(f"Take over: POST /v1/threads/{thread_id}/takeover")
