"""Speculative decoding: draft, then verify with rejection sampling (a teaching implementation).

Leviathan, Kalman and Matias, "Fast Inference from Transformers via Speculative Decoding"
(ICML 2023); Chen et al., "Accelerating Large Language Model Decoding with Speculative
Sampling" (DeepMind, 2023). Theory 2.1, section 8.

A *model* here is any callable `model(tokens, n) -> logits` that returns an array of shape
(n, vocab): the next-token logits after each of the prefixes tokens[:len-n+1], ...,
tokens[:len] (one row per position, the last row predicts the token after `tokens`).
`CausalLMScorer` wraps a Hugging Face causal LM that way, reusing its KV cache between calls;
`first_layers_draft` builds a draft model from the first layers of the target.

One speculative step with draft length gamma:
1. the draft proposes gamma tokens one by one (distributions q_1..q_gamma);
2. the target scores all gamma + 1 positions in ONE call (distributions p_1..p_{gamma+1});
3. `rejection_sample` accepts draft token x_i with probability min(1, p_i(x_i) / q_i(x_i)); at
   the first rejection it samples a replacement from norm(max(0, p_i - q_i)) and stops; if all
   are accepted it samples a bonus token from p_{gamma+1}. The output follows p exactly.
With greedy decoding (temperature 0) the rule becomes: accept while the draft token equals the
target's argmax, then emit the target's argmax - the output equals the target's greedy output.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

NextTokenLogits = Callable[[Sequence[int], int], np.ndarray]


# --------------------------------------------------------------------------------------------
# The verification rules
# --------------------------------------------------------------------------------------------

def _check_step_arrays(draft_probs, target_probs, draft_tokens):
    gamma = len(draft_tokens)
    target_probs = np.asarray(target_probs, dtype=np.float64)
    draft_probs = np.asarray(draft_probs, dtype=np.float64)
    if gamma == 0:
        draft_probs = draft_probs.reshape(0, target_probs.shape[-1])
    elif draft_probs.ndim != 2 or draft_probs.shape[0] != gamma:
        raise ValueError(f"draft_probs must have shape (gamma, vocab) = ({gamma}, V), got {draft_probs.shape}")
    if target_probs.ndim != 2 or target_probs.shape[0] != gamma + 1:
        raise ValueError(f"target_probs must have shape (gamma + 1, vocab) = ({gamma + 1}, V), "
                         f"got {target_probs.shape}")
    if gamma and draft_probs.shape[1] != target_probs.shape[1]:
        raise ValueError("draft and target distributions must have the same vocabulary size")
    return draft_probs, target_probs


def rejection_sample(draft_probs, target_probs, draft_tokens: Sequence[int],
                     rng: np.random.Generator) -> tuple[list[int], int]:
    """Verify `gamma` drafted tokens; return (emitted tokens, number of draft tokens accepted).

    draft_probs: (gamma, V), the draft distribution q_i each token was sampled from;
    target_probs: (gamma + 1, V), the target distribution p_i at the same positions plus one;
    draft_tokens: the gamma drafted token ids. Emits between 1 and gamma + 1 tokens.
    """
    q, p = _check_step_arrays(draft_probs, target_probs, draft_tokens)
    out: list[int] = []
    for i, token in enumerate(draft_tokens):
        token = int(token)
        if q[i, token] <= 0:
            raise ValueError(f"draft token {token} has zero draft probability at position {i}")
        if rng.random() < min(1.0, p[i, token] / q[i, token]):
            out.append(token)
            continue
        residual = np.maximum(0.0, p[i] - q[i])
        total = residual.sum()
        # total == 0 means p == q (up to rounding), where a rejection has probability 0.
        replacement = p[i] / p[i].sum() if total <= 0 else residual / total
        out.append(int(rng.choice(replacement.size, p=replacement)))
        return out, i
    bonus = p[-1] / p[-1].sum()
    out.append(int(rng.choice(bonus.size, p=bonus)))
    return out, len(draft_tokens)


def greedy_verify(draft_tokens: Sequence[int], target_probs) -> tuple[list[int], int]:
    """Greedy verification: accept draft tokens while they equal the target's argmax.

    target_probs (or logits): (gamma + 1, V). Returns (emitted tokens, number accepted); the
    last emitted token is always the target's own argmax (the correction or the bonus token).
    """
    target_probs = np.asarray(target_probs)
    if target_probs.ndim != 2 or target_probs.shape[0] != len(draft_tokens) + 1:
        raise ValueError("target_probs must have shape (gamma + 1, vocab)")
    best = target_probs.argmax(axis=1)
    out: list[int] = []
    for i, token in enumerate(draft_tokens):
        if int(token) != int(best[i]):
            out.append(int(best[i]))
            return out, i
        out.append(int(token))
    out.append(int(best[-1]))
    return out, len(draft_tokens)


# --------------------------------------------------------------------------------------------
# The decode loops
# --------------------------------------------------------------------------------------------

def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64."""
    if temperature <= 0:
        raise ValueError("temperature must be positive (use greedy decoding for temperature 0)")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class SpeculativeStats:
    """What one speculative generation did, and the acceptance rate alpha estimated from it.

    Each verification step judges draft tokens left to right and stops at the first rejection:
    a step that drafted g tokens and accepted a of them judged a + 1 tokens if a < g (the last one
    rejected) and g tokens if a == g. The tokens after a rejection were never judged, so they are
    no evidence about alpha. Under Leviathan et al.'s model (each token accepted independently with
    probability alpha) the estimator of alpha is therefore

        alpha = accepted / (accepted + rejections),   rejections = steps with accepted < drafted,

    successes over tokens actually judged (the maximum-likelihood estimate of a geometric stop).
    `draft_acceptance_rate` (accepted / drafted, what vLLM reports under that name) counts the
    unjudged tokens as failures and is biased low for gamma > 1: its expectation is
    alpha (1 - alpha^gamma) / ((1 - alpha) gamma), e.g. 0.59 for alpha = 0.8, gamma = 4.
    """
    gamma: int
    steps: int = 0                      # target verification calls
    drafted: int = 0                    # draft tokens proposed
    accepted: int = 0                   # draft tokens accepted
    accepted_per_step: list[int] = field(default_factory=list)
    drafted_per_step: list[int] = field(default_factory=list)
    draft_seconds: float = 0.0
    target_seconds: float = 0.0

    @classmethod
    def from_steps(cls, gamma: int, drafted_per_step: Sequence[int], accepted_per_step: Sequence[int],
                   ) -> SpeculativeStats:
        """Statistics from per-step counts, e.g. vLLM's per-request `spec_decode_metrics`
        (`per_step_drafted`, `per_step_accepted`, with `per_request_spec_decode_metrics="detailed"`)."""
        drafted_per_step, accepted_per_step = list(map(int, drafted_per_step)), list(map(int, accepted_per_step))
        if len(drafted_per_step) != len(accepted_per_step):
            raise ValueError("drafted_per_step and accepted_per_step must have the same length")
        for d, a in zip(drafted_per_step, accepted_per_step, strict=True):
            if not 0 <= a <= d <= gamma:
                raise ValueError(f"each step needs 0 <= accepted <= drafted <= gamma={gamma}, got {a}, {d}")
        return cls(gamma=gamma, steps=len(drafted_per_step), drafted=sum(drafted_per_step),
                   accepted=sum(accepted_per_step), accepted_per_step=accepted_per_step,
                   drafted_per_step=drafted_per_step)

    @property
    def rejections(self) -> int:
        """Steps that ended in a rejected draft token (the others accepted all they drafted)."""
        return sum(a < d for a, d in zip(self.accepted_per_step, self.drafted_per_step, strict=True))

    @property
    def judged(self) -> int:
        """Draft tokens the target actually judged: the accepted ones plus one per rejection."""
        return self.accepted + self.rejections

    @property
    def acceptance_rate(self) -> float:
        """The per-token acceptance rate alpha: accepted / (accepted + rejections)."""
        return self.accepted / self.judged if self.judged else float("nan")

    @property
    def draft_acceptance_rate(self) -> float:
        """Accepted / drafted tokens (vLLM's `draft_acceptance_rate`). Biased low for gamma > 1 as
        an estimate of alpha: the tokens drafted after a rejection were never judged."""
        return self.accepted / self.drafted if self.drafted else float("nan")

    @property
    def tokens_per_step(self) -> float:
        """Tokens emitted per target call (accepted + 1 per step, before truncation)."""
        return (self.accepted + self.steps) / self.steps if self.steps else float("nan")

    def merge(self, other: SpeculativeStats) -> SpeculativeStats:
        if other.gamma != self.gamma:
            raise ValueError("cannot merge statistics of different gamma")
        return SpeculativeStats(
            gamma=self.gamma, steps=self.steps + other.steps, drafted=self.drafted + other.drafted,
            accepted=self.accepted + other.accepted,
            accepted_per_step=self.accepted_per_step + other.accepted_per_step,
            drafted_per_step=self.drafted_per_step + other.drafted_per_step,
            draft_seconds=self.draft_seconds + other.draft_seconds,
            target_seconds=self.target_seconds + other.target_seconds)


