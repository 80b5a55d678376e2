"""A/B testing of two model variants: traffic split, per-variant statistics, tests, decision.

The pieces, in the order an experiment uses them:

- `TrafficSplit`: a deterministic, hash-based split. A user id always maps to the same
  variant (no state to store, the same answer on every server), with configurable weights.
- `summarize`: per-variant aggregation of (variant, latency, correct) observations.
- `welch_t_test`, `mann_whitney_u`: is the latency different? (means / whole distributions)
- `two_proportion_z_test`, `fisher_exact_test`: is the quality (a success rate) different?
- `wilson_interval`: a confidence interval for one success rate.
- `sample_size_two_proportions`, `sample_size_means`, `power_two_proportions`: how many
  requests an experiment needs before it can see a difference of a given size.
- `decide`: turn the test results into ship / keep / keep collecting, with the reasons.

Variant "A" is the control (what serves today), "B" the candidate.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

# ----------------------------------------------------------------------------- split


class TrafficSplit:
    """Deterministic weighted split of users into variants.

    The variant of a user is a pure function of (salt, user id): sha256 maps the pair to a
    number in [0, 1), and the cumulative weights cut [0, 1) into one interval per variant.
    Change the salt to reshuffle users for a new experiment; keep it to keep assignments.

        split = TrafficSplit({"A": 0.5, "B": 0.5}, salt="sentiment-int8")
        split.assign("user-42")  # always the same answer
    """

    def __init__(self, weights: Mapping[str, float], salt: str = ""):
        if not weights:
            raise ValueError("at least one variant is needed")
        if any(w < 0 or not math.isfinite(w) for w in weights.values()):
            raise ValueError(f"weights must be finite and >= 0, got {dict(weights)}")
        total = float(sum(weights.values()))
        if total <= 0:
            raise ValueError("the weights must not all be zero")
        self.weights = {name: w / total for name, w in weights.items()}
        self.salt = salt
        self._names = [name for name, w in self.weights.items() if w > 0]  # zero weight: never assigned
        self._edges = np.cumsum([self.weights[n] for n in self._names])
        self._edges[-1] = 1.0  # no gap at the top from rounding

    @staticmethod
    def bucket(user_id: str | int, salt: str = "") -> float:
        """The user's position in [0, 1): the first 8 bytes of sha256(salt:user_id)."""
        digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def assign(self, user_id: str | int) -> str:
        position = self.bucket(user_id, self.salt)
        index = int(np.searchsorted(self._edges, position, side="right"))
        return self._names[min(index, len(self._names) - 1)]

    def counts(self, user_ids: Iterable[str | int]) -> dict[str, int]:
        counts = dict.fromkeys(self.weights, 0)
        for user in user_ids:
            counts[self.assign(user)] += 1
        return counts

    def __repr__(self) -> str:
        return f"TrafficSplit({self.weights}, salt={self.salt!r})"


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class VariantSummary:
    variant: str
    n: int
    latency_mean: float
    latency_p50: float
    latency_p90: float
    latency_p99: float
    successes: int
    accuracy: float
    accuracy_ci: tuple[float, float]

    def row(self) -> str:
        lo, hi = self.accuracy_ci
        return (f"{self.variant}: n={self.n}, latency mean {self.latency_mean * 1000:.0f} ms, "
                f"p50 {self.latency_p50 * 1000:.0f} ms, p90 {self.latency_p90 * 1000:.0f} ms | "
                f"accuracy {self.accuracy:.1%} ({self.successes}/{self.n}, 95% CI {lo:.1%}-{hi:.1%})")


def summarize(observations: Iterable[tuple[str, float, bool]], confidence: float = 0.95) -> dict[str, VariantSummary]:
    """Aggregate (variant, latency seconds, correct) observations per variant."""
    latencies: dict[str, list[float]] = {}
    correct: dict[str, list[bool]] = {}
    for variant, latency, ok in observations:
        latencies.setdefault(variant, []).append(float(latency))
        correct.setdefault(variant, []).append(bool(ok))
    out = {}
    for variant in sorted(latencies):
        lat = np.asarray(latencies[variant])
        successes = int(sum(correct[variant]))
        n = len(lat)
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        out[variant] = VariantSummary(variant, n, float(lat.mean()), float(p50), float(p90), float(p99),
                                      successes, successes / n, wilson_interval(successes, n, confidence))
    return out


