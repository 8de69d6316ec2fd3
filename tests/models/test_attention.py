"""Escalations: the handoff text an operator gets."""

from __future__ import annotations

from models.database import make_engine, session_scope
from models.schemas import OrgSettings
from models.services.escalations import escalate_thread, handoff_text
from models.services.orgs import create_org
from models.store.contacts import resolve_contact
from models.store.threads import thread_of_contact
from models.values import Priority


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
            priority=Priority.HIGH,
            summary="The clean was not finished. " * 80,
        )
        text = handoff_text(session, escalation=row)
    engine.dispose()

    assert len(text) == 600
    assert text.startswith("keepwarm HIGH: complaint | Grace | The clean was not finished.")
    assert f"… | Ack: POST /v1/escalations/{row.id}/acknowledge | " in text
    assert text.endswith(f"Take over: POST /v1/threads/{thread_id}/takeover")