def _finish(new_tokens: list[int], max_new_tokens: int, eos_token_id: int | None) -> tuple[list[int], bool]:
    """Cut at max_new_tokens and after the first EOS; say whether generation is over."""
    if eos_token_id is not None and eos_token_id in new_tokens:
        return new_tokens[:new_tokens.index(eos_token_id) + 1][:max_new_tokens], True
    return new_tokens[:max_new_tokens], len(new_tokens) >= max_new_tokens


def autoregressive_generate(model: NextTokenLogits, prompt: Sequence[int], max_new_tokens: int, *,
                            temperature: float = 0.0, rng: np.random.Generator | None = None,
                            eos_token_id: int | None = None) -> list[int]:
    """Plain decoding with one model call per token (the baseline speculative decoding must match)."""
    tokens, new = list(prompt), []
    done = max_new_tokens <= 0
    while not done:
        logits = model(tokens, 1)[-1]
        token = int(np.argmax(logits)) if temperature == 0 else _sample(softmax(logits, temperature), rng)
        new.append(token)
        tokens.append(token)
        new, done = _finish(new, max_new_tokens, eos_token_id)
    return new


def _sample(probs: np.ndarray, rng: np.random.Generator | None) -> int:
    if rng is None:
        raise ValueError("sampling (temperature > 0) needs an rng")
    return int(rng.choice(probs.size, p=probs))


