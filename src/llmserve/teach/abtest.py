"""A/B testing of two model variants: traffic split, statistics, tests, decision.

The pieces, in the order an experiment uses them:

- `TrafficSplit`: a deterministic, hash-based split. A user id always maps to the same
  variant (no state to store, the same answer on every server), with configurable weights.
- `summarize`: per-variant aggregation of (variant, latency, correct) observations.
- `welch_t_test`, `mann_whitney_u`: is the latency different? (means / whole distributions)
- Quality on a labelled set, **paired**: both variants score every distinct item once.
  `paired_table` builds the 2x2 table of (A right?, B right?) per item, `mcnemar_test` tests
  it (exact binomial or continuity-corrected chi-square on the discordant items) and
  `paired_difference_ci` gives Newcombe's interval for accuracy(B) - accuracy(A).
- `two_proportion_z_test`, `fisher_exact_test`, `wilson_interval`: success rates of two
  *independent* samples. They are wrong for the same items scored twice, and for an item sent
  again to a deterministic model (the repeat is no new evidence).
- `sample_size_two_proportions`, `sample_size_means`, `power_two_proportions`,
  `sample_size_mcnemar`: how many requests (or items) an experiment needs before it can see a
  difference of a given size.
- `decide`: ship / keep / keep collecting, with a non-inferiority margin on quality.

Variant "A" is the control (what serves today), "B" the candidate. Differences are B - A.
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
    """Two-sided z-test of p_b - p_a (pooled standard error for the test, unpooled for the CI).

    For two *independent* samples of independent observations (different users, different items).
    For both variants scoring the same items use `mcnemar_test`.
    """
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
    """Fisher's exact test (two-sided) on the 2x2 table of two independent samples; exact at small n."""
    table = [[successes_b, n_b - successes_b], [successes_a, n_a - successes_a]]
    odds_ratio, p = stats.fisher_exact(table, alternative="two-sided")
    return TestResult("Fisher exact", float(odds_ratio), float(p), successes_b / n_b - successes_a / n_a,
                      None, {"odds_ratio_b_vs_a": float(odds_ratio)})


# ----------------------------------------------------------------------------- paired quality


@dataclass(frozen=True)
class PairedTable:
    """Both variants scored the same n distinct items: the 2x2 table of their outcomes."""

    both_right: int
    only_a_right: int   # A right, B wrong: evidence against B
    only_b_right: int   # A wrong, B right: evidence for B
    both_wrong: int

    @property
    def n(self) -> int:
        return self.both_right + self.only_a_right + self.only_b_right + self.both_wrong

    @property
    def discordant(self) -> int:
        """Items on which the variants disagree: the only ones that tell them apart."""
        return self.only_a_right + self.only_b_right

    @property
    def accuracy_a(self) -> float:
        return (self.both_right + self.only_a_right) / self.n

    @property
    def accuracy_b(self) -> float:
        return (self.both_right + self.only_b_right) / self.n

    @property
    def difference(self) -> float:
        """accuracy(B) - accuracy(A) = (only B right - only A right) / n."""
        return (self.only_b_right - self.only_a_right) / self.n


def paired_table(correct_a: Mapping, correct_b: Mapping) -> PairedTable:
    """The paired table from {item: A was right} and {item: B was right} over the same items.

    Keyed by item, so an item counts once however often it was sent; both variants must have
    scored exactly the same items (that is what makes the design paired).
    """
    if set(correct_a) != set(correct_b):
        missing = set(correct_a) ^ set(correct_b)
        raise ValueError(f"both variants must score the same items; {len(missing)} scored by only one")
    if not correct_a:
        raise ValueError("no items")
    cells = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for item, a_right in correct_a.items():
        cells[(bool(a_right), bool(correct_b[item]))] += 1
    return PairedTable(cells[(True, True)], cells[(True, False)], cells[(False, True)], cells[(False, False)])


