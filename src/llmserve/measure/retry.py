"""Client-side retries with capped exponential backoff and jitter: what a client adds for the losses a router
cannot hide (vLLM Lab 2.4 · 01).

    result = with_retries(lambda: post(prompt), attempts=3, base_delay_s=0.2)
    result.value, result.attempts, result.errors

Retry only what is safe to send twice. A completion has no side effect on the server, so sending it again costs
compute but changes nothing; a request that does something (charges, writes, sends) needs an idempotency key
that the server uses to recognise the repeat.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def backoff_delays(attempts: int, *, base_delay_s: float, max_delay_s: float, multiplier: float = 2.0,
                   jitter: float = 0.0, rng: random.Random | None = None) -> list[float]:
    """The waits before attempts 2..`attempts`: base, base*multiplier, ... capped at `max_delay_s`; with `jitter`
    j each wait is scaled by a random factor in [1 - j, 1] (so many clients do not retry in lockstep)."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if not 0 <= jitter <= 1:
        raise ValueError("jitter must be between 0 and 1")
    rng = rng or random.Random()
    delays = []
    for retry in range(attempts - 1):
        delay = min(max_delay_s, base_delay_s * multiplier ** retry)
        delays.append(delay * (1 - jitter * rng.random()))
    return delays


@dataclass
class RetryResult:
    value: Any
    attempts: int
    errors: list[str] = field(default_factory=list)  # what the failed attempts raised, in order


def with_retries(call: Callable[[], Any], *, attempts: int = 3, base_delay_s: float = 0.2, max_delay_s: float = 2.0,
                 multiplier: float = 2.0, jitter: float = 0.5, retry_on: tuple[type[BaseException], ...] = (Exception,),
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> RetryResult:
    """Call `call()` until it returns, at most `attempts` times, waiting `backoff_delays` between tries.

    Exceptions not in `retry_on` propagate at once (a 4xx is the client's mistake: sending it again cannot help).
    After the last failed attempt its exception propagates, with the earlier errors in its notes."""
    delays = backoff_delays(attempts, base_delay_s=base_delay_s, max_delay_s=max_delay_s, multiplier=multiplier,
                            jitter=jitter, rng=rng)
    errors: list[str] = []
    for attempt in range(1, attempts + 1):
        try:
            return RetryResult(call(), attempt, errors)
        except retry_on as error:
            errors.append(f"{type(error).__name__}: {error}"[:200])
            if attempt == attempts:
                error.add_note(f"failed {attempts} attempts: {errors}")
                raise
            sleep(delays[attempt - 1])  # backoff before the next attempt
    raise AssertionError("unreachable")
