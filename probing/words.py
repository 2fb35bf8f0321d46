"""Which vocabulary tokens are words of the probed language.

A completion at the mask is kept when, in this order:

1. it starts a word (``not_word_start`` otherwise): with SentencePiece (XLM-R) the token begins
   with ``▁``, with byte-level BPE (RoBERTa, GPT-2) with ``Ġ``, and with WordPiece (BERT) it does
   *not* begin with ``##``;
2. its text (marker removed) is at least two letters, all of the language's Unicode script
   (``unicodedata.name`` starts with the script's name, e.g. ``GREEK``; ``not_in_script``);
3. it is a word of the language (:class:`LanguageWords`): its lower-cased form is a key of the
   language's emotion lexicon, or its lower-cased form or its lemma (when the lemmatiser knows the
   form) is listed by the language's word-frequency list (``wordfreq``) at Zipf frequency
   ``>= min_zipf``, or one of its lemmas reaches a lexicon key (:class:`LexiconKeys`).
   Otherwise it is ``other_language`` when it is listed (Zipf >= 3) by the word list of another
   language, else ``not_a_word``. A word that only the frequency list or a lemma vouches for is
   ``other_language`` too when another language's list has it at least ``FOREIGN_MARGIN_ZIPF``
   more often (Spanish ``juga`` has the lemma ``jugar``, but is Indonesian);
4. it is not one of the group's own words (``group_word``), compared lower-cased and as lemmas.

Zipf frequency (Speer et al., wordfreq) is ``log10`` of a word's frequency per billion words:
``zipf = 9 + log10(f)``; 3 is once per million words, 1 the rarest listed.

Lemmas come from simplemma's dictionaries only (:func:`known_lemma`, :func:`known_lemmas`): a form
the lemmatiser does not know gets no lemma (simplemma's rule-based guesses would give English
"became" the Spanish lemma "beca"). Forms are looked up in their original case first, so German
nouns find theirs (``Ängste`` -> ``angst``).
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from pathlib import Path

import numpy as np

SENTENCEPIECE_MARK = "\u2581"  # ▁
BYTE_BPE_MARK = "\u0120"  # Ġ
WORDPIECE_CONTINUATION = "##"
MIN_WORD_LETTERS = 2
_GROUP_WORD_SPLIT = re.compile(r"[\s\-'’]+")

# drop reasons written to predictions.csv (empty when the completion is kept)
NOT_WORD_START = "not_word_start"
NOT_SCRIPT = "not_in_script"
NOT_A_WORD = "not_a_word"
OTHER_LANGUAGE = "other_language"
GROUP_WORD = "group_word"
DROP_REASONS = (NOT_WORD_START, NOT_SCRIPT, NOT_A_WORD, OTHER_LANGUAGE, GROUP_WORD)

DEFAULT_MIN_ZIPF = 2.5
# A word that only the frequency list or a lemma vouches for (its own form is no lexicon key) and
# that is at least 10 times as frequent in another language is taken as that language's
# (English "the" is in the French list at Zipf 5.4, but at 7.7 in English; French "cool", 4.9
# against 5.5, stays French; Spanish "juga", lemma "jugar", is Indonesian).
FOREIGN_MARGIN_ZIPF = 1.0
# wordfreq's "small" lists hold the words of Zipf >= 3 of every language it covers; a non-word
# of the probed language listed there is attributed to the language where it is most frequent.
OTHER_LANGUAGE_LISTS = "small"


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

    def word_keys(self) -> frozenset[str]:
        """The case-folded words that tokens start (what word lists are asked about)."""
        return _word_keys(self)


def _detect_scheme(tokens: list[str]) -> str:
    # one pass over the vocabulary: its first character (▁ or Ġ), or "##", tells the scheme
    firsts = Counter(t[:1] for t in tokens)
    counts = {"sentencepiece": firsts[SENTENCEPIECE_MARK], "bpe": firsts[BYTE_BPE_MARK],
              "wordpiece": sum(t.startswith(WORDPIECE_CONTINUATION) for t in tokens if t[:1] == "#")}
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


@lru_cache(maxsize=4)
def _word_keys(vocab: Vocabulary) -> frozenset[str]:
    return frozenset(w.casefold() for w, start in zip(vocab.words, vocab.word_start) if start)


@lru_cache(maxsize=16)
def _script_mask(vocab: Vocabulary, script: str) -> np.ndarray:
    # Each distinct character is classified once; a word then needs one C-level subset test.
    characters = set("".join(vocab.words))
    letters = frozenset(c for c in characters if is_script_word(c * MIN_WORD_LETTERS, script))
    return np.array([start and len(w) >= MIN_WORD_LETTERS and letters.issuperset(w)
                     for w, start in zip(vocab.words, vocab.word_start)], dtype=bool)


def group_words(surface_forms: list[str]) -> set[str]:
    """Lower-cased words of a group's names ("personnes âgées" -> {"personnes", "âgées"})."""
    return {w.lower() for w in _group_tokens(surface_forms)}


