"""A payment request's follow-up: what goes when (the link, a reminder before the due date,
two after it, the steps after a failed payment) and the words of each. Pure: the times come in
as arguments (the ``PaymentFollowup`` workflow calls these with the request as it stands)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from models.rules.messages import fill_safe

#: A reminder this long before the due date.
REMIND_BEFORE = timedelta(days=1)
#: Reminders this long after it (the last is the final notice).
OVERDUE_AFTER = (timedelta(days=1), timedelta(days=4))
#: After a failed payment: the notice at once, then one more this long after.
RETRY_AFTER = timedelta(days=2)
#: Unpaid this long after the due date (and after the last failure's steps): given up.
GIVE_UP_AFTER = timedelta(days=7)
#: Currencies without a minor unit (Stripe's zero-decimal list, the ones a business here uses).
ZERO_DECIMAL = frozenset({"jpy", "krw", "vnd", "clp", "isk", "ugx", "xaf", "xof"})
_SYMBOLS = {"usd": "$", "gbp": "£", "eur": "€", "cad": "CA$", "aud": "A$", "nzd": "NZ$"}
#: The most one request asks for, in minor units (as ``POST /v1/.../payment-requests`` takes).
MAX_AMOUNT = 99_999_999
#: ``1234``, ``1,234`` (whole thousands), then an optional point and up to two digits.
_AMOUNT = re.compile(r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<cents>\d*))?")
#: ``12,50``: a comma where the cents' point goes (a comma that can't be a thousands mark).
_COMMA_CENTS = re.compile(r"\d+,\d{1,2}")


class PaymentText(StrEnum):
    """The messages a payment request sends (each once per key)."""

    LINK = "link"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    FINAL = "final"
    FAILED = "failed"
    RETRY = "retry"
    PAID = "paid"


def money(amount: int, currency: str) -> str:
    """``$120.50``, ``£80.00``, ``¥5000 JPY``: an amount in minor units, for a customer."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return f"{amount} {code.upper()}"
    value = f"{amount / 100:,.2f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{value}" if symbol else f"{value} {code.upper()}"


class BadAmount(ValueError):
    """An amount a person typed that isn't one, in words for them."""


def amount_in_minor_units(text: str, currency: str) -> int:
    """What a person typed as an amount in major units (``120.50``, ``1,200``) in
    ``currency``'s smallest unit (``12050``, ``120000``). ``BadAmount``, saying what to type
    instead, for anything else: no number, a comma for the point, too many decimals, zero,
    or more than ``MAX_AMOUNT``."""
    code = currency.lower()
    example = "5000" if code in ZERO_DECIMAL else "120.50"
    typed = text.strip()
    if not typed:
        raise BadAmount(f"Give the amount, like {example}.")
    if code not in ZERO_DECIMAL and _COMMA_CENTS.fullmatch(typed):
        raise BadAmount(f"Use a point before the cents, like {typed.replace(',', '.')}.")
    found = _AMOUNT.fullmatch(typed)
    if found is None:
        raise BadAmount(f"Give the amount as a number only, like {example}.")
    whole, cents = found["whole"].replace(",", ""), found["cents"]
    if code in ZERO_DECIMAL:
        if cents and cents.strip("0"):
            raise BadAmount(f"{code.upper()} has no smaller unit: give a whole number.")
        minor = int(whole)
    else:
        if cents is not None and len(cents) > 2:
            raise BadAmount("At most two digits after the point, like 120.50.")
        minor = int(Decimal(f"{whole}.{cents or '0'}") * 100)
    if minor < 1:
        raise BadAmount("The amount must be more than zero.")
    if minor > MAX_AMOUNT:
        raise BadAmount(f"At most {money(MAX_AMOUNT, code)} in one request.")
    return minor


def payment_text(
    kind: PaymentText,
    *,
    amount: int,
    currency: str,
    description: str,
    url: str,
    due_at: datetime,
    zone: ZoneInfo,
) -> str:
    """The words of a payment message, with ``{first_name}`` and ``{org_name}`` left for the
    send to fill. None asks for CANCEL or STOP."""
    what = fill_safe(description)
    sum_ = money(amount, currency)
    link = fill_safe(url)
    due = due_at.astimezone(zone).strftime("%a %d %b")
    if kind == PaymentText.LINK:
        return (
            f"Hi {{first_name}}, here is your {{org_name}} payment link for {what} "
            f"({sum_}), due {due}: {link}"
        )
    if kind == PaymentText.DUE_SOON:
        return f"Reminder: {sum_} for {what} is due tomorrow. Pay here: {link}"
    if kind == PaymentText.OVERDUE:
        return f"Hi {{first_name}}, {sum_} for {what} was due {due}. You can pay here: {link}"
    if kind == PaymentText.FINAL:
        return (
            f"Final reminder from {{org_name}}: {sum_} for {what} is overdue. Pay here: {link} "
            "or reply to talk to us."
        )
    if kind == PaymentText.FAILED:
        return (
            f"Hi {{first_name}}, your payment of {sum_} for {what} didn't go through. "
            f"You can try again here: {link}"
        )
    if kind == PaymentText.RETRY:
        return f"Reminder: {sum_} for {what} is still to pay after a failed payment. {link}"
    if kind == PaymentText.PAID:
        return f"Thank you, {{first_name}}! We received {sum_} for {what}."
    raise ValueError(kind)


@dataclass(frozen=True, kw_only=True)
class FollowUpStep:
    """One message of a request's follow-up: its key step, kind and when it is due."""

    step: str
    kind: PaymentText
    due: datetime


def follow_up(
    *,
    created_at: datetime,
    due_at: datetime,
    failures: int,
    failed_at: datetime | None,
    paid_at: datetime | None,
) -> list[FollowUpStep]:
    """Every message the request calls for as it stands (the caller drops those done).

    The link at once; a reminder ``REMIND_BEFORE`` the due date (if that is after the
    request was made); the ``OVERDUE_AFTER`` reminders; after each failed payment (``failures``
    counts them) a notice at once and one ``RETRY_AFTER``. Once paid: only the thanks.
    """
    if paid_at is not None:
        return [
            FollowUpStep(step="link", kind=PaymentText.LINK, due=created_at),
            FollowUpStep(step="paid", kind=PaymentText.PAID, due=paid_at),
        ]
    steps = [FollowUpStep(step="link", kind=PaymentText.LINK, due=created_at)]
    if due_at - REMIND_BEFORE > created_at:
        steps.append(
            FollowUpStep(step="due-soon", kind=PaymentText.DUE_SOON, due=due_at - REMIND_BEFORE)
        )
    first, last = OVERDUE_AFTER
    steps.append(FollowUpStep(step="overdue", kind=PaymentText.OVERDUE, due=due_at + first))
    steps.append(FollowUpStep(step="final", kind=PaymentText.FINAL, due=due_at + last))
    if failures and failed_at is not None:
        steps.append(
            FollowUpStep(step=f"failed-{failures}", kind=PaymentText.FAILED, due=failed_at)
        )
        steps.append(
            FollowUpStep(
                step=f"retry-{failures}", kind=PaymentText.RETRY, due=failed_at + RETRY_AFTER
            )
        )
    return steps


def gives_up_at(*, due_at: datetime, failed_at: datetime | None) -> datetime:
    """When an unpaid request is given up: ``GIVE_UP_AFTER`` the due date, or after the last
    failure's retry reminder if that is later."""
    last = due_at + GIVE_UP_AFTER
    if failed_at is not None:
        last = max(last, failed_at + RETRY_AFTER + timedelta(days=1))
    return last