def paired_difference_ci(table: PairedTable, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval for accuracy(B) - accuracy(A) from paired data.

    Newcombe (1998), "Improved confidence intervals for the difference between binomial
    proportions based on paired data", Statistics in Medicine 17, 2635-2650, method 10: the
    Wilson intervals of the two accuracies, combined with the correlation phi of the pairs.
    It stays inside [-1, 1] and behaves at small n, where the Wald interval does not.
    """
    n = table.n
    if n <= 0:
        raise ValueError("the table is empty")
    e, f, g, h = table.both_right, table.only_b_right, table.only_a_right, table.both_wrong
    p1, p2 = table.accuracy_b, table.accuracy_a          # theta = p1 - p2 = B - A
    l1, u1 = wilson_interval(e + f, n, confidence)
    l2, u2 = wilson_interval(e + g, n, confidence)
    denominator = (e + f) * (g + h) * (e + g) * (f + h)
    phi = 0.0 if denominator == 0 else (e * h - f * g) / math.sqrt(denominator)
    theta = p1 - p2
    lower = theta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = theta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (max(-1.0, lower), min(1.0, upper))


def mcnemar_test(table: PairedTable, *, exact: bool = True, confidence: float = 0.95) -> TestResult:
    """McNemar's test (two-sided) of accuracy(B) = accuracy(A) on paired items.

    Only the discordant items carry information: under the null each of them is equally likely
    to favour A or B. exact=True: binomial test, p = min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c,
    1/2). exact=False: chi-square with continuity correction, (|b - c| - 1)^2 / (b + c), 1 df.
    `difference` is B - A and `ci` Newcombe's paired interval (`paired_difference_ci`).
    """
    b, c = table.only_a_right, table.only_b_right
    discordant = b + c
    if discordant == 0:
        statistic, p = 0.0, 1.0
    elif exact:
        statistic = float(min(b, c))
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), discordant, 0.5)))
    else:
        statistic = max(0.0, abs(b - c) - 1.0) ** 2 / discordant
        p = float(stats.chi2.sf(statistic, 1))
    name = "McNemar exact" if exact else "McNemar chi-square (continuity-corrected)"
    return TestResult(name, statistic, p, table.difference, paired_difference_ci(table, confidence),
                      {"only_a_right": b, "only_b_right": c, "n": table.n, "confidence": confidence,
                       "accuracy_a": table.accuracy_a, "accuracy_b": table.accuracy_b})


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


def sample_size_mcnemar(discordant: float, difference: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Paired items needed to detect accuracy difference `difference` with McNemar's test.

    `discordant` = expected fraction of items on which the variants disagree (psi), which must
    exceed |difference|. Connor (1987), Biometrics 43, 207-211:
    n = (z_{1-a/2} sqrt(psi) + z_{power} sqrt(psi - d^2))^2 / d^2.
    Few discordant items -> few items needed: pairing removes the items both get right or wrong.
    """
    if difference == 0:
        raise ValueError("difference must be non-zero")
    if not abs(difference) <= discordant <= 1:
        raise ValueError("need |difference| <= discordant <= 1 (a difference needs that many disagreements)")
    z_alpha, z_beta = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    d2 = difference * difference
    return math.ceil((z_alpha * math.sqrt(discordant) + z_beta * math.sqrt(discordant - d2)) ** 2 / d2)


# ----------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Decision:
    verdict: str  # "ship B", "keep A", "keep collecting"
    reasons: list[str]

    def __str__(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


def decide(latency: TestResult, quality: TestResult, *, margin: float, alpha: float = 0.05,
           max_latency_increase: float = 0.0) -> Decision:
    """Ship the candidate B, keep the control A, or keep collecting data.

    `quality` compares accuracies, B - A, and must carry a confidence interval (e.g.
    `mcnemar_test(...)`, whose `ci` is Newcombe's paired interval); `margin` (delta > 0) is the
    largest accuracy loss you accept, fixed before the experiment. Non-inferiority: B's quality is
    acceptable only if the *lower* confidence bound of B - A is above -delta. "Not significantly
    worse" is not enough: with little data every drop is "not significant".
    `latency.difference` is B - A (seconds; negative = B faster), judged by its test at `alpha`.

    - upper bound < -delta (B worse by more than the margin) -> keep A.
    - B significantly slower by more than `max_latency_increase` -> keep A.
    - lower bound > -delta (non-inferior) and B significantly faster, or better (lower bound > 0)
      -> ship B.
    - otherwise -> keep collecting (non-inferiority not shown, or no gain shown).
    """
    if not margin > 0:
        raise ValueError(f"margin must be positive (an accuracy loss, e.g. 0.05), got {margin!r}")
    if quality.ci is None:
        raise ValueError(f"the quality test ({quality.name}) must give a confidence interval for B - A")
    lower, upper = quality.ci
    level = quality.details.get("confidence", 0.95)
    slower = latency.significant(alpha) and latency.difference > max_latency_increase
    faster = latency.significant(alpha) and latency.difference < 0
    inferior = upper < -margin
    non_inferior = lower > -margin
    superior = lower > 0

    if inferior:
        verdict_q = f"B is worse by more than the margin (upper bound {upper * 100:+.1f} < {-margin * 100:.1f})"
    elif non_inferior:
        verdict_q = (f"B is non-inferior (lower bound {lower * 100:+.1f} > {-margin * 100:.1f})"
                     + (" and better (lower bound > 0)" if superior else ""))
    else:
        verdict_q = (f"non-inferiority not shown (lower bound {lower * 100:+.1f} <= {-margin * 100:.1f}: "
                     "a loss beyond the margin is still plausible)")
    reasons = [f"accuracy B-A = {quality.difference * 100:+.1f} points, {level:.0%} CI "
               f"{lower * 100:+.1f} to {upper * 100:+.1f} ({quality.name}, p = {quality.p_value:.3g}); "
               f"margin {margin * 100:.1f} points: {verdict_q}",
               f"latency B-A = {latency.difference * 1000:+.1f} ms ({latency.name}, p = {latency.p_value:.3g}, "
               f"{'significant' if latency.significant(alpha) else 'not significant'} at alpha = {alpha})"]
    if inferior or slower:
        return Decision("keep A", reasons)
    if non_inferior and (faster or superior):
        return Decision("ship B", reasons)
    if non_inferior:
        return Decision("keep collecting", reasons + ["B is non-inferior but shows no significant gain"])
    return Decision("keep collecting", reasons + ["quality: more distinct items are needed to show non-inferiority"])
