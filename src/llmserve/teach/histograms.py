"""How Prometheus estimates a quantile from a histogram, step by step (theory 2.2 §8 and §10).

A Prometheus histogram keeps, for each bucket upper bound `le`, how many observations were <= le
(cumulative counts, the last bucket `+Inf` = all of them). `histogram_quantile(q, ...)` never sees the
observations. It finds the bucket holding the observation of rank q x total, and assumes the observations
inside that bucket are spread evenly between its lower and upper bound (linear interpolation). Its error
is therefore bounded by the width of that bucket, whatever the real samples were.

    estimate = bucket_quantile(0.9, [(0.1, 3), (0.25, 12), (0.5, 19), (float("inf"), 20)])
    estimate.value, estimate.lower, estimate.upper        # 0.4643 = 0.25 + 0.25 x (18 - 12) / 7, 0.25, 0.5

`bucket_quantile` follows Prometheus 2.x's `bucketQuantile` (promql/quantile.go) rule for rule, so its
value equals what Prometheus returns for the same counts; `cumulative_counts` puts raw samples into the
same buckets, to compare a histogram with the samples it was built from.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class QuantileEstimate:
    """histogram_quantile's answer and how it was reached."""

    q: float
    value: float            # the estimate (what Prometheus returns)
    total: float            # observations in the histogram (the +Inf bucket's count)
    rank: float             # q x total: the observation the quantile stands for
    lower: float            # the bucket the rank falls in: its lower bound (the previous upper bound, or 0)
    upper: float            # ... and its upper bound `le`
    below: float            # observations in the buckets below it
    inside: float           # observations inside it
    rule: str               # "interpolated", or why no interpolation happened

    @property
    def fraction_into_bucket(self) -> float:
        """How far into the bucket the rank lies, 0..1: the interpolation weight."""
        return (self.rank - self.below) / self.inside if self.inside else math.nan

    def explain(self, unit: str = "s", scale: float = 1.0) -> str:
        """One sentence: the rank, the bucket, the interpolation (values multiplied by `scale`, shown in `unit`)."""
        if self.rule != "interpolated":
            return f"p{100 * self.q:g} = {scale * self.value:.4g} {unit} ({self.rule})"
        return (f"rank {self.q:g} x {self.total:g} = {self.rank:.2f} falls in the bucket "
                f"({scale * self.lower:.4g}, {scale * self.upper:.4g}] {unit}, which holds observations "
                f"{self.below:g} < rank <= {self.below + self.inside:g}; linear interpolation: "
                f"{scale * self.lower:.4g} + ({scale * self.upper:.4g} - {scale * self.lower:.4g}) x "
                f"({self.rank:.2f} - {self.below:g}) / {self.inside:g} = {scale * self.value:.4g} {unit}")


def bucket_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> QuantileEstimate:
    """Prometheus's histogram_quantile on cumulative buckets [(upper bound `le`, count <= le), ...].

    Rules, as in Prometheus 2.x: q < 0 gives -Inf and q > 1 +Inf; without a +Inf bucket, or with no
    observations, the answer is NaN; counts that decrease are raised to the running maximum (a scrape
    race); a rank in the +Inf bucket returns the largest finite upper bound; a rank in the first bucket
    interpolates from 0 (or returns that bound when it is <= 0).
    """
    ordered = sorted((float(le), float(count)) for le, count in buckets)
    merged: list[list[float]] = []
    for le, count in ordered:                       # equal bounds (e.g. "1" and "1.0") are one bucket
        if merged and merged[-1][0] == le:
            merged[-1][1] += count
        else:
            merged.append([le, count])
    if q < 0:
        return QuantileEstimate(q, -math.inf, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, "q < 0")
    if q > 1:
        return QuantileEstimate(q, math.inf, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, "q > 1")
    if len(merged) < 2 or merged[-1][0] != math.inf:
        return QuantileEstimate(q, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                                "no +Inf bucket, or a single bucket")
    running = 0.0
    for bucket in merged:                            # ensure the counts never decrease
        running = max(running, bucket[1])
        bucket[1] = running
    total = merged[-1][1]
    if total == 0:
        return QuantileEstimate(q, math.nan, 0.0, 0.0, math.nan, math.nan, 0.0, 0.0, "no observations")
    rank = q * total
    counts = [count for _, count in merged]
    index = bisect.bisect_left(counts[:-1], rank)   # the first bucket whose count reaches the rank
    if index == len(merged) - 1:
        return QuantileEstimate(q, merged[-2][0], total, rank, merged[-2][0], math.inf, counts[-2],
                                total - counts[-2], "rank in the +Inf bucket: the largest finite bound")
    upper = merged[index][0]
    if index == 0 and upper <= 0:
        return QuantileEstimate(q, upper, total, rank, upper, upper, 0.0, counts[0], "first bucket bound <= 0")
    lower = merged[index - 1][0] if index > 0 else 0.0
    below = counts[index - 1] if index > 0 else 0.0
    inside = counts[index] - below
    value = lower + (upper - lower) * ((rank - below) / inside) if inside else math.nan  # 0/0 only when q = 0
    return QuantileEstimate(q, value, total, rank, lower, upper, below, inside, "interpolated")


def cumulative_counts(samples: Iterable[float], upper_bounds: Sequence[float]) -> list[tuple[float, int]]:
    """Raw samples counted into cumulative buckets [(le, samples <= le), ...], +Inf added if missing.

    What a Prometheus histogram with these bucket bounds would hold after observing exactly `samples`.
    """
    bounds = sorted(set(float(b) for b in upper_bounds) | {math.inf})
    values = sorted(samples)
    return [(le, bisect.bisect_right(values, le)) for le in bounds]
