"""Experiments' rules: a verdict only when the data support one, assignment decided by the lead
alone, and Thompson sampling that never starves a variant."""

from __future__ import annotations

import random
import uuid

import pytest

from models.rules.experiments import (
    CONFIDENT,
    FLOOR,
    MIN_SAMPLE,
    Tally,
    allocation,
    bucket,
    choose,
    probability_best,
    verdict,
)


def simulated(name: str, *, sends: int, rate: float, seed: int) -> Tally:
    """``sends`` sends whose replies come by chance at ``rate``."""
    rng = random.Random(seed)
    return Tally(name=name, sent=sends, replied=sum(rng.random() < rate for _ in range(sends)))


def test_fifty_sends_each_at_10_and_12_percent_is_not_enough_data() -> None:
    tallies = [
        simulated("a", sends=50, rate=0.10, seed=1),
        simulated("b", sends=50, rate=0.12, seed=2),
    ]

    words = verdict(tallies, probability_best(tallies))

    assert words == (
        f"not enough data yet: 50 and 50 sends; each variant needs {MIN_SAMPLE} before a verdict"
    )


@pytest.mark.parametrize("seed", range(5))
def test_two_thousand_sends_each_at_10_and_15_percent_names_the_better_one(seed: int) -> None:
    tallies = [
        simulated("a", sends=2000, rate=0.10, seed=seed),
        simulated("b", sends=2000, rate=0.15, seed=seed + 100),
    ]

    best = probability_best(tallies)
    words = verdict(tallies, best)

    assert best[1] > 0.999 and best[0] < 0.001
    rates = f"{tallies[1].rate * 100:.1f} % replied vs {tallies[0].rate * 100:.1f} % for a"
    assert words == f"b is better: {rates}, over 99.9 % likely best (2,000 and 2,000 sends)"


def test_a_small_difference_past_the_minimum_is_no_clear_winner() -> None:
    tallies = [Tally(name="a", sent=300, replied=30), Tally(name="b", sent=300, replied=36)]

    best = probability_best(tallies)
    words = verdict(tallies, best)

    assert 0.6 < best[1] < CONFIDENT
    assert words.startswith("no clear winner yet: b leads, 12.0 % replied vs 10.0 % for a, ")
    assert words.endswith("likely best (300 and 300 sends); keep going")


def test_probability_best_is_repeatable_and_fair_to_equal_variants() -> None:
    equal = [Tally(name="a", sent=500, replied=60), Tally(name="b", sent=500, replied=60)]
    three = [Tally(name=n, sent=400, replied=40) for n in "abc"]

    assert probability_best(equal) == probability_best(equal)
    assert abs(probability_best(equal)[0] - 0.5) < 0.02
    assert all(abs(p - 1 / 3) < 0.02 for p in probability_best(three))
    assert abs(sum(probability_best(three)) - 1) < 1e-9


def test_a_lead_gets_its_variant_from_its_id_alone_in_the_weights_proportions() -> None:
    leads = [f"lead_{uuid.UUID(int=n).hex}" for n in range(10_000)]

    picks = [choose(["a", "b"], [1, 3], bucket(lead, "hot", "1")) for lead in leads]

    # The same lead, step and sequence: the same variant, every time, on any machine.
    assert picks == [choose(["a", "b"], [1, 3], bucket(lead, "hot", "1")) for lead in leads]
    assert (
        bucket("lead_x", "hot", "1") == bucket("lead_x", "hot", "1") != bucket("lead_x", "hot", "2")
    )
    assert 0.23 < picks.count("a") / len(picks) < 0.27


def test_thompson_waits_for_the_minimum_then_favours_the_better_variant_with_a_floor() -> None:
    early = [Tally(name="a", sent=MIN_SAMPLE - 1, replied=5), Tally(name="b", sent=500, replied=90)]
    clear = [Tally(name="a", sent=2000, replied=200), Tally(name="b", sent=2000, replied=300)]
    tied = [Tally(name="a", sent=1000, replied=100), Tally(name="b", sent=1000, replied=100)]

    assert allocation(early, weights=[1, 1], thompson=True) == [1, 1]
    shares = allocation(clear, weights=None, thompson=True)
    assert shares[0] == pytest.approx(FLOOR, abs=0.001)  # never to zero
    assert shares[1] == pytest.approx(1 - FLOOR, abs=0.001)
    assert all(abs(share - 0.5) < 0.02 for share in allocation(tied, weights=None, thompson=True))
    assert allocation(clear, weights=[2, 1], thompson=False) == [2, 1]
