"""Candidate sets for whole-word completions: the words a mask may be filled with, per language.

In whole-word mode a completion is not one token at one ``<mask>`` but a word of 1..``max_pieces``
tokens, scored by the chain rule over its pieces (:mod:`probing.engine`). The words ranked are a
fixed, inspectable set per language, built here from:

* ``lexicon``: the emotion lexicon's entries (lower-cased keys of :class:`probing.lexicon.Lexicon`);
* ``lexicon_form``: every form that simplemma's dictionary of the language maps to an entry, or to
  the lemma of an entry (``méchantes`` -> ``méchant``, ``Ängste`` -> ``Angst``): the dictionary's
  (form -> lemma) pairs are read once, from the same tries :func:`probing.words.known_lemma`
  opens, and inverted for the lexicon's lemmas only;
* ``frequent``: the ``frequent_words`` most frequent words of wordfreq's list of the language
  (default :data:`DEFAULT_FREQUENT_WORDS`), so that completions the lexicon does not cover (most
  words are not emotional) still compete for the probability mass, as single tokens do today;
* ``user``: instead of the three above, a UTF-8 list of the user's own (:func:`read_candidate_list`).

Filters, counted in :attr:`CandidateSet.drop_counts` (the run's ``filters.csv``), in this order:

1. ``duplicate``: a word already proposed, by an earlier source (the order is lexicon >
   lexicon_form > frequent: a word that is both a lexicon entry and frequent is a ``lexicon`` word);
2. ``not_in_script``: not two or more letters of the language's script
   (:func:`probing.words.is_script_word`; drops forms with hyphens, apostrophes, spaces, digits);
3. ``other_language`` / ``not_a_word``: :meth:`probing.words.LanguageWords.classify` (not applied to
   a user's list: the user chose those words);
4. ``unknown_piece``: the tokenizer has no piece for a character (``<unk>``), so the model cannot
   write the word;
5. ``too_many_pieces``: more than ``max_pieces`` tokens (never an error);
6. ``duplicate``: the same pieces as an earlier word (the tokenizer's normalisation can map two
   spellings to one sequence): one candidate per token sequence.

The group's own words are filtered per group by the caller when ranking, not here.

Case: wordfreq's lists and the lexicons are lower-cased, simplemma's dictionaries keep case (German
nouns are capitalised). A lower-cased word is produced as its dictionary spelling: lower-case if
the dictionary has it so, capitalised if the dictionary has only that (German ``wut`` -> ``Wut``),
both when both are attested (German ``arm`` and ``Arm``, ``angst`` and ``Angst``), and lower-case
when the dictionary has neither. A dictionary form keeps its
own case. Case variants are distinct candidates (different pieces).

Pieces: the token ids of the word as it is tokenised after a space inside a sentence, with no
special tokens (``" " + word``). With XLM-R, ``"... so <mask>?"`` puts ``<mask>`` where the word's
first piece (``▁mé``) goes, since ``<mask>`` absorbs the space before it;
``tests/test_candidates.py`` checks this on every language.

Why :data:`MAX_PIECES` is 5: with the XLM-R vocabulary, 1-5 pieces cover 99.2-100 % of the
default candidates of seven languages (en 99.97 %, fr 99.9 %, es 99.9 %, de 99.2 %, it 99.99 %,
pt 99.7 %, nl 99.6 %), and each further piece is one more mask position, i.e. one more pass of
the chain rule for every sentence. Greek words are cut most finely: 1-5 pieces cover 93.5 % of its
candidates, 6 would cover 98.5 %. The words dropped are counted (``too_many_pieces``), and
``max_pieces`` can be raised.

Why :data:`DEFAULT_FREQUENT_WORDS` is 20,000: the 20,000th word of the eight languages' lists has
a Zipf frequency of 3.3-3.5 (two to three times per million words), well above the word filter's
default ``min_zipf`` of 2.5, so that the frequent words are words the single-token mode keeps too.
After the filters and the lexicon's own words they add 11,700-16,800 words per language, and a
language's default set has 31,000 (en) to 72,000 (pt) words, built in 1-4 s.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.words import (MIN_WORD_LETTERS, NOT_A_WORD, NOT_SCRIPT, OTHER_LANGUAGE, _dictionary_lookup, _zipf_lists,
                           is_script_word, known_lemma)

MAX_PIECES = 5
DEFAULT_FREQUENT_WORDS = 20_000

LEXICON, LEXICON_FORM, FREQUENT, USER = "lexicon", "lexicon_form", "frequent", "user"
SOURCES = (LEXICON, LEXICON_FORM, FREQUENT, USER)  # the order of precedence among duplicates

DUPLICATE = "duplicate"
UNKNOWN_PIECE = "unknown_piece"
TOO_MANY_PIECES = "too_many_pieces"
DROP_REASONS = (DUPLICATE, NOT_SCRIPT, OTHER_LANGUAGE, NOT_A_WORD, UNKNOWN_PIECE, TOO_MANY_PIECES)

# A user list is refused when more than this share of its words are not of the language's script.
MAX_OFF_SCRIPT_SHARE = 0.5
TOKENIZE_CHUNK = 1_000


@dataclass
class CandidateSet:
    """The candidate words of one language, with their pieces (token ids).

    ``piece_strings`` (per word, its tokens space-joined, e.g. ``"▁mé ch antes"``) is what
    :meth:`to_frame` shows.
    """

    language: str
    words: list[str]
    pieces: list[tuple[int, ...]]
    sources: list[str]
    drop_counts: dict[str, int]
    description: str
    sha256: str
    max_pieces: int
    piece_strings: list[str] = field(default_factory=list, repr=False)
    _by_count: dict[int, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.words)

    def n_pieces(self) -> np.ndarray:
        """(n_words,) int: the number of pieces of each word."""
        return np.fromiter((len(p) for p in self.pieces), dtype=np.int64, count=len(self.pieces))

    def by_piece_count(self) -> dict[int, np.ndarray]:
        """``n -> indices`` (ascending, int64) of the words of ``n`` pieces, for every ``n`` that
        occurs, in ascending ``n``; computed once, then cached (the set is not to be modified)."""
        if self._by_count is None:
            counts = self.n_pieces()
            self._by_count = {int(n): np.flatnonzero(counts == n) for n in np.unique(counts)}
        return self._by_count

    def piece_array(self, n: int) -> np.ndarray:
        """(n_words_of_n_pieces, n) int64: the pieces of the words of ``n`` pieces, in the order of
        ``by_piece_count()[n]``."""
        index = self.by_piece_count().get(n, np.zeros(0, dtype=np.int64))
        return np.array([self.pieces[i] for i in index], dtype=np.int64).reshape(len(index), n)

    def source_counts(self) -> dict[str, int]:
        """Words kept per source (for the manifest)."""
        return {s: self.sources.count(s) for s in SOURCES if s in self.sources}

    def summary(self) -> dict:
        """Size, sources, drops and piece counts: what the run's manifest records per language."""
        return {"description": self.description, "n_words": len(self), "sources": self.source_counts(),
                "n_pieces": {str(n): len(i) for n, i in self.by_piece_count().items()},
                "dropped": dict(self.drop_counts), "max_pieces": self.max_pieces, "sha256": self.sha256}

    def pack(self) -> "PackedCandidateSet":
        """The set as Arrow columns (~40 bytes a word instead of ~0.9 KB of Python objects)."""
        import pyarrow as pa

        table = pa.table({"word": pa.array(self.words, pa.string()),
                          "source": pa.array(self.sources, pa.string()).dictionary_encode(),
                          "n_pieces": pa.array(self.n_pieces(), pa.int8()),
                          "pieces": pa.array(self.pieces, pa.list_(pa.int32())),
                          "piece_strings": pa.array(self.piece_strings, pa.string())})
        return PackedCandidateSet(self.language, table, dict(self.drop_counts), self.description, self.sha256,
                                  self.max_pieces, self.source_counts(),
                                  {str(n): len(i) for n, i in self.by_piece_count().items()})

    def to_frame(self):
        """One row per word: language, word, source, n_pieces, pieces (space-joined token strings)."""
        import pandas as pd

        return pd.DataFrame({"language": self.language, "word": self.words, "source": self.sources,
                             "n_pieces": self.n_pieces(), "pieces": self.piece_strings},
                            columns=["language", "word", "source", "n_pieces", "pieces"])


