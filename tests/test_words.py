"""Word-start and script filters for the three sub-word schemes, and a BERT model end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probing.engine import MaskedLMScorer, split_lm_head
from probing.words import group_words, is_script_word, vocabulary


class FakeTokenizer:
    def __init__(self, tokens, special):
        self.tokens = tokens
        self.all_special_ids = [tokens.index(t) for t in special]

    def __len__(self):
        return len(self.tokens)

    def convert_ids_to_tokens(self, ids):
        return [self.tokens[i] for i in ids]


@pytest.mark.parametrize("tokens, special, words, starts", [
    (["<s>", "<mask>", "▁happy", "ness", "▁ö", "▁"], ["<s>", "<mask>"],
     ["", "", "happy", "", "ö", ""], [False, False, True, False, True, False]),
    (["<s>", "Ġhappy", "ness", "Ġsad"], ["<s>"],
     ["", "happy", "", "sad"], [False, True, False, True]),
    (["[CLS]", "[MASK]", "happy", "##ness", "sad"], ["[CLS]", "[MASK]"],
     ["", "", "happy", "", "sad"], [False, False, True, False, True]),
])
def test_word_starts_per_scheme(tokens, special, words, starts):
    vocab = vocabulary(FakeTokenizer(tokens, special))
    assert list(vocab.words) == words
    assert vocab.word_start.tolist() == starts


def test_script_filter():
    assert is_script_word("όμορφες", "Greek")
    assert not is_script_word("beautiful", "Greek")
    assert is_script_word("épanouies", "Latin")
    assert not is_script_word("x", "Latin")  # one letter is not a word here
    assert not is_script_word("co-op", "Latin") and not is_script_word("r2d2", "Latin")
    assert not is_script_word("москва", "Latin")


def test_group_words_split_names():
    assert group_words(["personnes âgées", "Afro-Américains", "l'Iran"]) == {
        "personnes", "âgées", "afro", "américains", "l", "iran"}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT with a WordPiece vocabulary written here."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    words = ["why", "are", "women", "men", "so", "happy", "sad", "lazy", "kind", "smart", "?", "."]
    pieces = ["##s", "##ly", "##er"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *pieces]
    folder = tmp_path_factory.mktemp("bert")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(folder)
    assert len(tokenizer) == len(vocab)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32)).eval()
    return model, tokenizer


def test_bert_head_at_mask_equals_fill_mask_pipeline(tiny_bert):
    from transformers import pipeline

    model, tokenizer = tiny_bert
    encoder, head = split_lm_head(model)
    assert head is model.cls
    sentences = ["why are women so [MASK] ?", "why are men so [MASK] ."]
    scorer = MaskedLMScorer(model, tokenizer, device=torch.device("cpu"), batch_size=2, progress=False)
    results = scorer.top_k(sentences, k=5)
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=5, device="cpu")
    for sentence, result in zip(sentences, results):
        out = fill(sentence)
        np.testing.assert_array_equal(result.token_ids, [o["token"] for o in out])
        np.testing.assert_allclose(result.log_probs, np.log([o["score"] for o in out]), atol=1e-5)
    vocab = vocabulary(tokenizer)
    assert vocab.scheme == "wordpiece"
    assert vocab.word_start[tokenizer.convert_tokens_to_ids("happy")]
    assert not vocab.word_start[tokenizer.convert_tokens_to_ids("##ly")]
    assert not vocab.word_start[tokenizer.mask_token_id]
