"""The CPU fast path (oneDNN Linear layers) gives the plain path's results, up to float rounding."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from probing.engine import MaskedLMScorer, _OneDNNLinear, onednn_linear_available, with_onednn_linears
from test_engine import SENTENCES as ORACLE_SENTENCES

# The oracle sentences of test_engine, and a prior sentence with two masks.
SENTENCES = [*ORACLE_SENTENCES, "Why are <mask> always so <mask>?"]
TOL = 1e-5  # log-probs; a different GEMM summation order changes them by ~1e-6

pytestmark = pytest.mark.skipif(not onednn_linear_available(), reason="this torch has no oneDNN linear")


def scorers(model, tokenizer, batch_size=4):
    kwargs = dict(device=torch.device("cpu"), batch_size=batch_size, progress=False)
    return (MaskedLMScorer(model, tokenizer, cpu_fast_path=False, **kwargs),
            MaskedLMScorer(model, tokenizer, **kwargs))


def test_fast_path_is_used_on_cpu_fp32_only(tiny):
    model, tokenizer = tiny
    plain, fast = scorers(model, tokenizer)
    assert fast.fast_path and not plain.fast_path
    assert any(isinstance(m, _OneDNNLinear) for m in fast.model.modules())
    assert not any(isinstance(m, _OneDNNLinear) for m in plain.model.modules())
    # The caller's model is untouched and shares its weights with the fast copy.
    assert not any(isinstance(m, _OneDNNLinear) for m in model.modules())
    fast_params = dict(fast.model.named_parameters())
    for name, param in model.named_parameters():
        assert fast_params[name].data_ptr() == param.data_ptr()
    # The scorer casts the model in place: use a copy, not the session-wide tiny model.
    bf16 = MaskedLMScorer(copy.deepcopy(model), tokenizer, device=torch.device("cpu"), dtype=torch.bfloat16,
                          progress=False)
    assert not bf16.fast_path


def test_fast_path_equals_plain_path(tiny):
    model, tokenizer = tiny
    plain, fast = scorers(model, tokenizer)
    a = plain.log_probs(SENTENCES, [0, 0, 0, 0, 0, 1])
    b = fast.log_probs(SENTENCES, [0, 0, 0, 0, 0, 1])
    torch.testing.assert_close(b, a, atol=TOL, rtol=0)
    for x, y in zip(plain.top_k(SENTENCES, k=100), fast.top_k(SENTENCES, k=100)):
        # Same set; where two near-tied candidates swap, the log-prob at that rank still agrees.
        assert set(x.token_ids.tolist()) == set(y.token_ids.tolist())
        np.testing.assert_allclose(y.log_probs, x.log_probs, atol=TOL, rtol=0)
        assert np.mean(x.token_ids != y.token_ids) <= 0.05


def test_fast_path_typicality_equals_plain_path(tiny):
    model, tokenizer = tiny
    plain, fast = scorers(model, tokenizer, batch_size=3)
    sentences = SENTENCES[:3]
    priors = ["Why are <mask> so <mask>?", "Pourquoi les <mask> sont-elles si <mask> ?",
              "¿Por qué los <mask> son tan <mask>?"]
    kwargs = dict(k=30, scoring="typicality", prior_sentences=priors, prior_mask_index=[1, 1, 1],
                  typicality_pool=200)
    for x, y in zip(plain.top_k(sentences, **kwargs), fast.top_k(sentences, **kwargs)):
        np.testing.assert_allclose(y.scores, x.scores, atol=2 * TOL, rtol=0)
        np.testing.assert_allclose(y.log_probs[x.token_ids == y.token_ids],
                                   x.log_probs[x.token_ids == y.token_ids], atol=TOL, rtol=0)


def test_onednn_linear_matches_linear_and_falls_back_for_autograd():
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 80)
    fast = with_onednn_linears(torch.nn.Sequential(linear))[0]
    assert type(fast) is _OneDNNLinear and fast.weight is linear.weight
    x = torch.randn(3, 7, 48)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), linear(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast(x.transpose(0, 1)), linear(x.transpose(0, 1)), atol=1e-5, rtol=1e-5)
    out = fast(x)  # grad enabled: plain F.linear, so backward works
    out.sum().backward()
    assert linear.weight.grad is not None


def test_packed_weights_give_bitwise_the_same_results(tiny):
    """Weights reordered once into oneDNN's layout: the same numbers as packing on every call."""
    model, tokenizer = tiny
    kwargs = dict(device=torch.device("cpu"), batch_size=3, progress=False)
    packed = MaskedLMScorer(model, tokenizer, **kwargs)
    unpacked = MaskedLMScorer(model, tokenizer, pack_weights=False, **kwargs)
    linears = [m for m in packed.model.modules() if isinstance(m, _OneDNNLinear)]
    assert all((m.packed_weight is not None) == (m.out_features <= 100_000) for m in linears)
    assert all((m.packed_chunks is not None) == (m.out_features > 100_000) for m in linears)
    assert any(m.packed_weight is not None for m in linears) and any(m.packed_chunks is not None for m in linears)
    assert not any(getattr(m, "packed_weight", None) is not None or getattr(m, "packed_chunks", None) is not None
                   for m in unpacked.model.modules())
    a, b = packed.top_k(SENTENCES, k=40), unpacked.top_k(SENTENCES, k=40)
    np.testing.assert_array_equal(a.token_ids, b.token_ids)
    np.testing.assert_array_equal(a.log_probs, b.log_probs)


def test_vocabulary_sized_layer_in_packed_chunks_is_bitwise_the_same_and_reuses_its_output():
    from probing.engine import VOCAB_CHUNK

    torch.manual_seed(0)
    linear = torch.nn.Linear(24, 2 * VOCAB_CHUNK + 5)  # two whole chunks and a short one
    plain = with_onednn_linears(torch.nn.Sequential(linear))[0]
    chunked = with_onednn_linears(torch.nn.Sequential(linear), pack_max_out=VOCAB_CHUNK, wide_pack_rows=4)[0]
    assert [(a, b) for a, b, _, _ in chunked.packed_chunks] == [
        (0, VOCAB_CHUNK), (VOCAB_CHUNK, 2 * VOCAB_CHUNK), (2 * VOCAB_CHUNK, 2 * VOCAB_CHUNK + 5)]
    x, y = torch.randn(4, 24), torch.randn(3, 24)
    with torch.inference_mode():
        first = chunked(x)
        assert torch.equal(first, plain(x))
        assert torch.equal(chunked(x.view(2, 2, 24)), plain(x.view(2, 2, 24)))
        assert chunked(x).data_ptr() != first.data_ptr()  # a fresh tensor each call by default
        chunked.reuse_output = True
        kept = chunked(x)
        again = chunked(y)  # fewer rows: a view of the same tensor, overwritten
        assert again.data_ptr() == kept.data_ptr() and torch.equal(again, plain(y))
        torch.testing.assert_close(again, linear(y), atol=1e-5, rtol=1e-5)