@dataclass(frozen=True)
class PackedCandidateSet:
    """A :class:`CandidateSet` held compactly, as Arrow columns: what a run keeps of every probed
    language's set between its uses (the Python lists of eight sets would hold ~0.4 GB);
    :meth:`unpack` gives the set back, one language at a time."""

    language: str
    table: object  # pyarrow.Table: word, source, n_pieces, pieces (list<int32>), piece_strings
    drop_counts: dict[str, int]
    description: str
    sha256: str
    max_pieces: int
    by_source: dict[str, int]
    by_pieces: dict[str, int]

    def __len__(self) -> int:
        return self.table.num_rows

    def unpack(self) -> CandidateSet:
        columns = self.table.to_pydict()
        return CandidateSet(self.language, columns["word"], [tuple(p) for p in columns["pieces"]], columns["source"],
                            dict(self.drop_counts), self.description, self.sha256, self.max_pieces,
                            columns["piece_strings"])

    def to_frame(self):
        """As :meth:`CandidateSet.to_frame`."""
        frame = self.table.select(["word", "source", "n_pieces", "piece_strings"]).to_pandas()
        frame = frame.rename(columns={"piece_strings": "pieces"}).astype({"source": str, "n_pieces": "int64"})
        frame.insert(0, "language", self.language)
        return frame


