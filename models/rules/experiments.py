"""Experiments on sequence steps: which variant a lead gets, how likely each variant is to be
best, and a verdict a small business can trust. Pure.

Each variant's reply rate gets a Beta(1, 1) prior (every rate equally likely) updated by its
own sends and replies (Beta-Binomial). "Probability best" is the share of joint draws from the
variants' posteriors in which the variant has the highest rate: a seeded Monte Carlo, so the
same figures always give the same answer. No winner is named before every variant has
``MIN_SAMPLE`` sends, nor until one is ``CONFIDENT`` likely best: at a few dozen sends a
"winner" is noise, and a wrong one costs real customers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy

#: Sends each variant needs before the results name a winner or Thompson sampling starts.
MIN_SAMPLE = 100
#: How likely best a variant must be to be named the better one.
CONFIDENT = 0.95
#: Thompson sampling never gives a variant less than this share of new leads, so the
#: estimate of the one that looks worse stays honest.
FLOOR = 0.1
#: Joint draws from the posteriors (the Monte Carlo error of a probability is under 0.4 %).
DRAWS = 20_000


def bucket(*parts: str) -> float:
    """A number in [0, 1) decided by ``parts`` alone (the lead, the sequence, the step): the
    same on every retry, restart and replay, on every machine."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def experiment_key(variants: Sequence[tuple[str, str, str | None]]) -> str:
    """The identity of an experiment's version: its variants' names, texts and channels, in
    order. A text edited, a variant added or removed: a new key, and figures from zero."""
    return hashlib.sha256(repr(list(variants)).encode()).hexdigest()[:16]


def choose(names: Sequence[str], shares: Sequence[float], u: float) -> str:
    """The variant whose slice of [0, 1) (``shares`` in order, normalised) holds ``u``."""
    total = sum(shares)
    edge = 0.0
    for name, share in zip(names, shares, strict=True):
        edge += share / total
        if u < edge:
            return name
    return names[-1]


@dataclass(frozen=True, kw_only=True)
class Tally:
    """One variant's sends and the replies they drew."""

    name: str
    sent: int
    replied: int

    @property
    def rate(self) -> float:
        """Replies per send (0 with no sends)."""
        return self.replied / self.sent if self.sent else 0.0


def probability_best(tallies: Sequence[Tally], *, draws: int = DRAWS) -> list[float]:
    """For each variant, the probability its reply rate is the highest (Beta-Binomial
    posteriors from a uniform prior; seeded by the figures, so repeatable)."""
    if not tallies:
        return []
    if len(tallies) == 1:
        return [1.0]
    seed = int.from_bytes(
        hashlib.sha256(repr([(t.sent, t.replied) for t in tallies]).encode()).digest()[:8], "big"
    )
    rng = numpy.random.default_rng(seed)
    replied = numpy.array([t.replied for t in tallies], dtype=float)
    missed = numpy.array([t.sent - t.replied for t in tallies], dtype=float)
    samples = rng.beta(1 + replied, 1 + missed, size=(draws, len(tallies)))
    wins = numpy.bincount(samples.argmax(axis=1), minlength=len(tallies))
    return [float(count) / draws for count in wins]


def allocation(
    tallies: Sequence[Tally], *, weights: Sequence[float] | None, thompson: bool
) -> list[float]:
    """Each variant's share of new leads: ``weights`` (equal without), or, with ``thompson``
    once every variant has ``MIN_SAMPLE`` sends, its probability of being best, never below
    ``FLOOR``."""
    fixed = list(weights) if weights else [1.0] * len(tallies)
    if not thompson or any(t.sent < MIN_SAMPLE for t in tallies):
        return fixed
    floor = min(FLOOR, 1 / len(tallies))
    spare = 1 - floor * len(tallies)
    return [floor + spare * p for p in probability_best(tallies)]


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def _likely(p: float) -> str:
    """``p`` rounded down (94.96 % is not "95 %", the threshold it missed)."""
    return "over 99.9 %" if p > 0.999 else f"{math.floor(p * 1000) / 10:.1f} %"


def _sends(tallies: Sequence[Tally]) -> str:
    counts = [f"{t.sent:,}" for t in tallies]
    return (" and ".join(counts) if len(counts) == 2 else ", ".join(counts)) + " sends"


def verdict(tallies: Sequence[Tally], best: Sequence[float]) -> str:
    """The step's result in words: not enough data yet, no clear winner yet, or which variant
    is better, by how much and how surely, with the sample sizes it rests on."""
    if len(tallies) < 2:
        return "no experiment: one version only"
    short = [t for t in tallies if t.sent < MIN_SAMPLE]
    if short:
        return (
            f"not enough data yet: {_sends(tallies)}; each variant needs {MIN_SAMPLE:,} "
            "before a verdict"
        )
    ranked = sorted(zip(tallies, best, strict=True), key=lambda pair: -pair[1])
    (leader, p), (runner_up, _) = ranked[0], ranked[1]
    rates = f"{_percent(leader.rate)} replied vs {_percent(runner_up.rate)} for {runner_up.name}"
    if p >= CONFIDENT:
        return f"{leader.name} is better: {rates}, {_likely(p)} likely best ({_sends(tallies)})"
    return (
        f"no clear winner yet: {leader.name} leads, {rates}, {_likely(p)} likely best "
        f"({_sends(tallies)}); keep going"
    )