def _group_tokens(surface_forms: list[str]) -> list[str]:
    return [w for form in surface_forms for w in _GROUP_WORD_SPLIT.split(form) if w]


def group_word_keys(surface_forms: list[str], lemmatizer: str) -> frozenset[str]:
    """Lower-cased words of a group's names and their lemmas (lemmatised in their original case).

    >>> sorted(group_word_keys(["Söhne"], "de"))
    ['sohn', 'söhne']
    """
    lemmas = {known_lemma(w, lemmatizer) for w in _group_tokens(surface_forms)}
    return frozenset(group_words(surface_forms) | (lemmas - {""}))


LEMMA_CACHE_ENV = "STEREOPROBE_LEMMA_CACHE"  # folder of the lemma dictionaries' tries


def lemma_cache_dir() -> Path:
    """Where simplemma's dictionaries are kept as MARISA tries, per simplemma version.

    ``$STEREOPROBE_LEMMA_CACHE`` if set, else simplemma's own cache folder
    (``~/.cache/simplemma/marisa_trie/<version>`` on Linux).
    """
    from platformdirs import user_cache_dir
    from simplemma.__metadata__ import __version__

    root = os.environ.get(LEMMA_CACHE_ENV)
    return Path(root) / __version__ if root else Path(user_cache_dir("simplemma")) / "marisa_trie" / __version__


@lru_cache(maxsize=1)
def _dictionary_lookup():
    """simplemma's dictionary-only strategy (no rules) over its dictionaries stored as tries.

    Why tries: decoding a shipped dictionary takes 0.2-1.6 s per language (German: 1.1 M forms) at
    every run, and holds ~60 MB per language; a trie is built once per simplemma version (the same
    decode plus ~1-3 s), then opened in milliseconds, at ~3 MB, with the same lemmas.
    """
    from simplemma.strategies import DictionaryLookupStrategy

    return DictionaryLookupStrategy(_lemma_dictionaries())


@lru_cache(maxsize=1)
def _lemma_dictionaries():
    """simplemma's form -> lemma dictionaries, one trie per language (see :func:`_dictionary_lookup`)."""
    return _atomic_trie_factory()(cache_max_size=8, disk_cache_dir=str(lemma_cache_dir()))


def _atomic_trie_factory():
    from simplemma.strategies.dictionaries.trie_dictionary_factory import TrieDictionaryFactory

    class AtomicTrieDictionaryFactory(TrieDictionaryFactory):
        """Writes each trie to a temporary file, then renames it: two runs that build the same
        language at once, or a run killed while writing, never leave a half-written trie."""

        def _write_trie_to_disk(self, lang, trie) -> None:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{lang}.", suffix=".tmp", dir=self._cache_dir)
            os.close(handle)
            try:
                trie.save(temporary)
                os.replace(temporary, self._cache_dir / f"{lang}.dic")
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise

    return AtomicTrieDictionaryFactory


@lru_cache(maxsize=500_000)
def known_lemma(word: str, lemmatizer: str) -> str:
    """Lower-cased lemma of ``word`` from simplemma's dictionary, or ``""`` if it is unknown.

    The original case is looked up first (German nouns are capitalised in the dictionary), then
    the other case. No rule-based guess is made for a form the dictionary lacks.

    >>> known_lemma("Ängste", "de"), known_lemma("belles", "fr"), known_lemma("hospitali", "fr")
    ('angst', 'beau', '')
    """
    lemma = _dictionary_lookup().get_lemma(word, lemmatizer)
    return lemma.lower() if lemma else ""