class _ScriptCheck:
    """:func:`probing.words.is_script_word` with each distinct character classified once (a word
    then costs one C-level set test: ~5x faster over 10^5 words)."""

    def __init__(self, script: str):
        self.script = script
        self.letters: set[str] = set()
        self.seen: set[str] = set()

    def __call__(self, word: str) -> bool:
        new = set(word) - self.seen
        if new:
            self.letters.update(c for c in new if is_script_word(c * MIN_WORD_LETTERS, self.script))
            self.seen |= new
        return len(word) >= MIN_WORD_LETTERS and self.letters.issuperset(word)


def _checksum(words: list[str], pieces: list[tuple[int, ...]]) -> str:
    digest = hashlib.sha256()
    for word, ids in zip(words, pieces):
        digest.update(f"{word}\t{' '.join(map(str, ids))}\n".encode())
    return digest.hexdigest()


def _dictionary(lemmatizer: str):
    """simplemma's dictionary of ``lemmatizer`` (form -> lemma), as :func:`known_lemma` opens it."""
    return _dictionary_lookup()._dictionary_factory.get_dictionary(lemmatizer)


def _spellings(word: str) -> tuple[str, ...]:
    """``word`` lower-case, capitalised and upper-case: how a dictionary may spell a lemma."""
    return tuple(dict.fromkeys((word, word[:1].upper() + word[1:], word.upper())))


def lexicon_forms(lemmatizer: str, keys) -> list[str]:
    """The dictionary's forms whose lemma is one of ``keys`` or the lemma of one, in the dictionary's
    spelling and order (lemmas compared lower-case, capitalised or upper-case: German nouns'
    lemmas are capitalised, the lexicons' keys lower-case).

    One pass over the language's dictionary (0.1-0.7 s; German has 1.1 M forms), comparing the
    trie's undecoded values; nothing but the kept forms stays in memory.
    """
    targets = set(keys) | {lemma for lemma in (known_lemma(k, lemmatizer) for k in keys) if lemma}
    spellings = {s for t in targets for s in _spellings(t)}
    try:
        dictionary = _dictionary(lemmatizer)
    except ValueError:  # simplemma has no dictionary for this language
        return []
    trie = getattr(dictionary, "_trie", None)
    if trie is not None:  # a MARISA trie (as probing.words opens them): values are UTF-8 bytes
        encoded = {s.encode() for s in spellings}
        return [form for form, lemma in trie.iteritems() if lemma in encoded]
    return [form for form in dictionary if dictionary[form] in spellings]


def most_frequent_words(language: str, n: int) -> list[str]:
    """The ``n`` most frequent words of wordfreq's best list of ``language`` (lower-cased, most
    frequent first; words of equal frequency in the list's order); empty if wordfreq has none."""
    buckets = _zipf_lists(language, "best") or []
    out: list[str] = []
    for bucket in buckets:
        if len(out) >= n:
            break
        out.extend(bucket[:n - len(out)])
    return out


def attested_spellings(word: str, dictionary) -> list[str]:
    """How the model would write lower-cased ``word``: see the module's "Case"."""
    if dictionary is None:
        return [word]
    capitalised = word[:1].upper() + word[1:]
    spellings = [w for w in dict.fromkeys((word, capitalised)) if w in dictionary]
    return spellings or [word]


def _read_error(path: Path, what: str) -> UserError:
    return UserError(f"candidate list {path} {what}; pass a UTF-8 text file with one word per line "
                     f"(# starts a comment)")


