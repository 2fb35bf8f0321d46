"""Which vocabulary tokens are whole-word completions in a language's script.

A completion at the mask must start a word: with SentencePiece (XLM-R) the token begins with
``▁``, with byte-level BPE (RoBERTa, GPT-2) with ``Ġ``, and with WordPiece (BERT) it does *not*
begin with ``##``. Its text (marker removed) must be at least two letters, all of the
language's Unicode script (``unicodedata.name`` starts with the script's name, e.g. ``GREEK``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SENTENCEPIECE_MARK = "\u2581"  # ▁
BYTE_BPE_MARK = "\u0120"  # Ġ
WORDPIECE_CONTINUATION = "##"
MIN_WORD_LETTERS = 2
_GROUP_WORD_SPLIT = re.compile(r"[\s\-'’]+")

# drop reasons written to predictions.csv (empty when the completion is kept)
NOT_WORD_START = "not_word_start"
NOT_SCRIPT = "not_in_script"
GROUP_WORD = "group_word"


@dataclass(frozen=True, eq=False)  # hashed by identity, for the script-mask cache
class Vocabulary:
    """Per token id: the word it starts ("" if none) and whether it starts a word."""

    scheme: str  # "sentencepiece", "bpe" or "wordpiece"
    tokens: tuple[str, ...]
    words: tuple[str, ...]
    word_start: np.ndarray  # (vocab,) bool

    def script_mask(self, script: str) -> np.ndarray:
        """(vocab,) bool: starts a word of ``script`` letters only."""
        return _script_mask(self, script.upper())


def _detect_scheme(tokens: list[str]) -> str:
    counts = {
        "sentencepiece": sum(t.startswith(SENTENCEPIECE_MARK) for t in tokens),
        "bpe": sum(t.startswith(BYTE_BPE_MARK) for t in tokens),
        "wordpiece": sum(t.startswith(WORDPIECE_CONTINUATION) for t in tokens),
    }
    return max(counts, key=counts.get)


def vocabulary(tokenizer) -> Vocabulary:
    """Classify every token id of ``tokenizer`` (special tokens never start a word)."""
    size = len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    tokens = [t if isinstance(t, str) else "" for t in tokens]
    special = set(tokenizer.all_special_ids)
    scheme = _detect_scheme(tokens)
    words, starts = [], np.zeros(size, dtype=bool)
    for token_id, token in enumerate(tokens):
        word, start = "", False
        if token_id not in special and token:
            if scheme == "sentencepiece" and token.startswith(SENTENCEPIECE_MARK):
                word, start = token[len(SENTENCEPIECE_MARK):], True
            elif scheme == "bpe" and token.startswith(BYTE_BPE_MARK):
                word, start = token[len(BYTE_BPE_MARK):], True
            elif scheme == "wordpiece" and not token.startswith(WORDPIECE_CONTINUATION):
                word, start = token, True
        words.append(word)
        starts[token_id] = start and bool(word)
    return Vocabulary(scheme=scheme, tokens=tuple(tokens), words=tuple(words), word_start=starts)


def is_script_word(word: str, script: str) -> bool:
    """At least two letters, every one of them in ``script`` (``LATIN``, ``GREEK``, ...)."""
    if len(word) < MIN_WORD_LETTERS:
        return False
    script = script.upper()
    for char in word:
        if not char.isalpha():
            return False
        if not unicodedata.name(char, "").startswith(script + " "):
            return False
    return True


@lru_cache(maxsize=16)
def _script_mask(vocab: Vocabulary, script: str) -> np.ndarray:
    return np.array([start and is_script_word(w, script) for w, start in zip(vocab.words, vocab.word_start)])


def group_words(surface_forms: list[str]) -> set[str]:
    """Lower-cased words of a group's names ("personnes âgées" -> {"personnes", "âgées"})."""
    return {w.lower() for form in surface_forms for w in _GROUP_WORD_SPLIT.split(form) if w}
