"""What ``GET /v1/sequences/{name}/results`` answers: each step's variants, their figures, how
likely each is best, and a plain verdict."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.values import Channel, ProviderMode


class VariantResult(BaseModel):
    """One variant of a step (``name`` ``None``: the step's plain template) and what its
    sends led to."""

    name: str | None
    #: The variant's channel as the step stands now (``None``: an earlier version's).
    channel: Channel | None
    #: Sends of an earlier version of the step (a variant since removed, a text since
    #: edited, the plain template before the experiment): shown, never judged.
    earlier: bool = False
    sent: int
    replied: int
    booked: int
    converted: int
    reply_rate: float
    conversion_rate: float
    #: The probability its reply rate is the step's highest (Beta-Binomial, uniform prior);
    #: ``None`` outside the step's current variants.
    probability_best: float | None


class StepResult(BaseModel):
    """One step of the sequence (from 1) and its variants' results."""

    step: int
    #: Whether the step (as it stands now) splits its leads among variants.
    experiment: bool
    variants: list[VariantResult]
    #: "not enough data yet: ...", "no clear winner yet: ..." or "b is better: ...".
    verdict: str


class SequenceResults(BaseModel):
    """``GET /v1/sequences/{name}/results``: sends in ``[from, to)``, step by step."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    start: datetime | None = Field(alias="from")
    end: datetime | None = Field(alias="to")
    #: The provider mode whose sends are counted (the org's now: dry-run sends are a
    #: rehearsal and never mix with live ones).
    mode: ProviderMode
    #: Sends each variant needs before a verdict names a winner.
    min_sample: int
    steps: list[StepResult]
