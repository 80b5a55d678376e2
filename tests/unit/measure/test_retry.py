"""Client-side retries: backoff schedule, retry on transient errors only, give up after the last attempt."""
import random

import pytest

from llmserve.measure.retry import backoff_delays, with_retries


def test_backoff_doubles_and_caps():
    assert backoff_delays(5, base_delay_s=0.1, max_delay_s=0.3) == pytest.approx([0.1, 0.2, 0.3, 0.3])
    assert backoff_delays(1, base_delay_s=0.1, max_delay_s=1) == []


def test_jitter_only_shortens_within_its_fraction():
    delays = backoff_delays(6, base_delay_s=1, max_delay_s=100, jitter=0.5, rng=random.Random(1))
    plain = backoff_delays(6, base_delay_s=1, max_delay_s=100)
    assert all(0.5 * p <= d <= p for d, p in zip(delays, plain, strict=True))
    assert delays != plain


def test_retries_until_success_and_waits_between():
    outcomes = iter([ConnectionError("refused"), ConnectionError("refused"), "answer"])
    waits = []

    def call():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = with_retries(call, attempts=3, base_delay_s=0.1, jitter=0, sleep=waits.append)
    assert (result.value, result.attempts) == ("answer", 3)
    assert waits == pytest.approx([0.1, 0.2])
    assert len(result.errors) == 2 and "refused" in result.errors[0]


def test_not_retryable_errors_propagate_at_once():
    calls = []

    def call():
        calls.append(1)
        raise ValueError("400: bad request")

    with pytest.raises(ValueError):
        with_retries(call, attempts=5, retry_on=(ConnectionError,), sleep=lambda s: None)
    assert len(calls) == 1


def test_gives_up_after_last_attempt_with_history():
    def call():
        raise TimeoutError("no answer")

    with pytest.raises(TimeoutError) as info:
        with_retries(call, attempts=3, sleep=lambda s: None)
    assert "failed 3 attempts" in " ".join(info.value.__notes__)


def test_attempts_must_be_positive():
    with pytest.raises(ValueError):
        with_retries(lambda: 1, attempts=0)