# ----------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test comparing B with A. `difference` is B - A (in the test's unit)."""

    name: str
    statistic: float
    p_value: float
    difference: float
    ci: tuple[float, float] | None = None
    details: dict = field(default_factory=dict)

    __test__ = False  # not a pytest test class

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (sensible also near 0 and 1, unlike p ± z·se)."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must be between 0 and n={n}")
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: no rounding residue
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def welch_t_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> TestResult:
    """Welch's t-test (unequal variances) of mean(b) - mean(a), with a confidence interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each group needs at least two observations")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    diff = float(b.mean() - a.mean())
    if se == 0:
        return TestResult("Welch t-test", 0.0 if diff == 0 else math.copysign(math.inf, diff),
                          1.0 if diff == 0 else 0.0, diff, (diff, diff), {"df": math.nan})
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, df)) * se
    return TestResult("Welch t-test", float(t), p, diff, (diff - half, diff + half),
                      {"df": float(df), "mean_a": float(a.mean()), "mean_b": float(b.mean())})


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Mann-Whitney U (two-sided): do latencies of B tend to be larger or smaller than A's?

    Makes no normality assumption (latency distributions are skewed). `difference` is the
    difference of medians; `details["prob_b_greater"]` = P(B > A) + P(B = A) / 2 = U_b / (n_a n_b).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    result = stats.mannwhitneyu(b, a, alternative="two-sided")
    u_b = float(result.statistic)
    return TestResult("Mann-Whitney U", u_b, float(result.pvalue), float(np.median(b) - np.median(a)), None,
                      {"prob_b_greater": u_b / (len(a) * len(b))})


def two_proportion_z_test(successes_a: int, n_a: int, successes_b: int, n_b: int,
                          confidence: float = 0.95) -> TestResult:
    """Two-sided z-test of p_b - p_a (pooled standard error for the test, unpooled for the CI)."""
    if min(n_a, n_b) <= 0:
        raise ValueError("both groups need observations")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = p_b - p_a
    if se_pooled == 0:
        z, p = 0.0, 1.0
    else:
        z = diff / se_pooled
        p = float(2 * stats.norm.sf(abs(z)))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half = _z(confidence) * se
    return TestResult("two-proportion z-test", float(z), p, diff, (diff - half, diff + half),
                      {"p_a": p_a, "p_b": p_b})


def fisher_exact_test(successes_a: int, n_a: int, successes_b: int, n_b: int) -> TestResult:
    """Fisher's exact test (two-sided) on the 2x2 table; exact at small samples."""
    table = [[successes_b, n_b - successes_b], [successes_a, n_a - successes_a]]
    odds_ratio, p = stats.fisher_exact(table, alternative="two-sided")
    return TestResult("Fisher exact", float(odds_ratio), float(p), successes_b / n_b - successes_a / n_a,
                      None, {"odds_ratio_b_vs_a": float(odds_ratio)})


# ----------------------------------------------------------------------------- power


def sample_size_two_proportions(p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Requests per variant to detect p_a vs p_b with a two-sided test at `alpha` with `power`.

    The classical normal-approximation formula (Fleiss, without continuity correction):
    n = (z_{1-a/2} sqrt(2 pbar qbar) + z_{power} sqrt(p_a q_a + p_b q_b))^2 / (p_a - p_b)^2.
    """
    if p_a == p_b:
        raise ValueError("p_a and p_b must differ (no sample size detects a zero difference)")
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_beta = stats.norm.ppf(power)
    p_bar = (p_a + p_b) / 2
    numerator = (z_alpha * math.sqrt(2 * p_bar * (1 - p_bar))
                 + z_beta * math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))) ** 2
    return math.ceil(numerator / (p_a - p_b) ** 2)


def power_two_proportions(p_a: float, p_b: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-proportion z-test with n requests per variant."""
    if n <= 0:
        raise ValueError("n must be positive")
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    p_bar = (p_a + p_b) / 2
    se0 = math.sqrt(2 * p_bar * (1 - p_bar) / n)
    se1 = math.sqrt((p_a * (1 - p_a) + p_b * (1 - p_b)) / n)
    if se1 == 0:
        return 1.0 if p_a != p_b else 0.0
    delta = abs(p_b - p_a)
    return float(stats.norm.cdf((delta - z_alpha * se0) / se1) + stats.norm.cdf((-delta - z_alpha * se0) / se1))


def sample_size_means(delta: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Requests per variant to detect a difference `delta` of means with standard deviation `sd`.

    n = 2 (z_{1-a/2} + z_{power})^2 sd^2 / delta^2 (normal approximation).
    """
    if delta == 0 or sd <= 0:
        raise ValueError("delta must be non-zero and sd positive")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(2 * z * z * sd * sd / (delta * delta))


# ----------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Decision:
    verdict: str  # "ship B", "keep A", "keep collecting"
    reasons: list[str]

    def __str__(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


def decide(latency: TestResult, quality: TestResult, *, alpha: float = 0.05,
           max_accuracy_drop: float = 0.0, max_latency_increase: float = 0.0) -> Decision:
    """Ship the candidate B, keep the control A, or keep collecting data.

    `latency.difference` is B - A (seconds; negative = B faster), `quality.difference` is
    B - A (accuracy; positive = B better). A difference counts only when its test is
    significant at `alpha`; the tolerances say how much harm is acceptable anyway.
    - B significantly less accurate by more than `max_accuracy_drop` -> keep A.
    - B significantly slower by more than `max_latency_increase` -> keep A.
    - otherwise, B significantly better on either measure -> ship B.
    - otherwise -> keep collecting (no significant difference at this sample size).
    """
    reasons = []
    worse_quality = quality.significant(alpha) and quality.difference < -max_accuracy_drop
    slower = latency.significant(alpha) and latency.difference > max_latency_increase
    better_quality = quality.significant(alpha) and quality.difference > 0
    faster = latency.significant(alpha) and latency.difference < 0

    def describe(test: TestResult, what: str, unit: str, scale: float) -> str:
        verdict = "significant" if test.significant(alpha) else "not significant"
        return (f"{what} B-A = {test.difference * scale:+.1f} {unit} ({test.name}, "
                f"p = {test.p_value:.3g}, {verdict} at alpha = {alpha})")

    reasons.append(describe(quality, "accuracy", "percentage points", 100))
    reasons.append(describe(latency, "latency", "ms", 1000))
    if worse_quality or slower:
        return Decision("keep A", reasons)
    if better_quality or faster:
        return Decision("ship B", reasons)
    return Decision("keep collecting", reasons + ["no significant difference at this sample size"])