def read_candidate_list(path, script: str) -> list[str]:
    """The words of a user's candidate list: UTF-8, one word per line, blank lines and lines
    starting with ``#`` ignored, surrounding spaces stripped, order kept.

    A :class:`UserError` (one line naming the fix) when the file is missing, a folder, unreadable,
    not UTF-8, without words, or mostly (more than half its words) not of ``script`` (a list of
    another language). Single words outside the script are left to :func:`build_candidate_set`,
    which drops and counts them.
    """
    path = Path(path)
    if not path.exists():
        raise _read_error(path, "does not exist")
    if path.is_dir():
        raise _read_error(path, "is a folder")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise _read_error(path, f"cannot be read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise UserError(f"candidate list {path} is not UTF-8 text (line {line}, byte {error.start}); save it "
                        f"as UTF-8, one word per line") from None
    words = [line.strip() for line in text.splitlines()]
    words = [unicodedata.normalize("NFC", w) for w in words if w and not w.startswith("#")]
    if not words:
        raise _read_error(path, "has no words")
    off_script = [w for w in words if not is_script_word(w, script)]
    if len(off_script) > MAX_OFF_SCRIPT_SHARE * len(words):
        raise UserError(f"candidate list {path}: {len(off_script)} of its {len(words)} words are not words of "
                        f"{script.title()} letters (e.g. {off_script[0]!r}); pass a list of words of this "
                        f"language, one per line")
    return words