def forget_lemmas() -> None:
    """Empty the caches of :func:`known_lemma` and :func:`known_lemmas` (a run calls this between
    languages: one language's forms are no use to the next, and the caches hold up to 10^6 of them)."""
    known_lemma.cache_clear()
    known_lemmas.cache_clear()


def _case_variants(word: str) -> tuple[str, ...]:
    """``word`` as it is, lower-cased and capitalised: the spellings simplemma's dictionary may list."""
    return tuple(dict.fromkeys((word, word.lower(), word[:1].upper() + word[1:].lower())))


@lru_cache(maxsize=500_000)
def known_lemmas(word: str, lemmatizer: str) -> tuple[str, ...]:
    """Every lemma simplemma's dictionary gives ``word``, lower-cased, :func:`known_lemma`'s first.

    The dictionary maps each spelling to one lemma, so "every lemma" is, in this order: the lemma
    of each case variant of the form (as it is, lower-cased, capitalised: German ``faule`` ->
    ``faulen``, a verb, but ``Faule`` -> ``fauler``), then the lemma of each of those lemmas in
    their case variants (one more dictionary step, like simplemma's greedy strategy without its
    length limits: ``Faule`` -> ``fauler`` -> ``faul``, Greek ``καλά`` -> ``καλό`` -> ``καλός``).
    A form the dictionary does not list gets none: no rule-based guess, no affix splitting.

    >>> known_lemmas("faule", "de"), known_lemmas("hospitali", "fr")
    (('faulen', 'fauler', 'faul'), ())
    """
    dictionary = _lemma_dictionaries().get_dictionary(lemmatizer)
    first = known_lemma(word, lemmatizer)
    direct = [first] if first else []
    for variant in _case_variants(word):
        lemma = dictionary.get(variant)
        if lemma:
            direct.append(lemma.lower())
    chained = [lemma.lower() for found in direct for variant in _case_variants(found)
               if (lemma := dictionary.get(variant))]
    return tuple(dict.fromkeys(direct + chained))


def _shares_stem(key: str, lemma: str) -> bool:
    """Whether ``key`` spells ``lemma`` but for its last two letters, and at least three letters of it.

    True for inflected keys (Spanish ``bonita`` of ``bonito``, Greek ``αστείο`` of ``αστείος``,
    Spanish ``destrozado`` of ``destrozar``); False for a key that is only a homograph of another
    word's form (French ``aura``, a noun, is also a future of ``avoir``: ``ont`` must not reach it;
    Italian ``data``, a date, is a participle of ``dare``: three letters are not enough).
    """
    return _shared_beginning(key, lemma) >= max(3, len(lemma) - 2)