def speculative_generate(target: NextTokenLogits, draft: NextTokenLogits, prompt: Sequence[int],
                         max_new_tokens: int, gamma: int, *, temperature: float = 0.0,
                         rng: np.random.Generator | None = None,
                         eos_token_id: int | None = None) -> tuple[list[int], SpeculativeStats]:
    """Draft `gamma` tokens, verify them with one target call, repeat. Returns (new tokens, stats).

    temperature 0: greedy (output equals `autoregressive_generate(target, ...)` token for token);
    temperature > 0: rejection sampling (output distributed as the target's sampling distribution).
    """
    if not isinstance(gamma, int) or gamma < 1:
        raise ValueError(f"gamma must be a positive integer, got {gamma!r}")
    greedy = temperature == 0
    if not greedy and rng is None:
        raise ValueError("sampling (temperature > 0) needs an rng")
    stats = SpeculativeStats(gamma=gamma)
    tokens, new = list(prompt), []
    done = max_new_tokens <= 0
    while not done:
        # Never draft past what is still needed: the step emits up to g + 1 tokens.
        g = max(0, min(gamma, max_new_tokens - len(new) - 1))
        drafted: list[int] = []
        draft_dists: list[np.ndarray] = []
        began = time.perf_counter()
        for _ in range(g):
            logits = draft(tokens + drafted, 1)[-1]
            if greedy:
                drafted.append(int(np.argmax(logits)))
            else:
                q = softmax(logits, temperature)
                draft_dists.append(q)
                drafted.append(_sample(q, rng))
            if eos_token_id is not None and drafted[-1] == eos_token_id:
                break
        stats.draft_seconds += time.perf_counter() - began
        began = time.perf_counter()
        target_logits = target(tokens + drafted, len(drafted) + 1)
        stats.target_seconds += time.perf_counter() - began
        if greedy:
            emitted, accepted = greedy_verify(drafted, target_logits)
        else:
            emitted, accepted = rejection_sample(np.array(draft_dists), softmax(target_logits, temperature),
                                                 drafted, rng)
        stats.steps += 1
        stats.drafted += len(drafted)
        stats.accepted += accepted
        stats.drafted_per_step.append(len(drafted))
        stats.accepted_per_step.append(accepted)
        tokens.extend(emitted)
        new.extend(emitted)
        new, done = _finish(new, max_new_tokens, eos_token_id)
    return new, stats


class CallTimer:
    """Wrap a `model(tokens, n) -> logits` callable and time every call. The first call after
    `new_prompt()` is the prefill (it carries the prompt); later calls are decode steps."""

    def __init__(self, model):
        self.model = model
        self.prefill_s: list[float] = []
        self.step_s: list[float] = []
        self._prefill = True

    def new_prompt(self) -> None:
        self._prefill = True

    def __call__(self, tokens, n):
        began = time.perf_counter()
        out = self.model(tokens, n)
        (self.prefill_s if self._prefill else self.step_s).append(time.perf_counter() - began)
        self._prefill = False
        return out


# --------------------------------------------------------------------------------------------
# Hugging Face models as NextTokenLogits callables
# --------------------------------------------------------------------------------------------

