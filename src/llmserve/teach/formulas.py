"""Formulas of the theory files, implemented once and unit-tested.

Each function names the section of `01-Theory/` that derives it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DTYPE_BYTES = {"float32": 4, "fp32": 4, "float16": 2, "fp16": 2, "bfloat16": 2, "bf16": 2,
               "fp8": 1, "int8": 1, "int4": 0.5, "nf4": 0.5}


def kv_cache_bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int,
                             dtype_bytes: float) -> float:
    """Bytes of KV cache one token occupies: 2 (K and V) x layers x KV heads x head_dim x bytes.

    Theory 2.1, "The KV cache". MHA has num_kv_heads == num_attention_heads, GQA fewer,
    MQA exactly one.
    """
    for name, value in (("num_layers", num_layers), ("num_kv_heads", num_kv_heads),
                        ("head_dim", head_dim), ("dtype_bytes", dtype_bytes)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    return 2 * num_layers * num_kv_heads * head_dim * dtype_bytes


def kv_shape_from_config(model_config: Mapping[str, Any] | Any) -> dict[str, int]:
    """Layers, KV heads and head_dim from a Hugging Face config (dict or object)."""
    get = (model_config.get if isinstance(model_config, Mapping)
           else lambda key, default=None: getattr(model_config, key, default))
    heads = get("num_attention_heads")
    head_dim = get("head_dim") or get("hidden_size") // heads
    return {"num_layers": get("num_hidden_layers"),
            "num_kv_heads": get("num_key_value_heads") or heads,
            "head_dim": head_dim}


def kv_cache_capacity_tokens(cache_bytes: int, bytes_per_token: float, block_size: int) -> int:
    """Tokens a paged KV cache of `cache_bytes` holds: whole blocks of `block_size` tokens.

    blocks = floor(cache_bytes / (bytes_per_token x block_size)); tokens = blocks x block_size.
    """
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    blocks = math.floor(cache_bytes / (bytes_per_token * block_size))
    return blocks * block_size


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def _positive(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _non_negative(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")


def _dtype_bytes(dtype: str | float) -> float:
    if isinstance(dtype, str):
        key = dtype.lower()
        if key not in DTYPE_BYTES:
            raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(sorted(DTYPE_BYTES))}")
        return DTYPE_BYTES[key]
    _positive("dtype bytes", dtype)
    return float(dtype)


# --------------------------------------------------------------------------------------------
# Theory 2.1 -- memory, arithmetic intensity and the roofline
# --------------------------------------------------------------------------------------------

def model_weight_bytes(num_params: float, dtype: str | float) -> float:
    """Bytes the weights occupy: parameters x bytes per parameter.

    Theory 2.1, "Arithmetic intensity and the roofline". `dtype` is a key of `DTYPE_BYTES`
    ("fp16", "int4", ...) or a number of bytes per parameter (e.g. 0.5625 for 4-bit weights
    plus one fp16 scale per group of 32). Quantization metadata is the caller's business.
    """
    _positive("num_params", num_params)
    return num_params * _dtype_bytes(dtype)


def matmul_arithmetic_intensity(m: int, n: int, k: int, dtype_bytes: float) -> float:
    """FLOPs per byte of an (m x k) @ (k x n) matmul that reads A and B once and writes C once.

    FLOPs = 2 m n k (one multiply and one add per term); bytes = (m k + k n + m n) x dtype_bytes.
    Theory 2.1, "Arithmetic intensity and the roofline".
    """
    for name, value in (("m", m), ("n", n), ("k", k), ("dtype_bytes", dtype_bytes)):
        _positive(name, value)
    return (2 * m * n * k) / ((m * k + k * n + m * n) * dtype_bytes)


def decode_arithmetic_intensity(num_params: float, batch_size: int, dtype_bytes: float,
                                kv_bytes_read: float = 0.0) -> float:
    """FLOPs per byte of one decode step of a dense decoder.

    Every weight is read once per step and used for `batch_size` tokens: FLOPs ~= 2 P B,
    bytes ~= P x dtype_bytes + kv_bytes_read (the KV cache of all sequences in the batch).
    With kv_bytes_read = 0 this is 2 B / dtype_bytes. Theory 2.1.
    """
    _positive("num_params", num_params)
    _positive("batch_size", batch_size)
    _positive("dtype_bytes", dtype_bytes)
    _non_negative("kv_bytes_read", kv_bytes_read)
    return (2 * num_params * batch_size) / (num_params * dtype_bytes + kv_bytes_read)


def ridge_point(peak_flops: float, bandwidth_bytes_per_s: float) -> float:
    """Arithmetic intensity (FLOP/byte) where the roofline turns from memory- to compute-bound."""
    _positive("peak_flops", peak_flops)
    _positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    return peak_flops / bandwidth_bytes_per_s


def roofline_attainable_flops(peak_flops: float, bandwidth_bytes_per_s: float,
                              arithmetic_intensity: float) -> float:
    """Roofline model (Williams et al., 2009): attainable FLOP/s = min(peak, AI x bandwidth)."""
    _positive("peak_flops", peak_flops)
    _positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    _positive("arithmetic_intensity", arithmetic_intensity)
    return min(peak_flops, arithmetic_intensity * bandwidth_bytes_per_s)


def decode_tokens_per_s_upper_bound(bandwidth_bytes_per_s: float, bytes_read_per_step: float,
                                    batch_size: int = 1) -> float:
    """Memory-bound ceiling on decode speed: batch_size x bandwidth / bytes read per step.

    With batch_size = 1 and bytes_read_per_step = weight bytes, this is the fastest a single
    stream can generate on that memory system, whatever the compute. Theory 2.1.
    """
    _positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    _positive("bytes_read_per_step", bytes_read_per_step)
    _positive("batch_size", batch_size)
    return batch_size * bandwidth_bytes_per_s / bytes_read_per_step


def kv_blocks_needed(num_tokens: int, block_size: int) -> int:
    """Blocks a sequence of `num_tokens` occupies in a paged KV cache: ceil(tokens / block_size)."""
    _non_negative("num_tokens", num_tokens)
    _positive("block_size", block_size)
    return -(-int(num_tokens) // int(block_size))


def static_batch_padding_waste(lengths: list[int] | tuple[int, ...]) -> float:
    """Fraction of token slots wasted when a static batch pads every sequence to the longest.

    waste = 1 - sum(lengths) / (len(lengths) x max(lengths)). Theory 2.1, "Continuous batching".
    """
    if len(lengths) == 0:
        raise ValueError("lengths must not be empty")
    for value in lengths:
        _positive("each length", value)
    return 1.0 - sum(lengths) / (len(lengths) * max(lengths))


# --------------------------------------------------------------------------------------------
# Theory 2.1 -- speculative decoding (Leviathan et al., 2023; Chen et al., 2023)
# --------------------------------------------------------------------------------------------

def _check_alpha_gamma(alpha: float, gamma: int) -> None:
    if not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    if not isinstance(gamma, int) or isinstance(gamma, bool) or gamma < 0:
        raise ValueError(f"gamma must be a non-negative integer, got {gamma!r}")


def speculative_expected_tokens(alpha: float, gamma: int) -> float:
    """Expected tokens produced per target-model step: (1 - alpha^(gamma+1)) / (1 - alpha).

    alpha: expected acceptance rate of a drafted token; gamma: tokens drafted per step.
    Leviathan et al. (2023), eq. 1. The limit at alpha = 1 is gamma + 1.
    """
    _check_alpha_gamma(alpha, gamma)
    if alpha == 1:
        return float(gamma + 1)
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


def speculative_accepted_over_drafted(alpha: float, gamma: int) -> float:
    """Expected accepted / drafted tokens when each draft token is accepted with probability alpha.

    E[accepted per step] = alpha + alpha^2 + ... + alpha^gamma = alpha (1 - alpha^gamma) / (1 - alpha),
    so accepted / drafted -> alpha (1 - alpha^gamma) / ((1 - alpha) gamma): below alpha for gamma > 1,
    because the tokens drafted after the first rejection are never judged. This is why accepted /
    drafted (vLLM's "draft acceptance rate") is not the alpha of Leviathan et al.'s formulas;
    `llmserve.teach.speculative.SpeculativeStats.acceptance_rate` estimates alpha itself.
    """
    _check_alpha_gamma(alpha, gamma)
    if gamma == 0:
        raise ValueError("gamma must be positive: nothing is drafted at gamma = 0")
    return (speculative_expected_tokens(alpha, gamma) - 1) / gamma


def speculative_speedup(alpha: float, gamma: int, cost_ratio: float) -> float:
    """Expected wall-time speedup over plain decoding: E / (gamma x c + 1).

    c = cost_ratio = time of one draft-model step / time of one target-model step.
    Leviathan et al. (2023), Theorem 3.8. Assumes the verification of gamma + 1 tokens costs
    as much as one ordinary target step (true while decode is memory-bound).
    """
    _check_alpha_gamma(alpha, gamma)
    _non_negative("cost_ratio", cost_ratio)
    return speculative_expected_tokens(alpha, gamma) / (gamma * cost_ratio + 1)


def _distributions(p, q):
    import numpy as np

    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.shape != q.shape or p.ndim != 1 or p.size == 0:
        raise ValueError("p and q must be 1-D arrays of the same non-zero length")
    for name, d in (("p", p), ("q", q)):
        if (d < 0).any() or not np.isclose(d.sum(), 1.0):
            raise ValueError(f"{name} must be a probability distribution (non-negative, sums to 1)")
    return p, q


def speculative_acceptance_rate(p, q) -> float:
    """alpha for one position: sum_x min(p(x), q(x)) = 1 - total-variation distance(p, q).

    p: target distribution, q: draft distribution over the vocabulary. Leviathan et al. (2023).
    """
    import numpy as np

    p, q = _distributions(p, q)
    return float(np.minimum(p, q).sum())


def speculative_accept_probability(p, q):
    """Per-token probability of accepting a drafted token x: min(1, p(x) / q(x)).

    Tokens with q(x) = 0 are never drafted; their entry is reported as 1.0.
    """
    import numpy as np

    p, q = _distributions(p, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q > 0, p / np.where(q > 0, q, 1.0), 1.0)
    return np.minimum(1.0, ratio)


def speculative_residual_distribution(p, q):
    """Distribution to resample from after a rejection: norm(max(0, p - q)).

    Drafting from q, accepting with min(1, p/q) and resampling rejections from this residual
    yields tokens distributed exactly as p (Leviathan et al., 2023; Chen et al., 2023).
    When p == q nothing is ever rejected; p itself is returned.
    """
    import numpy as np

    p, q = _distributions(p, q)
    residual = np.maximum(0.0, p - q)
    total = residual.sum()
    return p.copy() if total <= 1e-15 else residual / total


# --------------------------------------------------------------------------------------------
# Theory 2.1 -- quantization (teaching version of absmax / symmetric quantization)
# --------------------------------------------------------------------------------------------

def absmax_quantize(x, bits: int = 8):
    """Symmetric round-to-nearest quantization: scale = max|x| / (2^(bits-1) - 1).

    Returns (integer codes as an int array, scale). dequantize with `codes * scale`.
    This is the per-tensor building block that LLM.int8, GPTQ and AWQ refine.
    """
    import numpy as np

    if not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an integer in [2, 16], got {bits!r}")
    x = np.asarray(x, dtype=float)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("x must be a non-empty array of finite numbers")
    qmax = 2 ** (bits - 1) - 1
    amax = float(np.abs(x).max())
    scale = amax / qmax if amax > 0 else 1.0
    codes = np.clip(np.rint(x / scale), -qmax, qmax).astype(np.int32)
    return codes, scale


# --------------------------------------------------------------------------------------------
# Theory 2.2 -- serving metrics, capacity and cost
# --------------------------------------------------------------------------------------------

def time_per_output_token(e2e_latency_s: float, ttft_s: float, output_tokens: int) -> float:
    """TPOT = (end-to-end latency - TTFT) / (output tokens - 1): mean gap between streamed tokens."""
    _positive("e2e_latency_s", e2e_latency_s)
    _non_negative("ttft_s", ttft_s)
    if ttft_s > e2e_latency_s:
        raise ValueError("ttft_s cannot exceed e2e_latency_s")
    if not isinstance(output_tokens, int) or output_tokens < 2:
        raise ValueError(f"output_tokens must be an integer >= 2, got {output_tokens!r}")
    return (e2e_latency_s - ttft_s) / (output_tokens - 1)


def littles_law_concurrency(throughput_per_s: float, latency_s: float) -> float:
    """Little's law L = lambda x W: requests in flight = arrival (= completion) rate x time in system."""
    _non_negative("throughput_per_s", throughput_per_s)
    _non_negative("latency_s", latency_s)
    return throughput_per_s * latency_s


def time_average_in_flight(intervals: Iterable[tuple[float, float]], start: float, end: float) -> float:
    """L measured directly: the number of requests in flight, averaged over the time from `start` to `end`.

    `intervals` are (arrival, departure) times; each counts for the part of it inside the window. Little's law
    says this equals throughput x mean time in system when the window holds whole requests (theory 2.2 §9).
    """
    if not end > start:
        raise ValueError(f"end must be after start, got {start!r}..{end!r}")
    busy = 0.0
    for arrival, departure in intervals:
        if departure < arrival:
            raise ValueError(f"a request cannot leave ({departure!r}) before it arrives ({arrival!r})")
        busy += max(0.0, min(departure, end) - max(arrival, start))
    return busy / (end - start)


def completion_rate(end_times: Sequence[float]) -> float:
    """Requests completed per second in the steady part of a run: (n - 1) / (last completion - first completion).

    Completed requests / wall time counts the run's ramp-up (the first answer comes one latency after the first
    request) and is biased low for runs not much longer than a request; the gaps between completions are not."""
    if len(end_times) < 2:
        raise ValueError("need at least two completions")
    span = max(end_times) - min(end_times)
    _positive("completion span", span)
    return (len(end_times) - 1) / span


def power_knee(throughputs: Sequence[float], latencies: Sequence[float]) -> int:
    """The knee of a latency-throughput curve: the index of the point with the highest *power*,
    throughput / latency (Kleinrock, "Power and deterministic rules of thumb for probabilistic problems in
    computer communications", ICC 1979; theory 2.2 §9 rule 5).

    Below saturation, more load raises throughput at almost the same latency, so power grows; past it,
    throughput stays flat while the queue raises latency, so power falls. Its maximum is the operating point
    with the most work per unit of waiting. The points are offered loads in increasing order.
    """
    if len(throughputs) != len(latencies) or not throughputs:
        raise ValueError("throughputs and latencies must be non-empty and of equal length")
    for value in throughputs:
        _non_negative("throughput", value)
    for value in latencies:
        _positive("latency", value)
    powers = [x / w for x, w in zip(throughputs, latencies, strict=True)]
    return max(range(len(powers)), key=powers.__getitem__)


def burn_rate(bad_ratio: float, slo_target: float) -> float:
    """How fast an error budget is spent: the share of bad events over the share the SLO allows.

    Burn rate 1 spends exactly the budget over the SLO period; 10 spends it in a tenth of the period
    (Google SRE Workbook, "Alerting on SLOs", 2018; theory 2.2 §10).
    """
    if not 0 < slo_target < 1:
        raise ValueError(f"slo_target must lie strictly between 0 and 1, got {slo_target!r}")
    if not 0 <= bad_ratio <= 1:
        raise ValueError(f"bad_ratio must lie in [0, 1], got {bad_ratio!r}")
    return bad_ratio / (1 - slo_target)


def burn_rate_threshold(budget_share: float, window_s: float, period_s: float) -> float:
    """The burn rate that spends `budget_share` of a period's error budget within `window_s`:
    budget_share x period / window. 2 % of a 30-day budget in 1 h gives 14.4; 5 % in 6 h gives 6
    (the SRE Workbook's page thresholds)."""
    if not 0 < budget_share <= 1:
        raise ValueError(f"budget_share must lie in (0, 1], got {budget_share!r}")
    _positive("window_s", window_s)
    _positive("period_s", period_s)
    if window_s > period_s:
        raise ValueError("the window cannot be longer than the SLO period")
    return budget_share * period_s / window_s


def slo_attainment(ttft_s, tpot_s, ttft_slo_s: float, tpot_slo_s: float) -> float:
    """Fraction of requests whose TTFT <= ttft_slo_s AND TPOT <= tpot_slo_s.

    Requests that failed should be passed with latency float('inf') so they count as misses.
    """
    _positive("ttft_slo_s", ttft_slo_s)
    _positive("tpot_slo_s", tpot_slo_s)
    if len(ttft_s) != len(tpot_s) or len(ttft_s) == 0:
        raise ValueError("ttft_s and tpot_s must be non-empty and of equal length")
    good = sum(1 for a, b in zip(ttft_s, tpot_s, strict=True) if a <= ttft_slo_s and b <= tpot_slo_s)
    return good / len(ttft_s)


def goodput_rps(ttft_s, tpot_s, ttft_slo_s: float, tpot_slo_s: float, duration_s: float) -> float:
    """Goodput: requests per second that completed within both SLOs during `duration_s`."""
    _positive("duration_s", duration_s)
    return slo_attainment(ttft_s, tpot_s, ttft_slo_s, tpot_slo_s) * len(ttft_s) / duration_s


def percentile(values, q: float) -> float:
    """q-th percentile (0..100) with linear interpolation (numpy's default method)."""
    import numpy as np

    if not 0 <= q <= 100:
        raise ValueError(f"q must lie in [0, 100], got {q!r}")
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("values must not be empty")
    if np.isnan(arr).any():
        raise ValueError("values contain NaN")
    return float(np.percentile(arr, q))


def percentiles(values: Iterable[float], ps: Sequence[float] = (50, 90, 99)) -> dict[float, float]:
    """Several percentiles at once by linear interpolation (numpy's default method).

    Raises ValueError on an empty sequence: a percentile of nothing is not zero.
    """
    data = list(values)
    if not data:
        raise ValueError("percentiles of an empty sequence are undefined (no successful requests?)")
    for p in ps:
        if not 0 <= p <= 100:
            raise ValueError(f"percentile {p} is outside 0..100")
    return {p: percentile(data, p) for p in ps}


def cost_per_million_tokens(dollars_per_hour: float, tokens_per_s: float) -> float:
    """$ per 1e6 tokens = dollars_per_hour / (tokens_per_s x 3600) x 1e6, at that sustained rate."""
    _non_negative("dollars_per_hour", dollars_per_hour)
    _positive("tokens_per_s", tokens_per_s)
    return dollars_per_hour / (tokens_per_s * 3600.0) * 1e6


def exponential_backoff_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """Upper bound of the wait before retry `attempt` (0-based): min(cap, base x 2^attempt).

    With "full jitter" a client sleeps uniform(0, this value) (Brooker, AWS Architecture Blog, 2015).
    """
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise ValueError(f"attempt must be a non-negative integer, got {attempt!r}")
    _positive("base_s", base_s)
    _positive("cap_s", cap_s)
    return min(cap_s, base_s * 2.0 ** min(attempt, 1000))