@dataclass(frozen=True, eq=False)
class LexiconKeys:
    """The keys of one language's emotion lexicon, indexed by their dictionary lemmas too, so that a
    word and a key meet at a lemma even when the key is itself an inflected form.

    :meth:`entry_of` is the one matching rule, used by :meth:`probing.lexicon.Lexicon.lookup` and by
    :meth:`LanguageWords.classify` (through :meth:`vouches_for`).
    """

    lemmatizer: str
    keys: frozenset[str]
    by_lemma: dict[str, tuple[str, ...]]  # a key's lemma (not itself a key) -> the keys that have it
    # (word, lemma) -> (key, own form): each vocabulary word is matched once per run
    _matches: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, keys, lemmatizer: str) -> "LexiconKeys":
        """Index ``keys`` (lower-cased lexicon words) by every :func:`known_lemmas` of theirs that
        is not a key itself and shares the key's stem (:func:`_shares_stem`)."""
        keys = frozenset(keys)
        by_lemma: dict[str, list[str]] = {}
        for key in sorted(keys):
            for lemma in known_lemmas(key, lemmatizer):
                if lemma not in keys and _shares_stem(key, lemma):
                    by_lemma.setdefault(lemma, []).append(key)
        return cls(lemmatizer=lemmatizer, keys=keys, by_lemma={l: tuple(k) for l, k in by_lemma.items()})

    def forget(self) -> None:
        """Drop the remembered matches (a run calls this when it is done with a language's words:
        they would otherwise stay for the run's length, ~1 KB each)."""
        self._matches.clear()

    def entry_of(self, word: str, lemma: str | None = None) -> str | None:
        """The lexicon key ``word`` matches, or None; ``lemma`` (e.g. the predictions table's) is
        tried before the word's own :func:`known_lemmas`.

        In this order: the lower-cased word is a key; one of its lemmas is a key (Spanish
        ``hermosas`` -> ``hermoso``); the word or one of its lemmas is a lemma of keys that the
        word spells but for their last two letters (``bonitos`` -> ``bonito``, the lemma of the
        key ``bonita``; but ``combaten``, a form of ``combatir``, does not reach the key
        ``combatido``, whose lemma is ``combatir`` too). When several keys share that lemma, the
        key that shares the longest beginning with the word is taken, then the shortest, then the
        first alphabetically (Spanish ``destrozadas`` -> ``destrozada``, not ``destrozado``): one
        key, so that the dimensions are those of a real entry and :meth:`entry_of` names it.
        """
        return self._match(word, lemma)[0]

    def vouches_for(self, word: str) -> tuple[bool, bool]:
        """``(matched, own form)``: whether ``word`` reaches a key at all, and whether its own
        lower-cased form is that key (not only one of its lemmas)."""
        key, own_form = self._match(word, None)
        return key is not None, own_form

    def _match(self, word: str, lemma: str | None) -> tuple[str | None, bool]:
        if lemma == known_lemma(word, self.lemmatizer):
            lemma = None  # already the first of the word's own lemmas: one cache entry, one search
        cached = self._matches.get((word, lemma))
        if cached is None:
            cached = self._matches[(word, lemma)] = self._find(word, lemma)
        return cached

    def _find(self, word: str, lemma: str | None) -> tuple[str | None, bool]:
        folded = word.lower()
        if folded in self.keys:
            return folded, True
        lemmas = tuple(dict.fromkeys(((lemma,) if lemma else ()) + known_lemmas(word, self.lemmatizer)))
        for candidate in lemmas:
            if candidate in self.keys:
                return candidate, False
        for candidate in (folded, *lemmas):
            # the word must spell the key too but for the key's last two letters: an inflection of
            # the same form (bonitos, bonita), not any form of a verb whose participle is a key
            # (Spanish combaten -> combatir, the lemma of the key combatido)
            keys = [key for key in self.by_lemma.get(candidate, ()) if _shares_stem(folded, key)]
            if keys:
                return min(keys, key=lambda key: (-_shared_beginning(key, folded), len(key), key)), False
        return None, False


