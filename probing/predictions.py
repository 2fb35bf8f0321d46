"""The predictions table of a probing run, built column-wise, and the profiles it yields.

``predictions.parquet`` has one row per sentence and rank (see README, "Output formats"). It is
built per shard from the engine's ``(n, k)`` arrays without a Python loop over rows: every
vocabulary entry that appears is classified once (word start, script, word of the language,
lemma, lexicon entry: :mod:`probing.words`), and rows pick their values by index. Repeated
strings are dictionary-encoded (pandas reads them as categoricals); numbers keep native types
(``rank`` int16, ``token_id`` int32, ``n_pieces`` int8, ``log_prob`` and ``score`` float32 in nats).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from probing import words as vocab_words
from probing.errors import UserError
from probing.lexicon import EMOTIONS, Lexicon
from probing.profiles import emotion_profile

PREDICTIONS_FILE = "predictions.parquet"
PREDICTIONS_SCHEMA_VERSION = 3  # 3: n_pieces, and whole words in word mode
METADATA_KEY = b"stereoprobe"
SENTENCE_COLUMNS = ["model", "language", "category", "group_id", "group", "template_id", "sentence"]
PROFILE_KEY_COLUMNS = ["model", "language", "category", "group_id", "group"]
PROFILE_COUNT_COLUMNS = ["n_words", "n_covered", "n_emotional"]
PROFILE_COLUMNS = [*PROFILE_KEY_COLUMNS, *EMOTIONS, *PROFILE_COUNT_COLUMNS]
PROFILE_META_COLUMNS = [*PROFILE_KEY_COLUMNS, *PROFILE_COUNT_COLUMNS]  # every profiles.csv column but the emotions
# drop_reason codes: 0 is kept (""), then the reasons in the order the filters apply
REASONS = ("", *vocab_words.DROP_REASONS)
_CODE = {reason: code for code, reason in enumerate(REASONS)}
_STRING = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema(
    [(name, _STRING) for name in SENTENCE_COLUMNS]
    + [("rank", pa.int16()), ("token_id", pa.int32()), ("token", _STRING), ("n_pieces", pa.int8()), ("word", _STRING),
       ("lemma", _STRING), ("log_prob", pa.float32()), ("score", pa.float32()), ("kept", pa.bool_()),
       ("drop_reason", _STRING)],
    metadata={METADATA_KEY: json.dumps({"table": "predictions",
                                        "schema_version": PREDICTIONS_SCHEMA_VERSION}).encode()},
)
PREDICTION_COLUMNS = SCHEMA.names


@dataclass
class TokenClassifier:
    """Per vocabulary entry of one language (token mode: a completion is one token): its lemma and
    why it is dropped (``""``: kept).

    Entries are classified on first sight and cached, so a run looks each one up once. The ids a
    classifier takes are what the engine returns: token ids here, candidate indices in
    :class:`WordClassifier`.
    """

    vocab: vocab_words.Vocabulary
    script: str
    words: vocab_words.LanguageWords
    lexicon: Lexicon
    _cache: dict[int, tuple[str, int, frozenset | None]] = field(default_factory=dict)

    def word(self, token_id: int) -> str:
        return self.vocab.words[token_id]

    def token(self, token_id: int) -> str:
        return self.vocab.tokens[token_id]

    def first_token_ids(self, ids: np.ndarray) -> np.ndarray:
        return ids

    def n_pieces(self, ids: np.ndarray) -> np.ndarray:
        return np.ones(ids.shape, dtype=np.int8)

    def classify(self, token_ids: np.ndarray) -> tuple[list[str], np.ndarray, list]:
        """``(lemmas, reason codes, lexicon dimensions)`` of each id in ``token_ids``.

        A reason code indexes :data:`REASONS`; the group-word check is the caller's. Dimensions
        are None for words the lexicon does not list.
        """
        script_ok = self.vocab.script_mask(self.script)
        out = []
        for token_id in token_ids.tolist():
            entry = self._cache.get(token_id)
            if entry is None:
                entry = self._classify_one(token_id, script_ok)
                self._cache[token_id] = entry
            out.append(entry)
        return [e[0] for e in out], np.array([e[1] for e in out], dtype=np.int8), [e[2] for e in out]

    def reachable_words(self) -> list[str]:
        """The words of the vocabulary's tokens that the filters keep and that match a lexicon entry:
        every word one mask can complete with an emotion (for the run's lexicon reach)."""
        script_ok = self.vocab.script_mask(self.script)
        reachable = []
        for token_id in np.flatnonzero(script_ok).tolist():
            word = self.vocab.words[token_id]
            if self.lexicon.entry_of(word) is not None and self.classify(np.array([token_id]))[1][0] == 0:
                reachable.append(word)
        return reachable

    def _classify_one(self, token_id: int, script_ok: np.ndarray) -> tuple[str, int, frozenset | None]:
        if not self.vocab.word_start[token_id]:
            return "", _CODE[vocab_words.NOT_WORD_START], None
        if not script_ok[token_id]:
            return "", _CODE[vocab_words.NOT_SCRIPT], None
        word = self.vocab.words[token_id]
        lemma, reason = self.words.classify(word)
        dims = self.lexicon.lookup(word, lemma)[1] if reason == "" else None
        return lemma, _CODE[reason], dims


@dataclass
class WordClassifier:
    """Per candidate word of one language (word mode, :mod:`probing.word_scoring`): its lemma and
    lexicon dimensions. Candidates passed the script and word-of-the-language filters when the set
    was built (:mod:`probing.candidates`), so nothing is dropped here but the group's own words
    (the caller's check)."""

    candidates: object  # a probing.candidates.CandidateSet (words, pieces, piece_strings)
    vocab: vocab_words.Vocabulary
    lemmatizer: str
    lexicon: Lexicon

    def classify(self, ids: np.ndarray) -> tuple[list[str], np.ndarray, list]:
        lemmas, dims = [], []
        for c in ids.tolist():
            word = self.candidates.words[c]
            lemma = vocab_words.known_lemma(word, self.lemmatizer)
            lemmas.append(lemma)
            dims.append(self.lexicon.lookup(word, lemma)[1])
        return lemmas, np.zeros(len(lemmas), dtype=np.int8), dims

    def word(self, candidate: int) -> str:
        return self.candidates.words[candidate]

    def token(self, candidate: int) -> str:
        return self.candidates.piece_strings[candidate]

    def first_token_ids(self, ids: np.ndarray) -> np.ndarray:
        return np.array([self.candidates.pieces[c][0] for c in ids.reshape(-1).tolist()],
                        dtype=np.int32).reshape(ids.shape)

    def n_pieces(self, ids: np.ndarray) -> np.ndarray:
        return np.array([len(self.candidates.pieces[c]) for c in ids.reshape(-1).tolist()],
                        dtype=np.int8).reshape(ids.shape)


@dataclass
class Shard:
    """One shard's predictions (an Arrow table in :data:`SCHEMA`) and profile rows."""

    predictions: pa.Table
    profiles: pd.DataFrame
    drop_counts: dict[str, int]


def _dictionary(codes: np.ndarray, values) -> pa.DictionaryArray:
    """A dictionary-encoded string column: row ``i`` is ``values[codes[i]]`` (``values`` may repeat)."""
    values = list(values)
    distinct = list(dict.fromkeys(values))
    position = {value: i for i, value in enumerate(distinct)}
    remap = np.array([position[v] for v in values], dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(remap[codes]), pa.array(distinct, type=pa.string()))


def build_shard(model_name: str, prompts: list, token_ids: np.ndarray, log_probs: np.ndarray, scores: np.ndarray,
                classifier: TokenClassifier, group_keys: dict[str, frozenset[str]], weighting: str) -> Shard:
    """The rows of ``prompts`` (one language) and the profile of each of their groups.

    ``token_ids``, ``log_probs`` and ``scores`` are the engine's ``(n, k)`` arrays in prompt
    order (token ids, or candidate indices in word mode: ``classifier`` knows which);
    ``group_keys[group_id]`` are the group's own words and lemmas
    (:func:`probing.words.group_word_keys`).
    """
    n, k = token_ids.shape
    unique_ids, inverse = np.unique(token_ids, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int32)
    lemmas, reasons, dims = classifier.classify(unique_ids)
    unique_words = [classifier.word(t) for t in unique_ids.tolist()]
    folded = [w.lower() for w in unique_words]

    groups = list(dict.fromkeys((p.category, p.group_id, p.group) for p in prompts))
    group_index = {group_id: g for g, (_, group_id, _) in enumerate(groups)}
    sentence_group = np.array([group_index[p.group_id] for p in prompts], dtype=np.int64)

    # Group-word check: pairs (group, unique token) whose word or lemma is one of the group's.
    by_key: dict[str, list[int]] = {}
    for u in np.flatnonzero(reasons == 0).tolist():
        for key in dict.fromkeys((folded[u], lemmas[u])):
            if key:
                by_key.setdefault(key, []).append(u)
    pairs = [g * len(unique_ids) + u for g, (_, group_id, _) in enumerate(groups)
             for key in group_keys[group_id] for u in by_key.get(key, ())]
    row_reasons = reasons[inverse]
    row_pairs = np.repeat(sentence_group, k) * len(unique_ids) + inverse
    row_reasons[(row_reasons == 0) & np.isin(row_pairs, np.array(pairs, dtype=np.int64))] = _CODE[vocab_words.GROUP_WORD]
    kept = row_reasons == 0

    columns = {}
    per_row_sentence = np.repeat(np.arange(n), k)
    for name in SENTENCE_COLUMNS:
        values = [model_name] * n if name == "model" else [getattr(p, name) for p in prompts]
        columns[name] = _dictionary(per_row_sentence, values)
    columns["rank"] = pa.array(np.tile(np.arange(1, k + 1, dtype=np.int16), n))
    columns["token_id"] = pa.array(classifier.first_token_ids(unique_ids)[inverse].astype(np.int32))
    columns["token"] = _dictionary(inverse, (classifier.token(t) for t in unique_ids.tolist()))
    columns["n_pieces"] = pa.array(classifier.n_pieces(unique_ids)[inverse])
    columns["word"] = _dictionary(inverse, unique_words)
    columns["lemma"] = _dictionary(inverse, lemmas)
    columns["log_prob"] = pa.array(log_probs.reshape(-1).astype(np.float32))
    columns["score"] = pa.array(scores.reshape(-1).astype(np.float32))
    columns["kept"] = pa.array(kept)
    columns["drop_reason"] = _dictionary(row_reasons.astype(np.int32), REASONS)
    table = pa.Table.from_arrays([columns[name] for name in SCHEMA.names], schema=SCHEMA)

    profiles = _profiles(model_name, prompts[0].language if prompts else "", groups, sentence_group, k, kept,
                         inverse, folded, dims, log_probs, weighting)
    counts = np.bincount(row_reasons, minlength=len(REASONS))
    drop_counts = {(reason or "kept"): int(c) for reason, c in zip(REASONS, counts)}
    return Shard(table, profiles, drop_counts)


def _profiles(model_name, language, groups, sentence_group, k, kept, inverse, folded, dims, log_probs,
              weighting) -> pd.DataFrame:
    """Profile of each group from its unique kept words (lower-cased), see :mod:`probing.profiles`.

    A word's lexicon entry is that of its surface form, else that of the lowest token id among the
    tokens spelling it that reach a lexicon key through a lemma (``Ängste`` and ``ängste`` are one word).
    """
    word_keys, word_of_unique = np.unique(np.array(folded, dtype=object), return_inverse=True)
    word_dims: list = [None] * len(word_keys)
    for u, d in enumerate(dims):  # unique ids are sorted, so the first hit is the lowest token id
        if d is not None and word_dims[word_of_unique[u]] is None:
            word_dims[word_of_unique[u]] = d
    rows_group = np.repeat(sentence_group, k)[kept]
    rows_word = word_of_unique[inverse[kept]]
    mass = np.exp(log_probs.reshape(-1)[kept].astype(np.float64))
    pair, pair_index = np.unique(rows_group * len(word_keys) + rows_word, return_inverse=True)
    pair_mass = np.bincount(pair_index, weights=mass, minlength=len(pair))
    pair_group, pair_word = pair // len(word_keys), pair % len(word_keys)
    starts = np.searchsorted(pair_group, np.arange(len(groups) + 1))
    rows = []
    for g, (category, group_id, group_text) in enumerate(groups):
        chosen = slice(starts[g], starts[g + 1])
        profile = emotion_profile([word_dims[w] for w in pair_word[chosen]], pair_mass[chosen], weighting=weighting)
        rows.append({"model": model_name, "language": language, "category": category, "group_id": group_id,
                     "group": group_text, **profile})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def write_predictions(path: Path, tables) -> tuple[int, float]:
    """Write the Arrow tables ``tables`` (in :data:`SCHEMA`) into one Parquet file, one row group
    each. Returns the row count and the seconds spent writing (building the tables excluded)."""
    rows, seconds = 0, 0.0
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for table in tables:
            start = time.perf_counter()
            writer.write_table(table)
            seconds += time.perf_counter() - start
            rows += table.num_rows
    return rows, seconds


def predictions_file(path: str | Path) -> Path:
    """The checked ``predictions.parquet`` of a run (``path`` is the file or the run folder holding one).

    Only the schema is read. Anything else (another Parquet file, a file that is not Parquet, an
    older ``predictions.csv`` run) is a :class:`UserError` naming what to pass.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist; pass a probing run folder or its {PREDICTIONS_FILE}")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UserError(f"cannot read {path} as Parquet ({str(error).splitlines()[0]}); pass the "
                        f"{PREDICTIONS_FILE} of a probing run") from None
    meta = (schema.metadata or {}).get(METADATA_KEY)
    try:
        info = json.loads(meta) if meta else {}
    except json.JSONDecodeError:
        info = {}
    if info.get("table") != "predictions":
        raise UserError(f"{path} is a Parquet file but not a predictions table written by python -m probing.run "
                        f"(no stereoprobe metadata); pass the {PREDICTIONS_FILE} of a probing run folder")
    if info.get("schema_version") != PREDICTIONS_SCHEMA_VERSION:
        raise UserError(f"{path} has predictions schema version {info.get('schema_version')}, this toolkit reads "
                        f"version {PREDICTIONS_SCHEMA_VERSION}; rerun python -m probing.run to rewrite it")
    return path


def read_predictions(path: str | Path, *, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
    """A run's ``predictions.parquet`` (or the run folder holding one) as a DataFrame, checked by
    :func:`predictions_file`.

    ``columns`` (default: all) and ``filters`` (pyarrow's DNF form, e.g.
    ``[("language", "in", ["en"]), ("group_id", "=", "women")]``) are applied while reading, so that
    one group of a 3 M-row run is read without the rest (row groups hold one language each and are
    skipped by their statistics).
    """
    return pq.read_table(predictions_file(path), columns=columns, filters=filters).to_pandas()
