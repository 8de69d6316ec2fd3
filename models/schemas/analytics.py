"""What the analytics reads answer: the pipeline report (``GET /v1/pipeline``) and the revenue
report (``GET /v1/revenue``), each with the same figures for the window before on request.

Money is in the currency's smallest unit (cents), as Stripe sends it; rates are fractions
rounded to 4 places; times are seconds rounded to milliseconds.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.schemas.reads import LeadValue, Percentiles


class PreviousWindow(BaseModel):
    """The window the previous figures cover: as long as the one asked for, just before it."""

    model_config = ConfigDict(populate_by_name=True)

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")


class SourceLine(BaseModel):
    """One source's leads in the report, and the revenue of the customers it brought."""

    source: str | None
    leads: int
    converted: int
    value: float
    #: Converted leads over leads.
    conversion_rate: float | None = None
    time_to_first_contact_p50_s: float | None = None
    time_to_first_contact_p90_s: float | None = None
    #: Paid less refunded in the window, by customers whose first lead came from this source.
    revenue: int = 0
    #: Those who paid in the window.
    customers: int = 0
    #: Revenue per customer.
    ltv: float | None = None


class FunnelStep(BaseModel):
    """A step of the funnel: the leads that got at least this far."""

    stage: str
    leads: int
    #: Of the leads at the step before, the share that got here (``null`` for the first step).
    conversion_from_previous: float | None
    #: Of all the leads, the share that got here.
    conversion_from_start: float | None


class ChannelSpeed(BaseModel):
    """Speed to lead on one channel: the leads whose first touch went on it."""

    channel: str | None
    leads: int
    p50_s: float | None
    p90_s: float | None


class PipelineFigures(BaseModel):
    """The pipeline's figures for one window."""

    stages: dict[str, int]
    conversion_rate: float
    time_to_first_contact: Percentiles
    lead_value: LeadValue
    by_source: list[SourceLine]
    funnel: list[FunnelStep] = []
    #: Speed to lead by the channel of the first touch.
    by_channel: list[ChannelSpeed] = []
    #: The currency of ``by_source[].revenue`` (the org's most used in the window).
    currency: str | None = None


class PipelinePrevious(PipelineFigures):
    """The same figures for the window before."""

    window: PreviousWindow


class PipelineReport(PipelineFigures):
    """``GET /v1/pipeline``."""

    #: With ``compare=previous`` and a ``from``: the window of equal length just before.
    previous: PipelinePrevious | None = None


class SourceRevenue(BaseModel):
    """Revenue of the customers whose first lead came from one source."""

    source: str | None
    #: Paid less refunded in the window.
    revenue: int
    #: Those who paid in the window.
    customers: int
    #: Revenue per customer.
    ltv: float | None


class SubscriptionFigures(BaseModel):
    """Subscriptions from Stripe's ``customer.subscription.*`` events."""

    #: Billing at the end of the window.
    active: int
    #: Ended in the window.
    churned: int
    #: Churned over those that were billing at some moment of the window.
    churn_rate: float | None
    #: Monthly recurring revenue at the end of the window (a yearly plan counts 1/12).
    mrr: float


class RevenueFigures(BaseModel):
    """The revenue figures for one window, in one currency."""

    #: The currency every amount is in: ``currency`` if asked, else the org's most used.
    currency: str | None
    #: Paid in the window.
    collected: int
    #: Refunded in the window.
    refunded: int
    #: Payments that succeeded in the window.
    paid_payments: int
    #: Payment attempts that failed in the window (``invoice.payment_failed``).
    failed_payments: int
    #: Succeeded over succeeded and failed.
    payment_success_rate: float | None
    by_source: list[SourceRevenue]
    subscriptions: SubscriptionFigures


class RevenuePrevious(RevenueFigures):
    """The same figures for the window before."""

    window: PreviousWindow


class RevenueReport(RevenueFigures):
    """``GET /v1/revenue``."""

    #: With ``compare=previous`` and a ``from``: the window of equal length just before.
    previous: RevenuePrevious | None = None