def _shared_beginning(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def _zipf_lists(language: str, wordlist: str) -> list[list[str]] | None:
    """wordfreq's list of ``language`` as buckets: bucket ``i`` holds the words of Zipf ``9 - i/100``.

    Read from wordfreq's data file directly: its ``get_frequency_dict`` caches every list it reads
    for the life of the process.
    """
    import wordfreq

    path = wordfreq.available_languages(wordlist).get(language)
    return None if path is None else wordfreq.read_cBpack(path)


def _frequent_words(language: str, min_zipf: float) -> dict[str, float] | None:
    """Word -> Zipf frequency of the words of ``language``'s best wordfreq list at ``>= min_zipf``."""
    buckets = _zipf_lists(language, "best")
    if buckets is None:
        return None
    last = int(np.floor((9 - min_zipf) * 100 + 1e-9))
    return {w: 9 - i / 100 for i, bucket in enumerate(buckets[:last + 1]) for w in bucket}


def other_language_index(candidates: frozenset[str] | None = None) -> dict[str, tuple[str, float]]:
    """Word -> (the language where it is most frequent, its Zipf), over wordfreq's small lists.

    ``candidates`` (case-folded words, e.g. :meth:`Vocabulary.word_keys`) restricts the index to
    the words that can be asked about, which keeps it ~10x smaller and faster to build; None
    indexes every word (cached).
    """
    if candidates is None:
        return _full_other_language_index()
    return _build_other_language_index(candidates)


@lru_cache(maxsize=1)
def _full_other_language_index() -> dict[str, tuple[str, float]]:
    return _build_other_language_index(None)


def _build_other_language_index(candidates: frozenset[str] | None) -> dict[str, tuple[str, float]]:
    import wordfreq

    lists = {language: _zipf_lists(language, OTHER_LANGUAGE_LISTS) or []
             for language in sorted(wordfreq.available_languages(OTHER_LANGUAGE_LISTS))}
    best: dict[str, tuple[str, float]] = {}
    # Most frequent buckets first, so the first language to claim a word is where it is most
    # frequent; setdefault over map() keeps the insertions in C.
    for bucket_index in range(max(map(len, lists.values()), default=0)):
        for language, buckets in lists.items():
            if bucket_index < len(buckets) and buckets[bucket_index]:
                words = buckets[bucket_index] if candidates is None else candidates.intersection(buckets[bucket_index])
                deque(map(best.setdefault, words, repeat((language, 9 - bucket_index / 100))), maxlen=0)
    return best


def wordfreq_key(word: str, language: str) -> str:
    """``word`` normalised as wordfreq stores it (case folding, e.g. German ß -> ss, Greek ς -> σ)."""
    from wordfreq.preprocess import preprocess_text

    return preprocess_text(word, language)


@dataclass(frozen=True, eq=False)
class LanguageWords:
    """The words of one language: a word-frequency list cut at ``min_zipf``, plus a lexicon.

    ``frequent`` is None when wordfreq has no list for the language; then only the lexicon's keys
    (and the words that reach them through a lemma) count as words.
    """

    language: str
    lemmatizer: str
    min_zipf: float
    frequent: dict[str, float] | None
    lexicon: LexiconKeys  # or the lexicon's keys, indexed on construction
    other_languages: dict[str, tuple[str, float]]  # see other_language_index

    def __post_init__(self):
        if not isinstance(self.lexicon, LexiconKeys):  # the keys alone: index them here
            object.__setattr__(self, "lexicon", LexiconKeys.build(self.lexicon, self.lemmatizer))

    @property
    def lexicon_words(self) -> frozenset[str]:
        """The lexicon's keys."""
        return self.lexicon.keys

    def classify(self, word: str) -> tuple[str, str]:
        """``(lemma, reason)`` for a word that passed the word-start and script filters.

        ``reason`` is ``""`` (a word of the language), ``other_language`` or ``not_a_word``. A word
        whose own lower-cased form is a lexicon key is a word of the language; one that reaches
        the lexicon only through a lemma passes the other-language test that frequency-list words
        pass (French ``beste``, lemma ``bête``, is German; German ``les``, lemma ``lesen``, French).
        """
        lemma = known_lemma(word, self.lemmatizer)
        in_lexicon, own_form = self.lexicon.vouches_for(word)
        if own_form:
            return lemma, ""
        forms = list(dict.fromkeys(f for f in (word.lower(), lemma) if f))
        elsewhere, zipf_elsewhere = self.other_languages.get(wordfreq_key(word, self.language), (None, 0.0))
        foreign = elsewhere not in (None, self.language)
        listed = [z for z in (self._zipf(form) for form in forms) if z is not None]
        if not listed:
            if foreign:
                return lemma, OTHER_LANGUAGE
            return lemma, ("" if in_lexicon else NOT_A_WORD)  # a lemma in the lexicon vouches for it
        return lemma, (OTHER_LANGUAGE if foreign and zipf_elsewhere - max(listed) >= FOREIGN_MARGIN_ZIPF else "")

    def _zipf(self, form: str) -> float | None:
        if self.frequent is None:
            return None
        return self.frequent.get(wordfreq_key(form, self.language))


def has_word_list(language: str) -> bool:
    """Whether wordfreq has a word list for ``language``."""
    import wordfreq

    return language in wordfreq.available_languages("best")


def language_words(language: str, lemmatizer: str, lexicon_words, *, min_zipf: float = DEFAULT_MIN_ZIPF,
                   other_languages: dict[str, tuple[str, float]] | None = None) -> LanguageWords:
    """:class:`LanguageWords` of ``language`` (an ISO 639-1 code, as wordfreq names its lists).

    ``lexicon_words`` is the lexicon's :class:`LexiconKeys` (``Lexicon.keys_index``, sharing its
    matching) or its keys. It holds the language's word list (~10-50 MB): a run builds one
    language's at a time. ``other_languages`` is an :func:`other_language_index` (default: the full one).
    """
    return LanguageWords(language=language, lemmatizer=lemmatizer, min_zipf=float(min_zipf),
                         frequent=_frequent_words(language, float(min_zipf)),
                         lexicon=lexicon_words if isinstance(lexicon_words, LexiconKeys) else frozenset(lexicon_words),
                         other_languages=other_language_index() if other_languages is None else other_languages)
