"""Emotion lexicons: one per language, never merged across languages.

Two sources:

* ``emoatlas`` (default): the NRC-EmoLex-derived data files shipped inside the ``emoatlas`` package
  (``langs/<language>.json`` for the eight emotions, ``valence/<language>.py`` for the two
  sentiments). Only the files are read; the package is never imported.
* ``nrc:PATH``: the user's own copy of NRC EmoLex (Mohammad & Turney 2013): the multilingual
  ``NRC-Emotion-Lexicon-ForVariousLanguages.txt``, a ``OneFilePerLanguage`` file, the same table as
  ``.xlsx``, or (English only) the word-level file ``NRC-Emotion-Lexicon-Wordlevel-v0.92.txt``.

A word is matched to a key lower-cased (:meth:`Lexicon.entry_of`, :class:`probing.words.LexiconKeys`):
first as it is, then as each of its dictionary lemmas (every case variant's, and their lemmas':
:func:`probing.words.known_lemmas`), so that inflected forms (``belles``, ``hermosas``,
``όμορφες``, ``Ängste``) find their entry; then through the keys' own lemmas, because some keys
are themselves inflected (Spanish and Portuguese ``bonita``, Italian ``brutta``, Greek ``αστείο``:
``bonitos`` -> ``bonito`` <- ``bonita``; the word must spell the key but for its ending, so that
the forms of a verb do not reach the key of its participle). Lemmas come from simplemma's
dictionary only: an unknown form gets none.

Measured on ``tests/data/emotional_adjectives.csv`` (1,013 forms of 50-63 common emotional
adjectives per language, as the templates call for them: masculine and feminine plural, feminine
singular, Greek neuter plural; German and Dutch predicative and attributive), the share of forms
that reach their entry went, from matching the form and its first lemma to matching both ways:
French 92.2 -> 92.8 %, Spanish 83.8 -> 87.8 %, Greek 88.7 -> 95.4 %, German 95.9 -> 96.6 %,
Italian 85.0 -> 90.5 %, Portuguese 89.1 -> 92.2 %, Dutch 97.9 -> 97.9 %. The misses left (the
fixture's ``known_miss`` column) are gaps of simplemma's dictionary, which links nothing to the
entry: forms it gives a verb lemma (French ``sales`` -> ``saler``, Spanish ``aburridos`` ->
``aburrir``), feminine forms it lists as lemmas of their own (French ``agressive``, Italian
``pazza``), forms it lacks (Greek ``φοβισμένοι``); a few reach another entry of the same word
(Spanish ``asustados`` -> ``asustar``, German ``verrückte`` -> ``verrückter``).

A lexicon lists words with no association too: NRC EmoLex has a row, all zeros, for every word it
rated (``table``, ``grand``); such a word is *covered* (it counts in a profile's denominator, as in
Choenni et al. 2021) with an empty set of dimensions. EmoAtlas's files list only words with at
least one dimension, so with ``emoatlas`` every covered word is emotional.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from probing.errors import UserError
from probing.words import LexiconKeys, known_lemma

EMOTIONS = (
    "anger", "anticipation", "disgust", "fear", "joy",
    "sadness", "surprise", "trust", "negative", "positive",
)
NO_TRANSLATION = "no translation"
EMOATLAS_INSTALL = "pip install --no-deps emoatlas==0.1.6"


@dataclass
class Lexicon:
    """Word -> set of emotion dimensions, for one language."""

    language: str
    source: str
    lemmatizer: str
    entries: dict[str, frozenset[str]]
    files: list[Path] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """Checksum over the lexicon's source files, in order."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.read_bytes())
        return digest.hexdigest()

    @cached_property
    def keys_index(self) -> LexiconKeys:
        """The keys indexed by their dictionary lemmas (built on first use; ``entries`` must not
        change afterwards)."""
        return LexiconKeys.build(self.entries, self.lemmatizer)

    def entry_of(self, word: str, lemma: str | None = None) -> str | None:
        """The lexicon key ``word`` matches, None if none (:meth:`LexiconKeys.entry_of`: its own
        lower-cased form, else one of its dictionary lemmas, else a key that shares one of them).

        ``lemma``, if given (e.g. from a predictions table), is tried before the word's own lemmas.
        """
        return self.keys_index.entry_of(word, lemma)

    def lookup(self, word: str, lemma: str | None = None) -> tuple[str, frozenset[str] | None]:
        """``(lemma, dimensions)`` of ``word``: its lemma (:func:`known_lemma`, ``""`` when the
        lemmatiser does not know the word, or ``lemma`` if passed) and the dimensions of
        :meth:`entry_of`'s key; dimensions are None when no key matches, and an empty set for a
        listed word without associations.
        """
        if lemma is None:
            lemma = known_lemma(word, self.lemmatizer)
        entry = self.entry_of(word, lemma or None)
        return lemma, (None if entry is None else self.entries[entry])


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing (running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _literal_set(path: Path, name: str) -> set[str]:
    """The string set assigned to ``name`` in a Python data file, read without executing it."""
    with warnings.catch_warnings():  # EmoAtlas's Portuguese file has a stray "\ " in a string
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and value.args:  # set([...])
                value = value.args[0]
            return {str(w) for w in ast.literal_eval(value)}
    raise UserError(f"{path} has no {name} list; reinstall EmoAtlas ({EMOATLAS_INSTALL})")


def load_emoatlas(language: str, language_name: str, lemmatizer: str) -> Lexicon:
    """EmoAtlas's lexicon for one language; ``language_name`` is its English name (``French``).

    Emotions come from ``langs/<name>.json``; ``positive``/``negative`` from
    ``valence/<name>.py`` (its ``_ambivalent`` words count as both).
    """
    root = _package_dir("emoatlas")
    if root is None:
        raise UserError(
            f"the EmoAtlas lexicon data is not installed; run `{EMOATLAS_INSTALL}` "
            f"or pass --lexicon nrc:PATH with your NRC EmoLex file"
        )
    stem = language_name.lower()
    emotions_file = root / "langs" / f"{stem}.json"
    valence_file = root / "valence" / f"{stem}.py"
    if not emotions_file.is_file() or not valence_file.is_file():
        have = sorted(p.stem for p in (root / "langs").glob("*.json") if "_" not in p.stem)
        raise UserError(
            f"EmoAtlas has no lexicon for {language_name} ({language}); it covers {', '.join(have)}; "
            f"pass --lexicon nrc:PATH for other languages"
        )
    try:
        raw = json.loads(emotions_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{emotions_file} is malformed ({error}); reinstall: {EMOATLAS_INSTALL}") from None
    entries: dict[str, set[str]] = {}
    for word, dims in raw.items():
        entries.setdefault(word.lower(), set()).update(d for d in dims if d in EMOTIONS)
    positive = _literal_set(valence_file, "_positive")
    negative = _literal_set(valence_file, "_negative")
    ambivalent = _literal_set(valence_file, "_ambivalent")
    for words, dims in ((positive, ("positive",)), (negative, ("negative",)),
                        (ambivalent, ("positive", "negative"))):
        for word in words:
            if word.lower() != NO_TRANSLATION:
                entries.setdefault(word.lower(), set()).update(dims)
    return Lexicon(
        language=language,
        source="emoatlas",
        lemmatizer=lemmatizer,
        entries={w: frozenset(d) for w, d in entries.items() if d},
        files=[emotions_file, valence_file],
    )


def _read_nrc_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in {".xlsx", ".xls"}:
        try:
            return pd.read_excel(path, dtype=str)
        except Exception as error:  # openpyxl raises many types for a broken file
            raise UserError(f"cannot read {path} as a spreadsheet ({error}); pass the NRC EmoLex xlsx") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; pass the NRC EmoLex .txt or .xlsx file") from None
    if not text.strip():
        raise UserError(f"{path} is empty; pass your NRC EmoLex file (.txt or .xlsx) with --lexicon nrc:PATH")
    _check_field_counts(text, path)
    first = text.split("\n", 1)[0].rstrip("\r").split("\t")
    if len(first) == 3 and first[1].lower() in EMOTIONS:
        # Word-level file: "<term>\t<emotion>\t<0|1>" per line, English, no header.
        table = _read_tsv(path, header=None, names=["word", "emotion", "flag"])
        # every rated word, zero rows included (they are covered words without associations)
        wide = table.pivot_table(index="word", columns="emotion", values="flag", aggfunc="max", fill_value="0")
        wide = wide.reset_index().rename(columns={"word": "English Word"})
        for emotion in EMOTIONS:
            if emotion not in wide.columns:
                wide[emotion] = "0"
        return wide
    return _read_tsv(path)


def _check_field_counts(text: str, path: Path) -> None:
    """Refuse a ragged table: every non-empty line must have as many tab-separated fields as the first
    (pandas would raise on a longer line and silently pad a shorter one, reading missing flags as 0)."""
    lines = text.split("\n")
    width = lines[0].rstrip("\r").count("\t") + 1
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        fields = line.count("\t") + 1
        if line and fields != width:
            raise UserError(
                f"{path} line {number} has {fields} tab-separated fields where line 1 has {width}; "
                f"fix that line or pass an intact copy of the NRC EmoLex file"
            )


def _read_tsv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3, **kwargs)
    except (ValueError, pd.errors.EmptyDataError) as error:  # ParserError and EmptyDataError are ValueErrors
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot read {path} as a tab-separated table ({reason}); pass the NRC EmoLex .txt "
                        f"or .xlsx file") from None


