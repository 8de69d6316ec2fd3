"""The people who do the visits (cleaners, technicians): ``/v1/providers``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from models.schemas.fields import E164, Email, NonBlankText, StrictModel


class ProviderCreate(StrictModel):
    """``POST /v1/providers``."""

    name: NonBlankText = Field(min_length=1, max_length=200)
    phone: E164 | None = None
    email: Email | None = Field(default=None, max_length=320)

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return " ".join(value.split())

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


class ProviderCreated(BaseModel):
    """The new provider's id."""

    id: str


class ProviderPublic(BaseModel):
    """A provider of the org."""

    id: str
    name: str
    phone: str | None
    email: str | None
    created_at: datetime


class ProviderList(BaseModel):
    """The org's providers, by name."""

    items: list[ProviderPublic]
