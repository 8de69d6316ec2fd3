"""An amount as a person types it, in the currency's smallest unit, or why it isn't one."""

from __future__ import annotations

import pytest

from models.rules.payment_requests import BadAmount, amount_in_minor_units


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("120.50", "usd", 12_050),
        (" 120.5 ", "gbp", 12_050),
        ("120", "eur", 12_000),
        ("1,200.00", "usd", 120_000),
        ("0.01", "usd", 1),
        ("999,999.99", "usd", 99_999_999),
        ("5000", "jpy", 5_000),
    ],
)
def test_an_amount_in_major_units_becomes_minor_units(
    typed: str, currency: str, minor: int
) -> None:
    assert amount_in_minor_units(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "says"),
    [
        ("", "usd", "Give the amount, like 120.50."),
        ("12,50x", "usd", "Give the amount as a number only, like 120.50."),
        ("$120", "usd", "Give the amount as a number only, like 120.50."),
        ("-5", "usd", "Give the amount as a number only, like 120.50."),
        ("12,50", "usd", "Use a point before the cents, like 12.50."),
        ("1.234", "usd", "At most two digits after the point, like 120.50."),
        ("0", "usd", "The amount must be more than zero."),
        ("0.00", "gbp", "The amount must be more than zero."),
        ("1000000", "usd", "At most $999,999.99 in one request."),
        ("5.5", "jpy", "JPY has no smaller unit: give a whole number."),
    ],
)
def test_what_is_not_an_amount_says_what_to_type(typed: str, currency: str, says: str) -> None:
    with pytest.raises(BadAmount) as refused:
        amount_in_minor_units(typed, currency)
    assert str(refused.value) == says
