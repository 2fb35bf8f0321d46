"""The engine against independent oracles: the fill-mask pipeline and hand-computed scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probing.engine import TOP_K_STRIPES, MaskedLMScorer, split_lm_head, top_k_rows

SENTENCES = [
    "Why are women so <mask>?",
    "Pourquoi les femmes sont-elles si <mask> ?",
    "¿Por qué los hombres son tan <mask>?",
    "Γιατί οι γυναίκες είναι τόσο <mask>;",
    "Why is the United States always so <mask>?",
]
TIE = 1e-5  # padding changes float rounding by ~1e-7; candidates closer than this may swap


def assert_same_ranking(ids_a, lps_a, ids_b, lps_b):
    """Identical top-k up to exact ties: same set, same log-prob at every rank."""
    assert set(ids_a.tolist()) == set(ids_b.tolist())
    np.testing.assert_allclose(lps_a, lps_b, atol=TIE)
    differ = np.flatnonzero(ids_a != ids_b)
    assert len(differ) <= 0.05 * len(ids_a), f"ranks {differ} differ beyond ties"


def pipeline_top_k(model, tokenizer, sentence, k):
    from transformers import pipeline

    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=k, device="cpu")
    out = fill(sentence)
    return np.array([o["token"] for o in out]), np.log(np.array([o["score"] for o in out]))


def test_top_k_equals_fill_mask_pipeline(tiny):
    model, tokenizer = tiny
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=2, progress=False)
    results = scorer.top_k(SENTENCES, k=50)
    for sentence, result in zip(SENTENCES, results):
        ids, log_probs = pipeline_top_k(model, tokenizer, sentence, 50)
        assert_same_ranking(result.token_ids, result.log_probs, ids, log_probs)
        np.testing.assert_array_equal(result.scores, result.log_probs)  # raw scoring
        assert np.all(np.diff(result.scores) <= 0)


def test_batch_size_and_order_do_not_change_results(tiny):
    model, tokenizer = tiny
    one = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=1, progress=False)
    many = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=8, progress=False)
    a = one.top_k(SENTENCES, k=20)
    b = many.top_k(SENTENCES[::-1], k=20)[::-1]
    for x, y in zip(a, b):
        assert_same_ranking(x.token_ids, x.log_probs, y.token_ids, y.log_probs)


def test_lm_head_at_mask_only_equals_full_model(tiny):
    model, tokenizer = tiny
    encoder, head = split_lm_head(model)
    assert head is model.lm_head and encoder is model.roberta
    batch = tokenizer(SENTENCES[0], return_tensors="pt")
    with torch.inference_mode():
        full = torch.log_softmax(model(**batch).logits[0], -1)
    position = batch["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), progress=False)
    fast = scorer.log_probs([SENTENCES[0]])[0]
    torch.testing.assert_close(fast, full[position], atol=1e-5, rtol=0)
    assert torch.exp(fast).sum().item() == pytest.approx(1.0, abs=1e-4)


def test_typicality_by_hand(tiny):
    """score = log p(w|s) - log p(w|prior), among the `pool` most probable tokens."""
    model, tokenizer = tiny
    sentence, prior = "Why are women so <mask>?", "Why are <mask> so <mask>?"
    with torch.inference_mode():
        def at_mask(text, which):
            enc = tokenizer(text, return_tensors="pt")
            positions = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
            return torch.log_softmax(model(**enc).logits[0, positions[which]], -1)
        log_p, log_prior = at_mask(sentence, 0), at_mask(prior, 1)
    pool = torch.topk(log_p, 100).indices
    expected = (log_p[pool] - log_prior[pool]).numpy()
    order = np.argsort(-expected, kind="stable")[:10]

    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), progress=False)
    result = scorer.top_k([sentence], k=10, scoring="typicality", prior_sentences=[prior],
                          prior_mask_index=[1], typicality_pool=100)[0]
    np.testing.assert_allclose(result.scores, expected[order], atol=1e-5)
    np.testing.assert_array_equal(result.token_ids, pool.numpy()[order])
    np.testing.assert_allclose(result.log_probs, log_p[pool].numpy()[order], atol=1e-5)


def test_prior_is_computed_once_per_distinct_prior_sentence(tiny, monkeypatch):
    model, tokenizer = tiny
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), progress=False)
    seen = []
    original = scorer.log_probs

    def counting(sentences, mask_index=None, **kw):
        seen.append(list(sentences))
        return original(sentences, mask_index, **kw)

    monkeypatch.setattr(scorer, "log_probs", counting)
    prior = "Why are <mask> so <mask>?"
    scorer.top_k(["Why are women so <mask>?", "Why are men so <mask>?"], k=5, scoring="typicality",
                 prior_sentences=[prior, prior], prior_mask_index=[1, 1])
    assert seen == [[prior]]


def test_last_layer_at_mask_equals_the_full_layer(tiny):
    """The encoder's last layer run at the mask only gives the full layer's top-k (float rounding)."""
    model, tokenizer = tiny
    trimmed = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=3, progress=False)
    full = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=3, progress=False,
                          last_layer_at_mask=False)
    assert trimmed.last_layer_at_mask and not full.last_layer_at_mask
    calls = []
    trimmed._last_layer.register_forward_hook(lambda *_: calls.append(1))
    for a, b in zip(trimmed.top_k(SENTENCES, k=50), full.top_k(SENTENCES, k=50)):
        assert_same_ranking(a.token_ids, a.log_probs, b.token_ids, b.log_probs)
    assert len(calls) == 2  # five sentences in batches of three: the trimmed layer ran


def test_last_layer_that_disagrees_is_not_used(tiny, monkeypatch):
    from probing import engine

    model, tokenizer = tiny
    ids = torch.tensor([[0, 5, tokenizer.mask_token_id, 2]])
    rows, cols = torch.tensor([0]), torch.tensor([2])
    encoder = model.base_model
    assert engine.with_last_layer_at_mask(encoder, ids, torch.ones_like(ids), rows, cols)[1] is not None
    exact = engine._LastLayerAtMask.forward
    monkeypatch.setattr(engine._LastLayerAtMask, "forward", lambda self, *a, **k: exact(self, *a, **k) + 1e-3)
    assert engine.with_last_layer_at_mask(encoder, ids, torch.ones_like(ids), rows, cols) == (encoder, None)


# --- top_k_rows: torch.topk through stripe maxima ------------------------------------------------

@pytest.mark.parametrize("vocab, k", [(250_002, 200), (250_002, 1000), (16 * 800 + 7, 200), (16 * 800, 1), (5000, 200)])
def test_top_k_rows_equals_torch_topk_on_distinct_values(vocab, k):
    generator = torch.Generator().manual_seed(vocab + k)
    # distinct values (a permutation), so the top-k ids are unique and must match exactly
    values = torch.stack([torch.randperm(vocab, generator=generator) for _ in range(6)]).float()
    values[0, -3:] = vocab + torch.arange(3.0)  # the best entries in the leftover columns
    values[1, :k] = vocab + torch.arange(float(k))  # all of the best crowded into a few sets
    got_values, got_ids = top_k_rows(values, k)
    want_values, want_ids = torch.topk(values, k, dim=-1)
    assert torch.equal(got_values, want_values)
    assert torch.equal(got_ids, want_ids)


def test_top_k_rows_keeps_tied_values():
    generator = torch.Generator().manual_seed(0)
    values = torch.randint(0, 50, (4, 16 * 1000 + 3), generator=generator).float()  # many ties
    got_values, got_ids = top_k_rows(values, 100)
    assert torch.equal(got_values, torch.topk(values, 100, dim=-1).values)
    assert torch.equal(torch.gather(values, 1, got_ids), got_values)  # each id holds its value
    assert all(len(set(row.tolist())) == 100 for row in got_ids)  # no id twice


def test_top_k_rows_uses_stripes_at_xlmr_size(monkeypatch):
    # the fast path is taken (not the fallback) at the vocabulary and k the CLI uses
    calls = []
    real_topk = torch.topk
    monkeypatch.setattr(torch, "topk", lambda t, k, **kw: calls.append(t.shape[-1]) or real_topk(t, k, **kw))
    top_k_rows(torch.randn(2, 250_002), 200)
    assert max(calls) <= 250_002 // TOP_K_STRIPES
