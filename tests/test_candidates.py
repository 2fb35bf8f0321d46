"""Whole-word candidate sets: sources and sizes per language, the word filters, pieces that match
the sentence's tokenisation (real XLM-R tokenizer), drop counts, user lists and their bad inputs."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from probing import candidates as C
from probing.errors import USER_ERROR_EXIT_CODE, UserError
from probing.run import load_language_data
from probing.words import is_script_word, language_words, other_language_index

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("en", "fr", "es", "el", "de", "it", "pt", "nl")
FULL = ("fr", "es", "el", "de")  # built with the defaults; the others with a cut-down lexicon and list


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    from probing.models import load_tokenizer

    return load_tokenizer(str(tiny_dir))


@pytest.fixture(scope="module")
def data():
    return load_language_data(SimpleNamespace(languages=list(LANGUAGES), prompts_dir=str(ROOT / "prompts"),
                                              lexicon="emoatlas"))


@pytest.fixture(scope="module")
def others():
    return other_language_index()


@pytest.fixture(scope="module")
def words_of(data, others):
    cache = {}

    def get(language):
        if language not in cache:
            d = data[language]
            cache[language] = language_words(language, d.prompts.lemmatizer, d.lexicon.entries, other_languages=others)
        return cache[language]

    return get


def small_lexicon(lexicon, n=300):
    return dataclasses.replace(lexicon, entries=dict(sorted(lexicon.entries.items())[::max(1, len(lexicon.entries) // n)]))


@pytest.fixture(scope="module")
def build(data, words_of, tokenizer):
    """build(language, **kwargs) -> CandidateSet; the default sets are built once per module."""
    cache = {}

    def get(language, *, small=None, **kwargs):
        small = language not in FULL if small is None else small
        key = (language, small, tuple(sorted(kwargs.items())))
        if key not in cache:
            d = data[language]
            lexicon = small_lexicon(d.lexicon) if small else d.lexicon
            if small:
                kwargs.setdefault("frequent_words", 2000)
            cache[key] = C.build_candidate_set(language, d.prompts.lemmatizer, d.prompts.script, lexicon,
                                               words_of(language), tokenizer, **kwargs)
        return cache[key]

    return get


def index(candidates):
    return {w: i for i, w in enumerate(candidates.words)}


@pytest.mark.parametrize("language, expected", [
    ("fr", {"méchantes": "lexicon_form", "paresseux": "lexicon", "heureuses": "lexicon_form", "peur": "lexicon"}),
    ("es", {"perezosos": "lexicon_form", "malvados": "lexicon_form", "felices": "lexicon_form"}),
    ("el", {"κακοί": "lexicon_form", "θυμωμένοι": "lexicon_form", "τεμπέληδες": "lexicon_form"}),
    ("de", {"böse": "lexicon", "Angst": "lexicon", "Wut": "lexicon"}),
])
def test_default_sets_hold_the_lexicons_forms(build, language, expected):
    candidates = build(language)
    at = index(candidates)
    assert {w: candidates.sources[at[w]] for w in expected if w in at} == expected
    assert 20_000 < len(candidates) < 150_000
    counts = candidates.source_counts()
    assert set(counts) == {"lexicon", "lexicon_form", "frequent"}
    assert counts["frequent"] > 5_000 and counts["lexicon"] > 3_000 and counts["lexicon_form"] > 10_000
    assert f"{counts['lexicon_form']:,} dictionary forms" in candidates.description
    assert f"wordfreq top {C.DEFAULT_FREQUENT_WORDS:,}" in candidates.description


def test_german_case_follows_the_dictionary(build):
    at = index(build("de"))
    assert "Angst" in at and "Wut" in at and "wut" not in at  # nouns as the model writes them
    assert "böse" in at  # adjectives lower-case
    assert "arm" in at and "Arm" in at  # both attested: both kept, distinct pieces


@pytest.mark.parametrize("language", LANGUAGES)
def test_structure_and_filters(build, words_of, data, language):
    candidates = build(language)
    n = len(candidates)
    assert n > 1_000
    assert len(candidates.pieces) == len(candidates.sources) == len(candidates.piece_strings) == n
    assert len(set(candidates.words)) == n and len(set(candidates.pieces)) == n  # no duplicates
    assert all(1 <= len(p) <= candidates.max_pieces == C.MAX_PIECES for p in candidates.pieces)
    script, words = data[language].prompts.script, words_of(language)
    assert all(is_script_word(w, script) for w in candidates.words)
    assert all(words.classify(w)[1] == "" for w in candidates.words)
    assert candidates.drop_counts.get("duplicate", 0) > 0 and candidates.drop_counts.get("not_in_script", 0) > 0
    # by_piece_count partitions the indices
    groups = candidates.by_piece_count()
    assert sorted(np.concatenate(list(groups.values())).tolist()) == list(range(n))
    for count, indices in groups.items():
        assert all(len(candidates.pieces[i]) == count for i in indices)
        assert candidates.piece_array(count).shape == (len(indices), count)
    frame = candidates.to_frame()
    assert list(frame.columns) == ["language", "word", "source", "n_pieces", "pieces"] and len(frame) == n
    assert C._checksum(candidates.words, candidates.pieces) == candidates.sha256


@pytest.mark.parametrize("language", LANGUAGES)
def test_pieces_are_the_sentences_tokens_at_the_mask(build, tokenizer, language):
    """The word's pieces sit in the rendered sentence exactly where <mask> is (XLM-R's <mask>
    takes the space before it)."""
    candidates = build(language)
    sample = random.Random(language).sample(range(len(candidates)), 300)
    sample += [i for i in range(len(candidates)) if len(candidates.pieces[i]) >= 4][:50]
    masked = tokenizer("Why are they so <mask>?")["input_ids"]
    at = masked.index(tokenizer.mask_token_id)
    sentences = tokenizer([f"Why are they so {candidates.words[i]}?" for i in sample])["input_ids"]
    for i, ids in zip(sample, sentences):
        pieces = candidates.pieces[i]
        assert ids[:at] == masked[:at]
        assert tuple(ids[at:at + len(pieces)]) == pieces, candidates.words[i]
        assert tokenizer.convert_ids_to_tokens(list(pieces)) == candidates.piece_strings[i].split(" ")


def test_tokenize_words_matches_word_by_word(build, tokenizer):
    words = build("el").words[:3000] + build("fr").words[:3000]
    assert C.tokenize_words(tokenizer, words) == tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]


def test_too_many_pieces_are_counted_not_fatal(build):
    everything = build("fr", small=True, max_pieces=50)
    one = build("fr", small=True, max_pieces=1)
    longer = sum(len(p) > 1 for p in everything.pieces)
    assert longer > 100
    assert one.drop_counts["too_many_pieces"] == longer
    assert len(one) == len(everything) - longer and all(len(p) == 1 for p in one.pieces)
    with pytest.raises(UserError):
        build("fr", small=True, max_pieces=0)


def test_duplicates_keep_the_first_source(build):
    candidates = build("fr")
    at = index(candidates)
    # "peur" is a lexicon entry and among the most frequent words: one candidate, from the lexicon
    assert candidates.sources[at["peur"]] == "lexicon"
    assert candidates.words.count("peur") == 1


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_user_list(build, tmp_path):
    path = write(tmp_path / "mine.txt", "# my words\nméchantes\n\n  paresseux \nméchantes\nxyzzyqu\nόμορφες\n"
                                        "fin\n\ufb01n\n")
    candidates = build("fr", user_list=path)
    assert candidates.words == ["méchantes", "paresseux", "xyzzyqu", "fin"]  # not checked as words: the user's
    assert set(candidates.sources) == {"user"}
    # "méchantes" twice; "ﬁn" (a ligature) has the pieces of "fin"
    assert candidates.drop_counts == {"duplicate": 2, "not_in_script": 1}
    assert candidates.description == f"user list {path}"
    one = build("fr", user_list=path, max_pieces=1)
    assert one.drop_counts["too_many_pieces"] == sum(len(p) > 1 for p in candidates.pieces)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("folder", "is a folder"),
    ("# only a comment\n\n   \n", "has no words"),
    ("caf\xe9\n".encode("latin-1"), "is not UTF-8"),
    ("όμορφες\nθυμωμένοι\nκακοί\nbon\n", "not words of Latin letters"),
])
def test_bad_user_lists(tmp_path, content, message):
    path = tmp_path / "list.txt"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write(path, content)
    with pytest.raises(UserError) as error:
        C.read_candidate_list(path, "LATIN")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_cli_bad_list_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "probing.candidates", "--language", "fr", "--candidates",
                           str(tmp_path / "missing.txt")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == USER_ERROR_EXIT_CODE
    assert proc.stderr.startswith("error: candidate list") and proc.stderr.count("\n") == 1 and not proc.stdout


@pytest.mark.parametrize("content", ["", "όμορφες\nκακοί\n", "folder"])
def test_cli_bad_lists_exit_2_in_process(cli, tmp_path, content):
    path = tmp_path / "list.txt"
    path.mkdir() if content == "folder" else write(path, content)
    code, out, err = cli(C.main, ["--language", "fr", "--candidates", str(path)])
    assert code == USER_ERROR_EXIT_CODE and not out
    assert err.startswith("error: candidate list") and err.count("\n") == 1


def test_cli_prints_the_set(cli, tiny_dir, tokenizer, tmp_path, monkeypatch):
    from probing import models

    monkeypatch.setattr(models, "load_tokenizer", lambda source, **kwargs: tokenizer)  # loaded once per module
    path = write(tmp_path / "mine.txt", "méchantes\nparesseux\nόμορφες\n")
    code, out, err = cli(C.main, ["--language", "fr", "--model", str(tiny_dir), "--candidates", str(path)])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "word\tsource\tn_pieces\tpieces"
    assert lines[1] == "méchantes\tuser\t3\t▁mé ch antes"
    assert len(lines) == 3 and err.count("\n") == 1 and "2 candidates" in err and "not_in_script" in err


def test_an_index_of_the_proposed_words_classifies_as_the_full_one(build, data, tokenizer):
    d = data["nl"]
    lexicon = small_lexicon(d.lexicon)
    keys = C.proposed_keys("nl", d.prompts.lemmatizer, lexicon, 2000)
    words = language_words("nl", d.prompts.lemmatizer, d.lexicon.entries, other_languages=other_language_index(keys))
    candidates = C.build_candidate_set("nl", d.prompts.lemmatizer, d.prompts.script, lexicon, words, tokenizer,
                                       frequent_words=2000)
    full = build("nl")
    assert candidates.sha256 == full.sha256 and candidates.drop_counts == full.drop_counts


def test_truncation_saved_with_a_tokenizer_does_not_cut_the_words(tiny_dir):
    """A fine-tuned model's tokenizer.json may keep its training max_length: encoding 1,000 words
    at a time must ignore it (and leave it as it was)."""
    from transformers import AutoTokenizer

    from probing.candidates import tokenize_words

    plain = AutoTokenizer.from_pretrained(tiny_dir)
    saved = AutoTokenizer.from_pretrained(tiny_dir)
    saved.backend_tokenizer.enable_truncation(max_length=64)
    words = [w for w in plain.convert_ids_to_tokens(list(range(5000, 8000))) if w.startswith("\u2581") and
             w[1:].isalpha()][:1500]
    words = [w[1:] + "ness" for w in words]
    expected = [plain(w, add_special_tokens=False)["input_ids"] for w in words]
    assert tokenize_words(saved, words) == expected == tokenize_words(plain, words)
    assert saved.backend_tokenizer.truncation["max_length"] == 64
