"""Tests of llmserve.measure.quantization: perplexity bookkeeping, the loaders, the GGUF summary."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from llmserve.measure import quantization as q


class UniformModel:
    """Predicts every token of a vocabulary of size `vocab` with probability 1/vocab."""

    def __init__(self, vocab: int):
        self.vocab = vocab
        self.calls = []

    def __call__(self, ids):
        self.calls.append(ids.shape[1])
        return SimpleNamespace(logits=torch.zeros((1, ids.shape[1], self.vocab)))


class BigramModel:
    """Logits depend only on the current token: the result cannot depend on the windows."""

    def __init__(self, vocab: int, seed: int = 0):
        self.table = torch.randn((vocab, vocab), generator=torch.Generator().manual_seed(seed))

    def __call__(self, ids):
        return SimpleNamespace(logits=self.table[ids[0]].unsqueeze(0))


def test_uniform_model_has_perplexity_equal_to_vocabulary_size():
    result = q.perplexity(UniformModel(vocab=97), list(range(50)), max_length=16, stride=8)
    assert result.scored_tokens == 49
    assert result.perplexity == pytest.approx(97, rel=1e-6)  # float32 log-softmax


@pytest.mark.parametrize("num_tokens, max_length, stride", [
    (2, 2, 1), (10, 4, 3), (10, 4, 1), (100, 16, 8), (101, 16, 5), (7, 32, 16), (64, 8, 7)])
def test_windows_score_every_token_exactly_once(num_tokens, max_length, stride):
    windows = q.sliding_windows(num_tokens, max_length, stride)
    scored = [t for w in windows for t in range(w.score_from, w.end)]
    assert scored == list(range(1, num_tokens))          # every token but the first, once, in order
    for w in windows:
        assert 0 <= w.begin < w.score_from <= w.end <= num_tokens
        assert w.end - w.begin <= max_length
        if w.begin > 0:  # later windows: full context
            assert w.score_from - w.begin >= max_length - stride


def test_perplexity_counts_and_pushes_what_the_windows_say():
    model = UniformModel(vocab=5)
    result = q.perplexity(model, [i % 5 for i in range(100)], max_length=16, stride=8)
    windows = q.sliding_windows(100, 16, 8)
    assert result.scored_tokens == 99
    assert model.calls == [w.end - w.begin for w in windows]
    assert result.forward_tokens == sum(model.calls)


def test_context_free_model_gives_the_same_perplexity_for_any_window():
    model = BigramModel(vocab=11)
    ids = [int(x) for x in np.random.default_rng(1).integers(0, 11, size=60)]
    log_probs = torch.log_softmax(model.table, dim=-1)
    exact = math.exp(-sum(float(log_probs[a, b]) for a, b in zip(ids[:-1], ids[1:], strict=True)) / 59)
    for max_length, stride in ((60, 59), (8, 7), (8, 3), (2, 1)):
        assert q.perplexity(model, ids, max_length, stride).perplexity == pytest.approx(exact, rel=1e-5)


def test_bad_window_arguments_are_rejected():
    with pytest.raises(ValueError):
        q.sliding_windows(1, 4, 2)
    with pytest.raises(ValueError):
        q.sliding_windows(10, 4, 4)  # stride must leave context
    with pytest.raises(ValueError):
        q.quantization_config("int3")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_loaders_return_the_variant_they_claim(tiny_model_dir):
    loaded = {v: q.load_variant(v, tiny_model_dir) for v in q.VARIANTS}
    fp32, int8, nf4 = (loaded[v].model for v in q.VARIANTS)
    proj = "model.layers.0.self_attn.q_proj"
    assert set(loaded["fp32"].layer_types) == {"Linear"}
    assert fp32.get_submodule(proj).weight.dtype == torch.float32
    assert type(int8.get_submodule(proj)).__name__ == "Linear8bitLt"
    assert int8.get_submodule(proj).weight.dtype == torch.int8
    assert type(nf4.get_submodule(proj)).__name__ == "Linear4bit"
    assert nf4.get_submodule(proj).weight.quant_state.quant_type == "nf4"
    # 14 projections (2 layers x 7) are quantized; the output head stays in full precision
    assert loaded["int8"].layer_types == {"Linear8bitLt": 14, "Linear": 1}
    assert loaded["nf4"].layer_types == {"Linear4bit": 14, "Linear": 1}
    assert loaded["fp32"].footprint_bytes > loaded["int8"].footprint_bytes > loaded["nf4"].footprint_bytes
    ids = list(range(1, 40))
    for lv in loaded.values():
        assert math.isfinite(q.perplexity(lv.model, ids, 16, 8).perplexity)


def test_answer_checks_compare_the_greedy_continuation(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    class CharTokenizer:
        def __call__(self, text, add_special_tokens=False):
            return SimpleNamespace(input_ids=[ord(c) for c in text])

        def decode(self, ids):
            return "".join(chr(i) for i in ids)

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = CharTokenizer()
    [check] = q.answer_checks(model, tokenizer, [("abc", "de")])
    full = torch.tensor([[ord(c) for c in "abc de"]])
    greedy = model(full).logits[0, 2:-1].argmax(-1).tolist()
    assert check.predicted == tokenizer.decode(greedy).strip()
    assert check.correct == (greedy == [ord(c) for c in " de"])


def test_gguf_summary_counts_parameters_and_types(tmp_path):
    import gguf

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("a", np.zeros((4, 8), dtype=np.float32))
    writer.add_tensor("b", np.zeros((16,), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    summary = q.gguf_summary(path)
    assert summary.parameters == 48
    assert summary.tensor_types == {"F32": 32, "F16": 16}
    assert summary.bits_per_weight == pytest.approx(8 * path.stat().st_size / 48)


def test_shipped_evaluation_text_has_its_source_note():
    text = q.read_eval_text()
    assert "ALICE'S ADVENTURES IN WONDERLAND" in text and "CHAPTER II" in text
    assert (q.EVAL_TEXT.parent / "SOURCE.md").exists()


def test_per_token_nlls_add_up_and_pair_up():
    ids = [int(x) for x in np.random.default_rng(2).integers(0, 11, size=80)]
    bigram = q.perplexity(BigramModel(vocab=11), ids, max_length=16, stride=8)
    uniform = q.perplexity(UniformModel(vocab=11), ids, max_length=16, stride=8)
    assert len(bigram.token_nlls) == bigram.scored_tokens == 79
    assert sum(bigram.token_nlls) == pytest.approx(bigram.nll_sum, rel=1e-6)
    assert all(x == pytest.approx(math.log(11), rel=1e-6) for x in uniform.token_nlls)
    diff = q.nll_difference(uniform, bigram)
    assert diff.tokens == 79
    assert diff.mean == pytest.approx(bigram.mean_nll - uniform.mean_nll, rel=1e-6)
    deltas = np.array(bigram.token_nlls) - np.array(uniform.token_nlls)
    assert diff.standard_error == pytest.approx(deltas.std(ddof=1) / math.sqrt(79), rel=1e-6)
    same = q.nll_difference(bigram, bigram)
    assert same.mean == 0 and same.within()
    assert not q.NLLDifference(mean=0.5, standard_error=0.1, tokens=100).within()
    with pytest.raises(ValueError):
        q.nll_difference(bigram, q.perplexity(BigramModel(vocab=11), ids[:40], max_length=16, stride=8))


def test_prefill_and_decode_separates_the_two(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = SimpleNamespace(pad_token_id=0, eos_token_id=0)
    run = q.prefill_and_decode(model, tokenizer, list(range(1, 21)), decode_tokens=6, repeats=2)
    assert run.prompt_tokens == 20 and run.decode_tokens == 6
    assert len(run.first_s) == len(run.total_s) == 2
    for first, total, decode, prefill in zip(run.first_s, run.total_s, run.decode_tok_s, run.prefill_tok_s,
                                             strict=True):
        assert 0 < first < total
        assert decode == pytest.approx(6 / (total - first))
        assert prefill == pytest.approx(20 / first)
    with pytest.raises(ValueError):
        q.prefill_and_decode(model, tokenizer, [1, 2], decode_tokens=0)


def test_profile_decode_step_names_the_kernels_that_ran(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ops = q.profile_decode_step(model, list(range(1, 9)))
    names = {op.name for op in ops}
    assert names & {"aten::mm", "aten::addmm", "aten::linear"}  # fp32 linears are matrix multiplies
    assert [op.self_seconds for op in ops] == sorted((op.self_seconds for op in ops), reverse=True)
    assert all(op.calls >= 1 and op.self_seconds >= 0 for op in ops)
    # 2 layers x 7 projections + the head: one decode step runs at least 15 matrix multiplies
    assert sum(op.calls for op in ops if op.name == "aten::mm") >= 15
