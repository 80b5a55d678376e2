"""A canary rollout controller: staged traffic weights, decisions from measured requests only.

The controller does not send requests and does not talk to a server. It says which arm a request
goes to (`route`), takes the outcome of each request (`record`), and at the end of a stage compares
the canary with the stable version against `Thresholds` (`decide`): roll back, go to the next
stage, or promote after the last one. The caller applies the decision (in Lab 2.2 · 03: a Triton
`load_model` with a changed version policy). Everything it decides is explained in `reasons`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmserve.teach.formulas import percentiles

STABLE, CANARY = "stable", "canary"
NEXT, PROMOTE, ROLLBACK = "next", "promote", "rollback"


@dataclass(frozen=True)
class Thresholds:
    """When is a canary worse than the stable version?

    - error rate: canary error rate - stable error rate > `max_error_rate_increase`;
    - latency: canary p95 > stable p95 * `max_p95_ratio` AND the difference > `min_p95_delta_ms`
      (the absolute floor keeps a 1.2 ms vs 0.7 ms jitter from counting as a regression).
    A stage is judged only with at least `min_requests` canary requests; fewer -> keep collecting.
    """
    max_error_rate_increase: float = 0.02
    max_p95_ratio: float = 1.5
    min_p95_delta_ms: float = 2.0
    min_requests: int = 20


@dataclass(frozen=True)
class ArmStats:
    requests: int
    errors: int
    p95_ms: float | None  # None when no request of this arm succeeded

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def arm_stats(outcomes: Sequence[tuple[bool, float]]) -> ArmStats:
    """(ok, latency seconds) pairs -> request count, errors and p95 of the successful ones."""
    ok_latencies = [latency for ok, latency in outcomes if ok]
    p95 = 1000 * percentiles(ok_latencies, (95,))[95] if ok_latencies else None
    return ArmStats(len(outcomes), len(outcomes) - len(ok_latencies), p95)


@dataclass(frozen=True)
class StageDecision:
    stage: int
    weight: float
    action: str  # NEXT, PROMOTE or ROLLBACK
    stable: ArmStats
    canary: ArmStats
    reasons: tuple[str, ...]


def judge(stable: ArmStats, canary: ArmStats, thresholds: Thresholds) -> tuple[bool, list[str]]:
    """Is the canary acceptable? Returns (ok, reasons): one reason per check, with the numbers."""
    reasons, ok = [], True
    increase = canary.error_rate - stable.error_rate
    if increase > thresholds.max_error_rate_increase:
        ok = False
        reasons.append(f"error rate {canary.error_rate:.1%} vs stable {stable.error_rate:.1%} "
                       f"(+{increase:.1%} > +{thresholds.max_error_rate_increase:.1%})")
    else:
        reasons.append(f"error rate {canary.error_rate:.1%} vs stable {stable.error_rate:.1%}: ok")
    if canary.p95_ms is None:
        ok = False
        reasons.append("no successful canary request: latency unknown")
    elif stable.p95_ms is not None:
        ratio = canary.p95_ms / stable.p95_ms if stable.p95_ms > 0 else math.inf
        slower = ratio > thresholds.max_p95_ratio and canary.p95_ms - stable.p95_ms > thresholds.min_p95_delta_ms
        verdict = f"> x{thresholds.max_p95_ratio:g}" if slower else "ok"
        reasons.append(f"p95 {canary.p95_ms:.1f} ms vs stable {stable.p95_ms:.1f} ms (x{ratio:.2f}): {verdict}")
        ok = ok and not slower
    return ok, reasons


@dataclass
class CanaryController:
    """Staged canary rollout. Use: for each stage, `route(i)` per request, `record(...)` each
    outcome, then `decide()`; stop when `finished` (the last decision says promote or rollback)."""
    stages: Sequence[float] = (0.05, 0.25, 0.5, 1.0)
    thresholds: Thresholds = field(default_factory=Thresholds)
    stage: int = 0
    decisions: list[StageDecision] = field(default_factory=list)
    _outcomes: dict[str, list[tuple[bool, float]]] = field(default_factory=lambda: {STABLE: [], CANARY: []})

    def __post_init__(self):
        weights = list(self.stages)
        if not weights or any(not 0 < w <= 1 for w in weights) or weights != sorted(weights):
            raise ValueError(f"stages must be increasing weights in (0, 1], got {weights}")

    @property
    def weight(self) -> float:
        return self.stages[self.stage]

    @property
    def finished(self) -> bool:
        return bool(self.decisions) and self.decisions[-1].action in (PROMOTE, ROLLBACK)

    @property
    def outcome(self) -> str | None:
        return self.decisions[-1].action if self.finished else None

    def route(self, index: int) -> str:
        """Arm of request `index` at the current weight: evenly spread, deterministic
        (request i goes to the canary when floor((i+1)*w) > floor(i*w))."""
        w = self.weight
        return CANARY if math.floor((index + 1) * w) > math.floor(index * w) else STABLE

    def requests_needed(self) -> int:
        """Requests to send in this stage so that the canary gets `min_requests` of them."""
        return math.ceil(self.thresholds.min_requests / self.weight)

    def record(self, arm: str, ok: bool, latency_s: float) -> None:
        self._outcomes[arm].append((ok, latency_s))

    def decide(self) -> StageDecision:
        if self.finished:
            raise RuntimeError(f"the rollout is over ({self.outcome})")
        stable, canary = arm_stats(self._outcomes[STABLE]), arm_stats(self._outcomes[CANARY])
        if canary.requests < self.thresholds.min_requests:
            raise ValueError(f"stage {self.stage}: only {canary.requests} canary requests, "
                             f"need {self.thresholds.min_requests} to decide")
        if self.weight >= 1.0 and stable.requests == 0 and self.decisions:
            stable = self.decisions[-1].stable  # at 100% the baseline is the previous stage's stable arm
        ok, reasons = judge(stable, canary, self.thresholds)
        last = self.stage == len(self.stages) - 1
        action = ROLLBACK if not ok else (PROMOTE if last else NEXT)
        decision = StageDecision(self.stage, self.weight, action, stable, canary, tuple(reasons))
        self.decisions.append(decision)
        self._outcomes = {STABLE: [], CANARY: []}
        if action == NEXT:
            self.stage += 1
        return decision