class CausalLMScorer:
    """Wrap a Hugging Face causal LM as `scorer(tokens, n) -> (n, vocab) logits`, with a KV cache.

    The cache is kept between calls and cropped back to the longest prefix shared with the new
    call (rejected draft tokens are thrown away this way), so each call runs the model only on
    the tokens it has not seen. `forward_calls` and `forward_tokens` count the work done.
    """

    def __init__(self, model):
        self.model = model
        self.forward_calls = 0
        self.forward_tokens = 0
        self.reset()

    def reset(self) -> None:
        self._cache = None
        self._cached: list[int] = []

    def __call__(self, tokens: Sequence[int], n: int) -> np.ndarray:
        import torch
        from transformers import DynamicCache

        tokens = [int(t) for t in tokens]
        if not 1 <= n <= len(tokens):
            raise ValueError(f"n must lie in [1, {len(tokens)}], got {n}")
        common = 0
        for a, b in zip(self._cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        keep = min(common, len(tokens) - n)  # the last n positions must be recomputed for their logits
        if self._cache is None or keep == 0:
            self._cache, keep = DynamicCache(config=self.model.config), 0
        elif keep < len(self._cached):
            self._cache.crop(keep - len(self._cached))  # a negative value removes that many tokens
        new = torch.tensor([tokens[keep:]], device=self.model.device)
        with torch.inference_mode():
            out = self.model(input_ids=new, past_key_values=self._cache, use_cache=True)
        self._cache = out.past_key_values
        self._cached = tokens
        self.forward_calls += 1
        self.forward_tokens += len(tokens) - keep
        return out.logits[0, -n:].float().cpu().numpy()


def first_layers_draft(model, num_layers: int):
    """A draft model made of the first `num_layers` decoder layers of a Llama-style `model`.

    It shares (does not copy) the embeddings, those layers, the final norm and the LM head, so it
    has the target's tokenizer and vocabulary and costs no extra weight memory. Untrained as an
    early-exit model: how often it agrees with the full model is what you measure.
    """
    import copy

    import torch

    layers = model.model.layers
    if not 1 <= num_layers <= len(layers):
        raise ValueError(f"num_layers must lie in [1, {len(layers)}], got {num_layers}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = num_layers
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = list(config.layer_types)[:num_layers]
    with torch.device("meta"):
        draft = type(model)(config)
    draft.model.embed_tokens = model.model.embed_tokens
    draft.model.layers = torch.nn.ModuleList(list(layers)[:num_layers])
    draft.model.norm = model.model.norm
    draft.model.rotary_emb = model.model.rotary_emb
    draft.lm_head = model.lm_head
    meta = [name for name, p in list(draft.named_parameters()) + list(draft.named_buffers()) if p.is_meta]
    if meta:
        raise RuntimeError(f"draft model has unshared parameters left on the meta device: {meta[:5]}")
    draft.eval()
    return draft


class PromptLookupDraft:
    """An n-gram (prompt-lookup) drafter as a NextTokenLogits callable: no model, cost ~0.

    It looks for the most recent earlier occurrence of the sequence's last `n` tokens (n from
    `max_ngram` down to `min_ngram`) and proposes the token that followed it there; with no
    match it proposes `fallback_token`. Its distribution is one-hot (logit 0 on the proposal,
    -inf elsewhere), so under rejection sampling a proposal x is accepted with probability p(x).
    Saxena, "Prompt Lookup Decoding" (2023); vLLM's `ngram` method works the same way.
    """

    def __init__(self, vocab_size: int, min_ngram: int = 2, max_ngram: int = 4, fallback_token: int = 0):
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError("need 1 <= min_ngram <= max_ngram")
        self.vocab_size = vocab_size
        self.min_ngram, self.max_ngram = min_ngram, max_ngram
        self.fallback_token = fallback_token
        self.lookups = 0
        self.hits = 0

    def propose(self, tokens: Sequence[int]) -> int | None:
        """The token that followed the latest earlier match of the last n tokens, or None."""
        tokens = list(tokens)
        for n in range(min(self.max_ngram, len(tokens) - 1), self.min_ngram - 1, -1):
            tail = tokens[-n:]
            for start in range(len(tokens) - n - 1, -1, -1):
                if tokens[start:start + n] == tail:
                    return tokens[start + n]
        return None

    def __call__(self, tokens: Sequence[int], n: int) -> np.ndarray:
        tokens = list(tokens)
        rows = np.full((n, self.vocab_size), -np.inf)
        for row, end in enumerate(range(len(tokens) - n + 1, len(tokens) + 1)):
            self.lookups += 1
            proposal = self.propose(tokens[:end])
            self.hits += proposal is not None
            rows[row, self.fallback_token if proposal is None else proposal] = 0.0
        return rows
