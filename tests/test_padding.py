"""The scorer pads batches on the right whatever the tokenizer's ``padding_side``.

XLM-R (like RoBERTa) numbers positions from the non-pad tokens, so left padding happens not to
change its outputs: with tiny-xlmr the test checks that left-padding tokenizers give the results
of right-padding ones and of unbatched scoring, and spies on the encoder's inputs to see the pads
at the end. A BERT model numbers positions from the start of the row, so naive left padding
changes its outputs; there the test also shows that it would have.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from probing.engine import MaskedLMScorer

SENTENCES = [  # five lengths, so every batch of two or more is padded
    "Why are women so <mask>?",
    "Pourquoi les femmes sont-elles si <mask> ?",
    "¿Por qué los hombres son tan <mask>?",
    "Γιατί οι γυναίκες είναι τόσο <mask>;",
    "Why is the United States of America always so very <mask> these days?",
]
K = 20
ATOL = 1e-5


def left_padding(tokenizer):
    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    return left


def scorer(model, tokenizer, batch_size):
    return MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=batch_size, progress=False)


def assert_same_top_k(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.token_ids, y.token_ids)
        np.testing.assert_allclose(x.log_probs, y.log_probs, atol=ATOL, rtol=0)


def encoder_inputs(scorer_):
    """The ``input_ids`` of every encoder call of ``scorer_``, recorded as they happen."""
    seen = []

    def record(module, args, kwargs):
        seen.append((kwargs["input_ids"] if "input_ids" in kwargs else args[0]).clone())

    target = scorer_.encoder if scorer_.head is not None else scorer_.model
    target.register_forward_pre_hook(record, with_kwargs=True)
    return seen


def assert_padded_on_the_right(batches, pad_id):
    assert any((batch == pad_id).any() for batch in batches), "no batch was padded"
    for batch in batches:
        for row in batch.tolist():
            length = len(row) - sum(t == pad_id for t in row)
            assert all(t == pad_id for t in row[length:]) and pad_id not in row[:length], row


def test_left_padding_tokenizer_really_pads_on_the_left(tiny):
    _, tokenizer = tiny
    left = left_padding(tokenizer)
    assert tokenizer.padding_side == "right"
    ids = left(SENTENCES[:2], padding=True)["input_ids"]
    assert ids[0][0] == tokenizer.pad_token_id and ids[1][0] != tokenizer.pad_token_id


@pytest.mark.parametrize("batch_size", [3, 8])
def test_xlmr_left_padding_tokenizer_gives_right_padded_results(tiny, batch_size):
    model, tokenizer = tiny
    alone = scorer(model, tokenizer, 1).top_k(SENTENCES, k=K)
    right = scorer(model, tokenizer, batch_size).top_k(SENTENCES, k=K)
    left_scorer = scorer(model, left_padding(tokenizer), batch_size)
    batches = encoder_inputs(left_scorer)
    left = left_scorer.top_k(SENTENCES, k=K)
    assert len(batches) == -(-len(SENTENCES) // batch_size)
    assert_padded_on_the_right(batches, tokenizer.pad_token_id)
    assert_same_top_k(left, right)
    assert_same_top_k(left, alone)


# --- a model where the padding side matters -------------------------------------------------------

BERT_WORDS = ["why", "are", "women", "men", "so", "very", "always", "happy", "sad", "lazy", "kind", "smart",
              "?", "."]
BERT_SENTENCES = ["why are women so [MASK] ?", "why are men always so very very [MASK] ?", "women are [MASK] .",
                  "men are so [MASK] ."]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT (absolute positions counted from the row's start) and its tokenizer."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *BERT_WORDS]
    folder = tmp_path_factory.mktemp("bert-padding")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32)).eval()
    return model, tokenizer, BertTokenizer.from_pretrained(folder, padding_side="left")


def test_naive_left_padding_would_change_bert_results(tiny_bert):
    model, tokenizer, left = tiny_bert
    batch = left(BERT_SENTENCES, padding=True, return_tensors="pt")
    assert (batch["input_ids"][:, 0] == tokenizer.pad_token_id).any()
    with torch.inference_mode():
        logits = model(**batch).logits
        for row, sentence in enumerate(BERT_SENTENCES):
            single = tokenizer(sentence, return_tensors="pt")
            expected = torch.log_softmax(model(**single).logits[0], -1)[single["input_ids"][0].tolist().index(
                tokenizer.mask_token_id)]
            got = torch.log_softmax(logits[row], -1)[batch["input_ids"][row].tolist().index(tokenizer.mask_token_id)]
            difference = (got - expected).abs().max().item()
            if batch["attention_mask"][row].all():  # the longest sentence: not padded, same result
                assert difference < ATOL
            else:
                assert difference > 1e-3, sentence


@pytest.mark.parametrize("batch_size", [3, 4])
def test_bert_left_padding_tokenizer_gives_right_padded_results(tiny_bert, batch_size):
    model, tokenizer, left = tiny_bert
    k = len(tokenizer)  # the whole vocabulary
    alone = scorer(model, tokenizer, 1).top_k(BERT_SENTENCES, k=k)
    right = scorer(model, tokenizer, batch_size).top_k(BERT_SENTENCES, k=k)
    left_scorer = scorer(model, left, batch_size)
    batches = encoder_inputs(left_scorer)
    results = left_scorer.top_k(BERT_SENTENCES, k=k)
    assert_padded_on_the_right(batches, tokenizer.pad_token_id)
    assert_same_top_k(results, right)
    assert_same_top_k(results, alone)
