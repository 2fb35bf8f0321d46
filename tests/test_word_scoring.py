"""Whole-word scoring (probing.word_scoring): the chain rule against the plain transformers model,
one-piece words against token mode, and the shortlist search against exhaustive exact scoring."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from probing.engine import MaskedLMScorer
from probing.word_scoring import WordScorer, beam_pieces, slot_context

SENTENCES = ["Why are they so <mask>?", "Women are <mask>.", "Everyone knows that old people are very <mask>."]


def sharpened(model, factor: float = 30.0):
    """tiny-xlmr with its LM head's output scaled ``factor`` times: random weights give log-probs
    within ~0.1 nats of each other; scaled, they spread over several nats and depend on context, so
    that multi-piece words compete with one-piece ones (what the search must get right)."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.lm_head.layer_norm.weight.mul_(factor)
    return model


def word_pieces(tokenizer, words):
    return [tuple(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words]


WORDS = ["méchantes", "paresseux", "heureuses", "bon", "the", "laziness", "τεμπέληδες", "böse", "happy",
         "unhappiness", "coupables", "feos", "a", "dangerous", "perezosos", "tristes", "good", "bad"]


def hand_chain(model, tokenizer, sentence, pieces):
    """log p(w | s) by the chain rule, with the plain model: fill the slot with the pieces so far
    and masks, run the model, read the next position."""
    ids = tokenizer(sentence)["input_ids"]
    slot = ids.index(tokenizer.mask_token_id)
    total = 0.0
    for i, piece in enumerate(pieces):
        context = ids[:slot] + list(pieces[:i]) + [tokenizer.mask_token_id] * (len(pieces) - i) + ids[slot + 1:]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([context])).logits[0, slot + i]
        total += torch.log_softmax(logits.double(), dim=-1)[piece].item()
    return total


@pytest.mark.parametrize("fast", [True, False])
def test_chain_rule_equals_hand_computation(tiny, fast):
    model, tokenizer = tiny
    pieces = word_pieces(tokenizer, WORDS[:8])
    assert max(len(p) for p in pieces) >= 3 and min(len(p) for p in pieces) == 1
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=4, progress=False,
                            cpu_fast_path=fast, last_layer_at_mask=fast)
    words = WordScorer(scorer, pieces)
    ids = [tokenizer(s)["input_ids"] for s in SENTENCES]
    slots = [row.index(tokenizer.mask_token_id) for row in ids]
    exhaustive = words.exhaustive(ids, slots).numpy()
    for r, sentence in enumerate(SENTENCES[:2]):
        for c, p in enumerate(pieces):
            assert exhaustive[r, c] == pytest.approx(hand_chain(model, tokenizer, sentence, p), abs=1e-5)


def test_one_piece_words_equal_token_mode(tiny):
    model, tokenizer = tiny
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=8, progress=False)
    one_piece = [p for p in word_pieces(tokenizer, WORDS) if len(p) == 1]
    words = WordScorer(scorer, one_piece)
    top = words.top_k(SENTENCES, k=len(one_piece))
    full = scorer.log_probs(SENTENCES).numpy()
    for r in range(len(SENTENCES)):
        expected = full[r, [one_piece[c][0] for c in top.token_ids[r]]]
        np.testing.assert_allclose(top.log_probs[r], expected, atol=1e-6)
        assert list(top.scores[r]) == sorted(top.scores[r], reverse=True)


@pytest.fixture(scope="module")
def sharp_scorer(tiny):
    model, tokenizer = tiny
    return MaskedLMScorer(sharpened(model), tokenizer, device=torch.device("cpu"), batch_size=16, progress=False,
                          pack_weights=False)  # packing costs seconds at start-up; the fast path is tested above


@pytest.fixture(scope="module")
def many_pieces(tiny, sharp_scorer):
    """300 candidates of 1-4 pieces: 60 random whole-word tokens, the sharpened model's greedy
    multi-piece words for SENTENCES, and random concatenations of a word start and 1-3 pieces."""
    _, tokenizer = tiny
    rng = np.random.default_rng(0)
    starts = [t for t in range(1000, 60000) if tokenizer.convert_ids_to_tokens(t).startswith("\u2581")]
    inner = [t for t in range(1000, 60000) if not tokenizer.convert_ids_to_tokens(t).startswith("\u2581")]
    pieces = {(int(t),) for t in rng.choice(starts, 60, replace=False)}
    pieces |= beam_pieces(sharp_scorer, SENTENCES)
    while len(pieces) < 300:
        n = int(rng.integers(2, 5))
        pieces.add((int(rng.choice(starts)), *map(int, rng.choice(inner, n - 1))))
    return sorted(pieces)


