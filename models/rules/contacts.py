"""How keepwarm recognises a person: phone numbers in E.164 for the org's region, the
identities a payload names, and the key a Lead workflow id is built from. Pure."""

from __future__ import annotations

from typing import Any

import phonenumbers

from models.values import (
    PLATFORM_ID_FIELDS,
    IdentityKind,
)


def normalize_phone(raw: str, *, region: str) -> str | None:
    """``raw`` in E.164 using ``region`` for national numbers, or ``None`` if it isn't valid."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def contact_key(*, email: str | None, phone: str | None) -> str:
    """The normalised identity a Lead workflow is keyed by: email if given, else phone."""
    if email:
        return f"email:{email}"
    if phone:
        return f"phone:{phone}"
    raise ValueError("a contact key needs an email or a phone")


def _wanted_identities(payload: dict[str, Any]) -> list[tuple[IdentityKind, str]]:
    """The submission's identities in resolution order: email, phone, then platform ids."""
    pairs: list[tuple[IdentityKind, Any]] = [
        (IdentityKind.EMAIL, payload.get("email")),
        (IdentityKind.PHONE, payload.get("phone")),
    ]
    fields = payload.get("fields") or {}
    for name, kind in PLATFORM_ID_FIELDS.items():
        value = fields.get(name)
        if isinstance(value, int | str) and not isinstance(value, bool):
            pairs.append((kind, str(value).strip()[:320]))
    return [(kind, value) for kind, value in pairs if value]