def _word_column(columns: list[str], language: str, language_name: str) -> str | None:
    name = language_name.lower()
    for column in columns:
        folded = column.lower().strip()
        if folded == name or folded.startswith(name + " ") or f"({language})" in folded:
            return column
    return None


def load_nrc(path: str | Path, language: str, language_name: str, lemmatizer: str) -> Lexicon:
    """The user's NRC EmoLex file, restricted to the column of one language.

    Several English entries may translate to the same word; the word then carries the union of
    their dimensions. Entries without a translation are skipped.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"--lexicon nrc:{path} is a folder; pass the NRC EmoLex file itself, e.g. "
                        f"nrc:{path / 'NRC-Emotion-Lexicon-ForVariousLanguages.txt'}")
    if not path.is_file():
        raise UserError(
            f"NRC lexicon file {path} not found; pass --lexicon nrc:PATH with your own copy of "
            f"NRC EmoLex (it may not be redistributed, see README)"
        )
    table = _read_nrc_table(path)
    columns = [str(c) for c in table.columns]
    emotion_columns = {c.lower().strip(): c for c in columns if c.lower().strip() in EMOTIONS}
    if set(emotion_columns) != set(EMOTIONS):
        absent = sorted(set(EMOTIONS) - set(emotion_columns))
        raise UserError(
            f"{path} is not an NRC EmoLex table: no column for {', '.join(absent)}; pass "
            f"NRC-Emotion-Lexicon-ForVariousLanguages.txt, a OneFilePerLanguage file or the xlsx"
        )
    word_column = _word_column(columns, language, language_name)
    if word_column is None:
        raise UserError(
            f"{path} has no column for {language_name} ({language}); its word columns are: "
            f"{', '.join(c for c in columns if c.lower().strip() not in EMOTIONS)[:300]}"
        )
    entries: dict[str, set[str]] = {}
    for row in table.itertuples(index=False):
        record = dict(zip(columns, row))
        word = str(record[word_column]).strip().lower()
        if not word or word == NO_TRANSLATION or word == "nan":
            continue
        dims = {e for e, c in emotion_columns.items() if str(record[c]).strip() in {"1", "1.0"}}
        entries.setdefault(word, set()).update(dims)
    if not entries:
        raise UserError(f"{path} has no entries for {language_name}; check the file")
    return Lexicon(
        language=language,
        source=f"nrc:{path}",
        lemmatizer=lemmatizer,
        entries={w: frozenset(d) for w, d in entries.items()},  # all-zero rows are covered words too
        files=[path],
    )


def parse_lexicon_spec(spec: str) -> tuple[str, Path | None]:
    """``"emoatlas"`` -> ("emoatlas", None); ``"nrc:PATH"`` -> ("nrc", PATH)."""
    if spec == "emoatlas":
        return "emoatlas", None
    if spec.startswith("nrc:") and len(spec) > 4:
        return "nrc", Path(spec[4:])
    raise UserError(f"--lexicon {spec!r} is not understood; use 'emoatlas' or 'nrc:PATH'")


def load_lexicon(spec: str, language: str, language_name: str, lemmatizer: str) -> Lexicon:
    """Load the lexicon named by ``spec`` (``emoatlas`` or ``nrc:PATH``) for one language."""
    kind, path = parse_lexicon_spec(spec)
    if kind == "emoatlas":
        return load_emoatlas(language, language_name, lemmatizer)
    return load_nrc(path, language, language_name, lemmatizer)