@pytest.mark.parametrize("k", [1, 20])
def test_search_equals_exhaustive_when_the_shortlist_covers_everything(sharp_scorer, many_pieces, k):
    words = WordScorer(sharp_scorer, many_pieces, shortlist_factor=len(many_pieces))
    ids = [sharp_scorer.tokenizer(s)["input_ids"] for s in SENTENCES]
    slots = [row.index(sharp_scorer.mask_id) for row in ids]
    exact = words.exhaustive(ids, slots)
    expected_values, expected_ids = torch.topk(exact, k, dim=1)
    got_ids, got_values = words.select(ids, slots, k)
    torch.testing.assert_close(got_values, expected_values, atol=1e-5, rtol=0)
    assert (got_ids == expected_ids).all()


def test_default_shortlist_finds_the_exhaustive_top_k(sharp_scorer, many_pieces):
    """With longer words competing (sharpened model), the default search returns the exhaustive
    top-k on every sentence here, with exact scores, at a fraction of the passes."""
    words = WordScorer(sharp_scorer, many_pieces)
    ids = [sharp_scorer.tokenizer(s)["input_ids"] for s in SENTENCES]
    slots = [row.index(sharp_scorer.mask_id) for row in ids]
    exact = words.exhaustive(ids, slots)
    exhaustive_passes, words.passes = words.passes, 0
    k = 10
    got_ids, got_values = words.select(ids, slots, k)
    expected_values, expected_ids = torch.topk(exact, k, dim=1)
    longer_in_top = (words.table.n_pieces[expected_ids] > 1).sum().item()
    assert longer_in_top > 0, "the test needs multi-piece words in the exact top-k"
    assert (got_ids == expected_ids).all()
    torch.testing.assert_close(got_values, expected_values, atol=1e-5, rtol=0)
    assert words.passes < exhaustive_passes / 3


def test_typicality_is_the_difference_of_two_chain_rule_scores(sharp_scorer, many_pieces, tiny):
    model, tokenizer = tiny
    words = WordScorer(sharp_scorer, many_pieces, shortlist_factor=len(many_pieces))
    sentences = ["Why are women so <mask>?", "Why are men so <mask>?"]
    prior = ["Why are <mask> so <mask>?"] * 2
    top = words.top_k(sentences, k=5, scoring="typicality", prior_sentences=prior, prior_mask_index=[1, 1],
                      typicality_pool=50)
    ids = [tokenizer(s)["input_ids"] for s in sentences + prior[:1]]
    slots = [row.index(tokenizer.mask_token_id) for row in ids[:2]] + [
        [i for i, t in enumerate(ids[2]) if t == tokenizer.mask_token_id][1]]
    exact = words.exhaustive(ids, slots)
    for r in range(2):
        pool = torch.topk(exact[r], 50).indices
        typicality = exact[r, pool] - exact[2, pool]
        values, where = torch.topk(typicality, 5)
        assert top.token_ids[r].tolist() == pool[where].tolist()
        np.testing.assert_allclose(top.scores[r], values.numpy(), atol=1e-5)
        np.testing.assert_allclose(top.log_probs[r], exact[r, pool[where]].numpy(), atol=1e-5)


def test_top_k_larger_than_the_candidate_set_is_refused(sharp_scorer, many_pieces):
    from probing.errors import UserError

    words = WordScorer(sharp_scorer, many_pieces[:5])
    with pytest.raises(UserError, match="candidate set"):
        words.top_k(SENTENCES, k=6)


def test_several_reads_per_row_equal_one_read_each(tiny):
    """The first stage reads every position of the slot in one pass (the last layer computed at
    those positions only): the same log-probabilities as one pass per position."""
    model, tokenizer = tiny
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=8, progress=False)
    assert scorer.last_layer_at_mask
    ids = tokenizer(SENTENCES[2])["input_ids"]
    slot = ids.index(tokenizer.mask_token_id)
    context = slot_context(ids, slot, (), 3, tokenizer.mask_token_id)
    together = scorer.log_probs_at([context, ids], [0, 0, 0, 1], [slot, slot + 1, slot + 2, slot]).clone()
    for read, position in enumerate((slot, slot + 1, slot + 2)):
        alone = scorer.log_probs_at([context], [0], [position])[0]
        torch.testing.assert_close(together[read], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(together[3], scorer.log_probs_at([ids], [0], [slot])[0], atol=1e-5, rtol=0)


def test_restricted_head_is_the_full_log_softmax_renormalised_over_its_tokens(tiny, many_pieces):
    model, tokenizer = tiny
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=8, progress=False)
    words = WordScorer(scorer, many_pieces)
    assert words.restricted is not None
    tokens = torch.as_tensor(words.restricted.tokens)
    ids = tokenizer(SENTENCES[0])["input_ids"]
    slot = ids.index(tokenizer.mask_token_id)
    hidden = scorer.hidden_at([ids], [0], [slot])
    full = scorer.head_log_probs(hidden)[0].index_select(0, tokens)
    torch.testing.assert_close(words.restricted.log_probs(hidden)[0], torch.log_softmax(full, dim=0),
                               atol=1e-5, rtol=0)
    # a second scorer on the same model, after the head has run: still restricted (not full rows)
    assert WordScorer(scorer, many_pieces[:50]).restricted is not None