def tokenize_words(tokenizer, words: list[str]) -> list[list[int]]:
    """Token ids of each word after a space in a sentence (no special tokens).

    A fast tokenizer encodes the words as texts of :data:`TOKENIZE_CHUNK` space-separated words,
    each token going to the word its character offsets fall in (one call per 1,000 words instead
    of one per word: ~10x faster). Only for words of letters, which every tokenizer's
    pre-tokenizer cuts at the spaces and nowhere else; a slow tokenizer encodes word by word.
    Truncation and padding saved with the tokenizer (a fine-tuned model's ``max_length``) are
    off while encoding (and restored after): they would cut a chunk after its first words.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in words]
    truncation, padding = backend.truncation, backend.padding
    backend.no_truncation()
    backend.no_padding()
    try:
        return _tokenize_chunks(backend, words)
    finally:
        if truncation is not None:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**{k: v for k, v in padding.items() if k != "length" or v is not None})


def _tokenize_chunks(backend, words: list[str]) -> list[list[int]]:
    out: list[list[int]] = []
    texts, starts = [], []
    for at in range(0, len(words), TOKENIZE_CHUNK):
        chunk = words[at:at + TOKENIZE_CHUNK]
        positions, position = [], 0
        for word in chunk:
            positions.append(position + 1)  # after its space
            position += len(word) + 1
        texts.append("".join(" " + w for w in chunk))
        starts.append(positions)
    for encoding, positions in zip(backend.encode_batch(texts, add_special_tokens=False), starts):
        ids: list[list[int]] = [[] for _ in positions]
        for token_id, (_, end) in zip(encoding.ids, encoding.offsets):
            # by its end: a token may begin at the space before its word (SentencePiece's ▁, even
            # alone: "▁" "rectifieraient"), and it ends within its word
            ids[bisect.bisect_right(positions, end) - 1].append(token_id)
        out.extend(ids)
    return out


def propose(language: str, lemmatizer: str, lexicon, frequent_words: int = DEFAULT_FREQUENT_WORDS
            ) -> list[tuple[str, str]]:
    """``(word, source)`` of every word proposed before the filters, in the order of precedence
    (lexicon entries, their dictionary forms, the frequent words; see "Case" for the spellings)."""
    try:
        dictionary = _dictionary(lemmatizer)
    except ValueError:  # simplemma has no dictionary for this language
        dictionary = None
    keys = sorted(lexicon.entries)
    return ([(s, LEXICON) for k in keys for s in attested_spellings(k, dictionary)]
            + [(f, LEXICON_FORM) for f in lexicon_forms(lemmatizer, keys)]
            + [(s, FREQUENT) for w in most_frequent_words(language, frequent_words)
               for s in attested_spellings(w, dictionary)])


def proposed_keys(language: str, lemmatizer: str, lexicon, frequent_words: int = DEFAULT_FREQUENT_WORDS,
                  proposals: list[tuple[str, str]] | None = None) -> frozenset[str]:
    """The proposed words as wordfreq keys: what :func:`probing.words.other_language_index` needs
    to be asked about for a candidate set (most candidates are several tokens, so a
    :meth:`probing.words.Vocabulary.word_keys` index would miss them); ~5x smaller and faster than
    the full index."""
    from probing.words import wordfreq_key

    if proposals is None:
        proposals = propose(language, lemmatizer, lexicon, frequent_words)
    return frozenset(wordfreq_key(w, language) for w, _ in proposals)


def build_candidate_set(language: str, lemmatizer: str, script: str, lexicon, language_words, tokenizer, *,
                        max_pieces: int = MAX_PIECES, frequent_words: int = DEFAULT_FREQUENT_WORDS,
                        user_list: Path | None = None, proposals: list[tuple[str, str]] | None = None
                        ) -> CandidateSet:
    """The candidate set of ``language`` (see the module's docstring for sources and filters).

    ``lexicon`` is a :class:`probing.lexicon.Lexicon`, ``language_words`` the language's
    :class:`probing.words.LanguageWords` (unused, and may be None, with ``user_list``), ``tokenizer``
    a (fast) Hugging Face tokenizer. With ``user_list`` the set is that file's words only (source
    ``user``): they pass the script and piece filters but not the word-of-the-language one.
    ``proposals`` is :func:`propose`'s result when the caller has it already.
    """
    if max_pieces < 1:
        raise UserError(f"the most pieces a candidate may have must be at least 1, got {max_pieces}")
    if frequent_words < 0:
        raise UserError(f"the number of frequent words must be at least 0, got {frequent_words}")
    drops = {reason: 0 for reason in DROP_REASONS}
    if user_list is not None:
        proposals = [(w, USER) for w in read_candidate_list(user_list, script)]
        description = f"user list {user_list}"
    else:
        proposals = proposals if proposals is not None else propose(language, lemmatizer, lexicon, frequent_words)
        description = (f"{lexicon.source} {language} entries ({len(lexicon.entries):,}) and their {{forms:,}} "
                       f"dictionary forms + wordfreq top {frequent_words:,} ({{added:,}} more words)")

    seen: set[str] = set()
    in_script = _ScriptCheck(script)
    words, sources = [], []
    for word, source in proposals:
        if word in seen:
            drops[DUPLICATE] += 1
            continue
        seen.add(word)
        if not in_script(word):
            drops[NOT_SCRIPT] += 1
            continue
        if source != USER:
            reason = language_words.classify(word)[1]
            if reason:
                drops[reason] = drops.get(reason, 0) + 1
                continue
        words.append(word)
        sources.append(source)
    del proposals, seen

    unk = tokenizer.unk_token_id
    kept_words, kept_sources, kept_pieces = [], [], []
    seen_pieces: set[tuple[int, ...]] = set()
    for word, source, ids in zip(words, sources, tokenize_words(tokenizer, words)):
        ids = tuple(ids)
        if unk is not None and unk in ids:
            drops[UNKNOWN_PIECE] += 1
        elif len(ids) > max_pieces:
            drops[TOO_MANY_PIECES] += 1
        elif not ids:  # nothing to write it with
            drops[UNKNOWN_PIECE] += 1
        elif ids in seen_pieces:
            drops[DUPLICATE] += 1
        else:
            seen_pieces.add(ids)
            kept_words.append(word)
            kept_sources.append(source)
            kept_pieces.append(ids)
    if user_list is None:
        description = description.format(forms=kept_sources.count(LEXICON_FORM),
                                         added=kept_sources.count(FREQUENT))
    tokens = tokenizer.convert_ids_to_tokens([i for ids in kept_pieces for i in ids])
    strings, at = [], 0
    for ids in kept_pieces:
        strings.append(" ".join(tokens[at:at + len(ids)]))
        at += len(ids)
    return CandidateSet(language=language, words=kept_words, pieces=kept_pieces, sources=kept_sources,
                        drop_counts={r: n for r, n in drops.items() if n}, description=description,
                        sha256=_checksum(kept_words, kept_pieces), max_pieces=max_pieces, piece_strings=strings)


def language_candidate_set(language: str, prompts, lexicon, tokenizer, *, min_zipf: float, max_pieces: int = MAX_PIECES,
                           frequent_words: int = DEFAULT_FREQUENT_WORDS, user_list: Path | None = None) -> CandidateSet:
    """The candidate set of one probed language (``prompts`` its :class:`probing.prompts.LanguagePrompts`),
    with the word filters ``probing.run`` applies: the words are proposed once, and the
    other-language index is built over them (most are several tokens, so an index over the
    vocabulary's words would miss them). A user's list is not checked as words of the language."""
    from probing import words as vocab_words

    words = proposals = None
    if user_list is None:
        proposals = propose(language, prompts.lemmatizer, lexicon, frequent_words)
        keys = proposed_keys(language, prompts.lemmatizer, lexicon, proposals=proposals)
        words = vocab_words.language_words(language, prompts.lemmatizer, lexicon.keys_index, min_zipf=min_zipf,
                                           other_languages=vocab_words.other_language_index(keys))
    return build_candidate_set(language, prompts.lemmatizer, prompts.script, lexicon, words, tokenizer,
                               max_pieces=max_pieces, frequent_words=frequent_words, user_list=user_list,
                               proposals=proposals)


EXAMPLES = """examples:
  python -m probing.candidates --language fr > fr_candidates.tsv
  python -m probing.candidates --language de --max_pieces 3 --frequent_words 5000
  python -m probing.candidates --language es --candidates my_words.txt
"""


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    from probing import models, prompts as prompt_files, words as vocab_words

    parser = OneLineArgumentParser(
        prog="python -m probing.candidates",
        description="Print a language's whole-word candidate set as TSV (word, source, n_pieces, pieces) on "
                    "stdout and a one-line summary on stderr; writes no files.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--language", required=True, metavar="LANG", help="a language of the prompt files (en, fr, ...)")
    add("--model", default=models.TINY_MODEL_NAME, metavar="PATH_OR_ID",
        help=f"whose tokenizer cuts the words into pieces: a model folder, hub id, or '{models.TINY_MODEL_NAME}' "
             f"(default; it has xlm-roberta-base's tokenizer)")
    add("--candidates", default=None, metavar="FILE", help="your own list: UTF-8, one word per line")
    add("--max_pieces", type=int, default=MAX_PIECES, help=f"most pieces a candidate may have (default: {MAX_PIECES})")
    add("--frequent_words", type=int, default=DEFAULT_FREQUENT_WORDS,
        help=f"how many of wordfreq's most frequent words to add (default: {DEFAULT_FREQUENT_WORDS})")
    add("--lexicon", default="emoatlas", metavar="emoatlas|nrc:PATH", help="emotion lexicon (default: emoatlas)")
    add("--min_zipf", type=float, default=vocab_words.DEFAULT_MIN_ZIPF,
        help=f"as for probing.run (default: {vocab_words.DEFAULT_MIN_ZIPF})")
    add("--prompts_dir", default=str(prompt_files.PROMPTS_DIR), help="folder of prompt files (default: prompts/)")
    args = parser.parse_args(argv)
    args.languages = [args.language]
    if args.max_pieces < 1:
        raise UserError(f"--max_pieces must be at least 1, got {args.max_pieces}")
    if args.frequent_words < 0:
        raise UserError(f"--frequent_words must be at least 0, got {args.frequent_words}")
    user_list = Path(args.candidates) if args.candidates is not None else None
    if user_list is not None:  # a bad list is refused before anything slow (torch, the tokenizer)
        read_candidate_list(user_list, prompt_files.load_language(args.language, args.prompts_dir).script)
    started = time.perf_counter()
    from probing.run import load_language_data  # the loaders probing.run uses (it imports torch)

    data = load_language_data(args)[args.language]
    name, source = models.resolve_model(model=args.model)
    if Path(source).exists():
        tokenizer = models.load_tokenizer(source)
    else:
        tokenizer = models._load_from_hub(source, lambda local_files_only: models.load_tokenizer(
            source, local_files_only=local_files_only))
    candidates = language_candidate_set(args.language, data.prompts, data.lexicon, tokenizer, min_zipf=args.min_zipf,
                                        max_pieces=args.max_pieces, frequent_words=args.frequent_words,
                                        user_list=user_list)
    frame = candidates.to_frame().drop(columns="language")
    frame.to_csv(sys.stdout, sep="\t", index=False)
    summary = candidates.summary()
    print(f"{args.language} ({name}): {len(candidates):,} candidates, {candidates.description}; by source "
          f"{summary['sources']}; by pieces {summary['n_pieces']}; dropped {summary['dropped']}; "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
