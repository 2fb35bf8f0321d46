"""Lexicons: one per language, lemma fallback, and the user's NRC EmoLex files."""

from __future__ import annotations

import pandas as pd
import pytest

from probing.errors import UserError
from probing.lexicon import EMOTIONS, load_emoatlas, load_lexicon, load_nrc

HEADER = ["English Word", *EMOTIONS[:-2], "negative", "positive"]


@pytest.mark.parametrize("language, name, inflected, lemma, dimension", [
    ("fr", "French", "belles", "beau", "joy"),
    ("fr", "French", "agressives", "agressif", "anger"),
    ("es", "Spanish", "hermosas", "hermoso", "positive"),
    ("es", "Spanish", "perezosas", "perezoso", "disgust"),
    ("el", "Greek", "θυμωμένες", "θυμωμένος", "anger"),
    ("el", "Greek", "έξυπνες", "έξυπνος", "trust"),
])
def test_inflected_adjectives_are_found_through_their_lemma(language, name, inflected, lemma, dimension):
    lexicon = load_emoatlas(language, name, language)
    assert inflected not in lexicon.entries  # only the lemma is in the lexicon
    found_lemma, dims = lexicon.lookup(inflected)
    assert found_lemma == lemma
    assert dimension in dims


def test_greek_final_sigma_survives_lower_casing():
    lexicon = load_emoatlas("el", "Greek", "el")
    assert lexicon.lookup("Θυμωμένες")[0] == "θυμωμένος"  # not "θυμωμένοσ"


def test_languages_are_never_merged():
    french = load_emoatlas("fr", "French", "fr")
    english = load_emoatlas("en", "English", "en")
    assert french.lookup("happy")[1] is None  # an English word is not in the French lexicon
    assert english.lookup("heureux")[1] is None


def write_multilingual(path, rows):
    columns = [*HEADER, "French", "Greek"]
    pd.DataFrame(rows, columns=columns).to_csv(path, sep="\t", index=False)


def flags(*dims):
    return [1 if e in dims else 0 for e in HEADER[1:]]


def test_nrc_multilingual_file_one_column_per_language(tmp_path):
    path = tmp_path / "NRC-Emotion-Lexicon-ForVariousLanguages.txt"
    write_multilingual(path, [
        ["beautiful", *flags("joy", "positive"), "beau", "όμορφος"],
        ["handsome", *flags("trust", "positive"), "beau", "ωραίος"],  # same French word: union
        ["dread", *flags("fear", "negative"), "NO TRANSLATION", "τρόμος"],
    ])
    french = load_nrc(path, "fr", "French", "fr")
    assert french.entries == {"beau": frozenset({"joy", "trust", "positive"})}
    assert french.lookup("belles") == ("beau", frozenset({"joy", "trust", "positive"}))
    greek = load_lexicon(f"nrc:{path}", "el", "Greek", "el")
    assert greek.entries["τρόμος"] == frozenset({"fear", "negative"})
    english = load_nrc(path, "en", "English", "en")
    assert english.entries["dread"] == frozenset({"fear", "negative"})
    assert len(french.sha256) == 64


def test_nrc_one_file_per_language_with_code_header(tmp_path):
    path = tmp_path / "French-NRC-EmoLex.txt"
    pd.DataFrame([["angry", *flags("anger", "negative"), "fâché"]],
                 columns=[*HEADER, "French (fr)"]).to_csv(path, sep="\t", index=False)
    assert load_nrc(path, "fr", "French", "fr").entries == {"fâché": frozenset({"anger", "negative"})}


def test_nrc_word_level_file(tmp_path):
    path = tmp_path / "NRC-Emotion-Lexicon-Wordlevel-v0.92.txt"
    lines = [f"abandon\t{e}\t{1 if e in ('fear', 'sadness', 'negative') else 0}" for e in sorted(EMOTIONS)]
    lines += [f"zest\t{e}\t{1 if e in ('joy', 'positive') else 0}" for e in sorted(EMOTIONS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lexicon = load_nrc(path, "en", "English", "en")
    assert lexicon.entries == {"abandon": frozenset({"fear", "sadness", "negative"}),
                               "zest": frozenset({"joy", "positive"})}


def test_nrc_xlsx(tmp_path):
    path = tmp_path / "NRC.xlsx"
    pd.DataFrame([["joy", *flags("joy", "positive"), "joie", "χαρά"]],
                 columns=[*HEADER, "French", "Greek"]).to_excel(path, index=False)
    assert load_nrc(path, "fr", "French", "fr").entries == {"joie": frozenset({"joy", "positive"})}


def test_missing_and_malformed_nrc_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_nrc(tmp_path / "absent.txt", "fr", "French", "fr")
    bad = tmp_path / "bad.txt"
    bad.write_text("word\tscore\nhappy\t3\n", encoding="utf-8")
    with pytest.raises(UserError, match="not an NRC EmoLex table"):
        load_nrc(bad, "fr", "French", "fr")
    no_french = tmp_path / "greek_only.txt"
    pd.DataFrame([["joy", *flags("joy"), "χαρά"]], columns=[*HEADER, "Greek"]).to_csv(no_french, sep="\t", index=False)
    with pytest.raises(UserError, match="no column for French"):
        load_nrc(no_french, "fr", "French", "fr")
    with pytest.raises(UserError, match="not understood"):
        load_lexicon("vader", "fr", "French", "fr")


def test_emoatlas_language_it_lacks_is_a_user_error():
    with pytest.raises(UserError, match="EmoAtlas has no lexicon for Klingon"):
        load_emoatlas("tlh", "Klingon", "en")
