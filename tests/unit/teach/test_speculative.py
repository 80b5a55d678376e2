"""Unit tests of llmserve.teach.speculative: the verification rules and the decode loop."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from llmserve.teach.speculative import (
    CallTimer,
    autoregressive_generate,
    greedy_verify,
    rejection_sample,
    softmax,
    speculative_generate,
)

VOCAB = 11


class ToyLM:
    """A deterministic 'language model': logits are a fixed function of the last two tokens.

    `noise` perturbs the logits by a second fixed table, which makes a draft that agrees with
    the target only part of the time. Counts calls, like a real model's forward passes.
    """

    def __init__(self, seed: int, noise: float = 0.0, base_seed: int = 0):
        base = np.random.default_rng(base_seed).normal(size=(VOCAB, VOCAB, VOCAB)) * 3
        self.table = base + noise * np.random.default_rng(seed).normal(size=base.shape)
        self.calls = 0

    def __call__(self, tokens, n):
        self.calls += 1
        tokens = list(tokens)
        rows = []
        for end in range(len(tokens) - n + 1, len(tokens) + 1):
            a, b = (tokens[end - 2] if end >= 2 else 0), tokens[end - 1]
            rows.append(self.table[a, b])
        return np.array(rows)


# --- greedy: exactly the target's output ----------------------------------------------------


@pytest.mark.parametrize("gamma", [1, 2, 4, 7])
@pytest.mark.parametrize("noise", [0.0, 1.0, 5.0])
def test_greedy_speculative_equals_target_greedy(gamma, noise):
    target, draft = ToyLM(seed=1), ToyLM(seed=2, noise=noise)
    for prompt in ([1, 2], [3], [4, 5, 6, 7]):
        expected = autoregressive_generate(target, prompt, 40)
        got, stats = speculative_generate(target, draft, prompt, 40, gamma)
        assert got == expected
        assert stats.drafted >= stats.accepted and stats.steps == len(stats.accepted_per_step)
    if noise == 0.0:  # a perfect draft is always accepted: gamma + 1 tokens per target call
        assert stats.acceptance_rate == 1.0
        assert stats.steps == -(-40 // (gamma + 1))


def test_greedy_stops_at_eos_like_the_target():
    target, draft = ToyLM(seed=1), ToyLM(seed=3, noise=2.0)
    expected_full = autoregressive_generate(target, [1, 2], 60)
    eos = expected_full[17]
    expected = autoregressive_generate(target, [1, 2], 60, eos_token_id=eos)
    got, _ = speculative_generate(target, draft, [1, 2], 60, 4, eos_token_id=eos)
    assert got == expected and got[-1] == eos and eos not in got[:-1]


def test_greedy_verify_rule():
    logits = np.eye(4)[[2, 3, 1]]  # target argmax: 2, 3, then 1
    assert greedy_verify([2, 3], logits) == ([2, 3, 1], 2)
    assert greedy_verify([2, 0], logits) == ([2, 3], 1)
    assert greedy_verify([0, 3], logits) == ([2], 0)


# --- sampling: the output is distributed as the target -------------------------------------


def _first_token_counts(p, q, samples, seed):
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(p), dtype=int)
    target = np.stack([p, p])
    accepted = 0
    for _ in range(samples):
        x = int(rng.choice(len(q), p=q))
        out, n = rejection_sample(q[None, :], target, [x], rng)
        counts[out[0]] += 1
        accepted += n
    return counts, accepted / samples


@pytest.mark.parametrize("case", ["overlapping", "draft_too_sharp", "draft_too_flat"])
def test_rejection_sampling_preserves_the_target_distribution(case):
    p = np.array([0.50, 0.30, 0.15, 0.05])
    q = {"overlapping": np.array([0.25, 0.50, 0.05, 0.20]),
         "draft_too_sharp": np.array([0.01, 0.97, 0.01, 0.01]),
         "draft_too_flat": np.full(4, 0.25)}[case]
    samples = 40_000
    counts, acceptance = _first_token_counts(p, q, samples, seed=7)
    chi2 = scipy_stats.chisquare(counts, samples * p)
    assert chi2.pvalue > 1e-3, f"empirical {counts / samples} differs from p {p}"
    # and the acceptance probability is sum_x min(p, q) (Leviathan et al., 2023)
    assert acceptance == pytest.approx(np.minimum(p, q).sum(), abs=0.01)


def test_the_test_can_fail_naive_draft_acceptance_is_biased():
    # Accepting every drafted token would return q, not p: the chi-square test must see that.
    p = np.array([0.50, 0.30, 0.15, 0.05])
    q = np.array([0.25, 0.50, 0.05, 0.20])
    counts = np.random.default_rng(7).multinomial(40_000, q)
    assert scipy_stats.chisquare(counts, 40_000 * p).pvalue < 1e-6


def test_sampling_loop_matches_target_distribution_over_sequences():
    # Two-token sequences from the full loop: speculative vs the target's own sampling.
    target, draft = ToyLM(seed=1), ToyLM(seed=2, noise=2.0)
    temperature = 2.0
    probs0 = softmax(target([1, 2], 1)[-1], temperature)
    rng = np.random.default_rng(11)
    samples = 6000
    first = np.zeros(VOCAB, dtype=int)
    for _ in range(samples):
        out, _ = speculative_generate(target, draft, [1, 2], 2, 3, temperature=temperature, rng=rng)
        first[out[0]] += 1
    keep = probs0 * samples >= 5
    expected = probs0[keep] * samples
    observed = first[keep]
    chi2 = scipy_stats.chisquare(observed, expected * observed.sum() / expected.sum())
    assert chi2.pvalue > 1e-3


# --- the acceptance rate alpha: synthetic i.i.d. acceptance ---------------------------------


class IIDTarget:
    """A target whose greedy next token is a fixed function of the last token."""

    def __call__(self, tokens, n):
        rows = np.zeros((n, VOCAB))
        for row, end in enumerate(range(len(tokens) - n + 1, len(tokens) + 1)):
            rows[row, (3 * tokens[end - 1] + 1) % VOCAB] = 1.0
        return rows


class IIDDraft:
    """Agrees with IIDTarget at each position independently with probability alpha.

    Whether the draft is right at position t (the token after t tokens) is drawn once per
    position, so every judgement of a draft token is an independent Bernoulli(alpha) trial.
    """

    def __init__(self, alpha: float, positions: int, seed: int):
        self.right = np.random.default_rng(seed).random(positions) < alpha

    def __call__(self, tokens, n):
        rows = np.zeros((n, VOCAB))
        for row, end in enumerate(range(len(tokens) - n + 1, len(tokens) + 1)):
            want = (3 * tokens[end - 1] + 1) % VOCAB
            rows[row, want if self.right[end] else (want + 1) % VOCAB] = 1.0
        return rows


IID_CASES = [(alpha, gamma) for alpha in (0.3, 0.5, 0.8, 0.95) for gamma in (1, 2, 4, 7)]


@pytest.mark.parametrize(("alpha", "gamma"), IID_CASES)
def test_greedy_iid_acceptance_recovers_alpha_and_tokens_per_step(alpha, gamma):
    from llmserve.teach.formulas import speculative_accepted_over_drafted, speculative_expected_tokens

    new_tokens = 6000
    target, draft = IIDTarget(), IIDDraft(alpha, new_tokens + 10, seed=int(alpha * 100) + gamma)
    got, stats = speculative_generate(target, draft, [1], new_tokens, gamma)
    assert got == autoregressive_generate(target, [1], new_tokens)
    # judged tokens: at least ~1,500 in every case, so the binomial sd of alpha-hat is below 0.013
    assert stats.judged > 1000
    assert stats.acceptance_rate == pytest.approx(alpha, abs=0.04)
    assert stats.tokens_per_step == pytest.approx(speculative_expected_tokens(alpha, gamma), rel=0.04)
    # accepted / drafted estimates alpha (1 - alpha^gamma) / ((1 - alpha) gamma), not alpha
    assert stats.draft_acceptance_rate == pytest.approx(speculative_accepted_over_drafted(alpha, gamma), abs=0.04)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.5, 4), (0.8, 4), (0.8, 7)])
def test_accepted_over_drafted_is_not_alpha(alpha, gamma):
    # The old estimator, accepted / drafted, misses alpha by far more than the tolerance above:
    # 0.48 instead of 0.8 at gamma = 4 (it counts unjudged draft tokens as rejections).
    target, draft = IIDTarget(), IIDDraft(alpha, 6010, seed=7)
    _, stats = speculative_generate(target, draft, [1], 6000, gamma)
    assert abs(stats.draft_acceptance_rate - alpha) > 0.15
    assert abs(stats.acceptance_rate - alpha) < 0.04


@pytest.mark.parametrize(("alpha", "gamma"), [(0.4, 3), (0.75, 4)])
def test_sampled_iid_acceptance_recovers_alpha(alpha, gamma):
    # Sampling: a context-free target p and draft q accept a draft token with probability
    # sum(min(p, q)) at every position, independently.
    from llmserve.teach.formulas import speculative_acceptance_rate, speculative_expected_tokens

    p = np.zeros(VOCAB)
    p[:4] = [0.4, 0.3, 0.2, 0.1]
    q = (1 - alpha) * np.roll(p, 4) + alpha * p        # overlap with p: sum(min(p, q)) = alpha
    assert speculative_acceptance_rate(p, q) == pytest.approx(alpha)

    def fixed(dist):
        with np.errstate(divide="ignore"):
            logits = np.log(dist)
        return lambda tokens, n: np.tile(logits, (n, 1))

    _, stats = speculative_generate(fixed(p), fixed(q), [0], 5000, gamma, temperature=1.0,
                                    rng=np.random.default_rng(3))
    assert stats.acceptance_rate == pytest.approx(alpha, abs=0.04)
    assert stats.tokens_per_step == pytest.approx(speculative_expected_tokens(alpha, gamma), rel=0.05)


def test_stats_from_steps_count_rejections_only_where_a_draft_token_was_rejected():
    from llmserve.teach.speculative import SpeculativeStats

    # drafted 4, accepted 4 (no rejection); 4 / 1 (rejected the 2nd); 2 / 2 (short draft, all
    # accepted); 4 / 0 (rejected the 1st); 0 / 0 (nothing drafted)
    stats = SpeculativeStats.from_steps(4, [4, 4, 2, 4, 0], [4, 1, 2, 0, 0])
    assert (stats.steps, stats.drafted, stats.accepted, stats.rejections, stats.judged) == (5, 14, 7, 2, 9)
    assert stats.acceptance_rate == pytest.approx(7 / 9)
    assert stats.draft_acceptance_rate == pytest.approx(7 / 14)
    assert stats.tokens_per_step == pytest.approx(12 / 5)
    merged = stats.merge(SpeculativeStats.from_steps(4, [4], [3]))
    assert (merged.accepted, merged.rejections) == (10, 3)
    with pytest.raises(ValueError):
        SpeculativeStats.from_steps(4, [3], [4])
    with pytest.raises(ValueError):
        SpeculativeStats.from_steps(2, [3], [1])
    assert np.isnan(SpeculativeStats(gamma=2).acceptance_rate)


# --- edge cases ------------------------------------------------------------------------------


def test_identical_draft_is_always_accepted():
    rng = np.random.default_rng(0)
    p = softmax(np.random.default_rng(1).normal(size=(4, 9)))
    for _ in range(200):
        drafted = [int(rng.choice(9, p=p[i])) for i in range(3)]
        out, accepted = rejection_sample(p[:3], p, drafted, rng)
        assert accepted == 3 and out[:3] == drafted and len(out) == 4


def test_disjoint_support_always_rejects_and_samples_from_p():
    rng = np.random.default_rng(0)
    p = np.array([[0.0, 0.0, 0.6, 0.4]] * 2)
    q = np.array([[0.5, 0.5, 0.0, 0.0]])
    for _ in range(200):
        drafted = [int(rng.choice(4, p=q[0]))]
        out, accepted = rejection_sample(q, p, drafted, rng)
        assert accepted == 0 and len(out) == 1 and out[0] in (2, 3)


def test_bad_shapes_and_zero_draft_probability_raise():
    rng = np.random.default_rng(0)
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError):
        rejection_sample(np.full((1, 3), 1 / 3), p[:1], [0], rng)
    with pytest.raises(ValueError):
        rejection_sample(np.array([[1.0, 0.0, 0.0]]), p, [1], rng)
    with pytest.raises(ValueError):
        speculative_generate(ToyLM(1), ToyLM(2), [1], 5, 0)
    assert rejection_sample(np.zeros((0, 3)), p[:1], [], rng)[1] == 0


# --- the course model and a draft of its first layers ----------------------------------------


@pytest.fixture(scope="module")
def course_model():
    pytest.importorskip("transformers")
    from llmserve.measure.hf_baseline import load_model
    return load_model()


def test_course_model_greedy_speculative_equals_greedy(course_model):
    from llmserve.measure.hf_baseline import chat_prompt_ids
    from llmserve.teach.speculative import CausalLMScorer, first_layers_draft

    model, tokenizer = course_model
    draft_model = first_layers_draft(model, 10)
    assert draft_model.model.embed_tokens is model.model.embed_tokens  # shared, not copied
    assert len(draft_model.model.layers) == 10
    prompt = chat_prompt_ids(tokenizer, ["What is the capital of France?"])[0]
    expected = autoregressive_generate(CausalLMScorer(model), prompt, 12, eos_token_id=tokenizer.eos_token_id)
    target = CausalLMScorer(model)
    got, stats = speculative_generate(target, CausalLMScorer(draft_model), prompt, 12, 3,
                                      eos_token_id=tokenizer.eos_token_id)
    assert got == expected
    assert "Paris" in tokenizer.decode(got)
    assert target.forward_calls == stats.steps <= len(got)  # one target call per step


def test_prompt_lookup_draft_copies_the_continuation_of_a_match():
    from llmserve.teach.speculative import PromptLookupDraft

    draft = PromptLookupDraft(vocab_size=20, min_ngram=2, max_ngram=3)
    assert draft.propose([5, 6, 7, 8, 1, 5, 6]) == 7          # "5 6" was followed by 7
    assert draft.propose([5, 6, 7, 9, 6, 7, 5, 6, 7]) == 9    # the longest, latest match wins
    assert draft.propose([1, 2, 3, 4]) is None
    logits = draft([5, 6, 7, 8, 1, 5, 6], 1)
    assert logits.shape == (1, 20) and logits[0].argmax() == 7 and np.isneginf(logits[0, 0])


def test_prompt_lookup_speculation_is_exact_and_accepts_on_copy_tasks():
    from llmserve.teach.speculative import PromptLookupDraft

    class CopyLM:  # continues 0..9 then repeats the prompt from its start: output copies input
        def __call__(self, tokens, n):
            rows = []
            for end in range(len(tokens) - n + 1, len(tokens) + 1):
                logits = np.zeros(VOCAB)
                logits[(tokens[end - 1] + 1) % 10] = 5.0
                rows.append(logits)
            return np.array(rows)

    target = CopyLM()
    prompt = list(range(10)) + [0, 1]
    expected = autoregressive_generate(target, prompt, 30)
    got, stats = speculative_generate(target, PromptLookupDraft(VOCAB), prompt, 30, 4)
    assert got == expected and stats.acceptance_rate == 1.0
    # sampling at temperature 1: still the target's distribution, fewer acceptances
    got, stats = speculative_generate(target, PromptLookupDraft(VOCAB), prompt, 30, 4, temperature=1.0,
                                      rng=np.random.default_rng(0))
    assert len(got) == 30 and 0 < stats.acceptance_rate < 1


def test_call_timer_sets_the_prefill_of_each_prompt_apart_from_the_decode_steps():
    target, draft = CallTimer(ToyLM(seed=0)), CallTimer(ToyLM(seed=1, noise=1.0))
    prompts = [[1, 2, 3], [4, 5, 6, 7]]
    for prompt in prompts:
        target.new_prompt()
        draft.new_prompt()
        _, stats = speculative_generate(target, draft, prompt, 12, 3)
        assert len(target.step_s) + len(target.prefill_s) == target.model.calls
    # one prefill per prompt for each model; every other call is a decode step
    assert len(target.prefill_s) == len(draft.prefill_s) == len(prompts)
    assert len(target.step_s) == target.model.calls - len(prompts)
    assert len(draft.step_s) == draft.model.calls - len(prompts)
    assert all(s >= 0 for s in target.prefill_s + target.step_s + draft.prefill_s + draft.step_s)
