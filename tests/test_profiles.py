"""Both weightings against numbers computed by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from probing.lexicon import EMOTIONS, Lexicon, load_nrc
from probing.predictions import TokenClassifier, build_shard
from probing.profiles import emotion_profile
from probing.words import LanguageWords, Vocabulary, group_word_keys

LEXICON = Lexicon(language="en", source="test", lemmatizer="en", entries={
    "happy": frozenset({"joy", "positive"}),
    "angry": frozenset({"anger", "negative"}),
    "lazy": frozenset({"negative"}),
    "tall": frozenset(),  # listed without associations (an NRC all-zero row): covered, not emotional
})
TOKENS = ["<s>", "▁happy", "▁Happy", "▁angry", "▁tall", "▁women", "▁lazy", "▁qzxv", "ness", "▁short"]


def vocabulary(tokens):
    words = tuple(t[1:] if t.startswith("▁") else "" for t in tokens)
    return Vocabulary("sentencepiece", tuple(tokens), words, np.array([bool(w) for w in words]))


def shard(rows, lexicon, language="en", group=("gender", "women", "women"), frequent=("women",), weighting="count"):
    """Profile of one group from ``rows``: one list of (token, probability) per template, best first."""
    tokens = sorted({t for template in rows for t, _ in template} | {"<s>"}, key=lambda t: (t != "<s>", t))
    vocab = vocabulary(tokens)
    words = LanguageWords(language, language, 2.5, {w: 5.0 for w in frequent}, frozenset(lexicon.entries), {})
    classifier = TokenClassifier(vocab, "Latin", words, lexicon)
    category, group_id, text = group
    prompts = [SimpleNamespace(language=language, category=category, group_id=group_id, group=text,
                               template_id=f"t{i}", sentence=f"s{i}") for i in range(len(rows))]
    ids = np.array([[tokens.index(t) for t, _ in template] for template in rows], dtype=np.int32)
    log_probs = np.log(np.array([[p for _, p in template] for template in rows], dtype=np.float32))
    keys = {group_id: group_word_keys([text], language)}
    return build_shard("m", prompts, ids, log_probs, log_probs, classifier, keys, weighting)


ROWS = [
    [("▁happy", 0.20), ("▁angry", 0.10), ("▁tall", 0.05), ("▁women", 0.30)],  # women: the group's word
    [("▁Happy", 0.40), ("▁lazy", 0.10), ("▁qzxv", 0.05), ("ness", 0.01)],    # Happy = happy; 2 dropped
]


def run(weighting):
    built = shard(ROWS, LEXICON, weighting=weighting)
    assert len(built.profiles) == 1
    return built.profiles.iloc[0]


def test_drop_reasons_by_hand():
    table = shard(ROWS, LEXICON).predictions.to_pandas()
    assert table["drop_reason"].astype(str).tolist() == [
        "", "", "", "group_word", "", "", "not_a_word", "not_word_start"]
    assert table["kept"].tolist() == [True, True, True, False, True, True, False, False]
    assert table["rank"].tolist() == [1, 2, 3, 4, 1, 2, 3, 4]
    assert table["lemma"].astype(str).tolist()[:3] == ["happy", "angry", "tall"]


def test_count_weighting_by_hand():
    # unique kept words: happy, angry, tall, lazy; all four covered, tall without associations
    row = run("count")
    assert (row["n_words"], row["n_covered"], row["n_emotional"]) == (4, 4, 3)
    assert row["joy"] == pytest.approx(1 / 4)
    assert row["positive"] == pytest.approx(1 / 4)
    assert row["anger"] == pytest.approx(1 / 4)
    assert row["negative"] == pytest.approx(2 / 4)
    assert row["fear"] == 0.0


def test_probability_weighting_by_hand():
    # masses: happy 0.2 + 0.4 = 0.6, angry 0.1, tall 0.05, lazy 0.1; total covered mass 0.85
    row = run("probability")
    assert row["joy"] == pytest.approx(0.6 / 0.85)
    assert row["anger"] == pytest.approx(0.1 / 0.85)
    assert row["negative"] == pytest.approx(0.2 / 0.85)
    assert row["surprise"] == 0.0
    assert list(row.index[5:15]) == list(EMOTIONS)


def test_nrc_zero_rows_count_as_covered_words(tmp_path):
    """Choenni et al. (2021): heureux (joy), table, grand (no association), fâché (anger): joy = 1/4."""
    header = ["English Word", "anger", "anticipation", "disgust", "fear", "joy", "negative", "positive",
              "sadness", "surprise", "trust", "French"]
    rows = [["happy", 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, "heureux"],
            ["table", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "table"],
            ["big", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "grand"],
            ["angry", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, "fâché"]]
    path = tmp_path / "NRC-Emotion-Lexicon-ForVariousLanguages.txt"
    pd.DataFrame(rows, columns=header).to_csv(path, sep="\t", index=False)
    french = load_nrc(path, "fr", "French", "fr")
    assert french.entries["table"] == frozenset()
    built = shard([[("▁heureux", 0.4), ("▁table", 0.3), ("▁grand", 0.2), ("▁fâché", 0.1)]], french,
                  language="fr", group=("gender", "women", "femmes"))
    row = built.profiles.iloc[0]
    assert row["joy"] == pytest.approx(0.25) and row["anger"] == pytest.approx(0.25)
    assert (row["n_words"], row["n_covered"], row["n_emotional"]) == (4, 4, 2)


def test_group_without_covered_words_is_nan_not_zero():
    profile = emotion_profile([None, None], weighting="count")
    assert all(math.isnan(profile[e]) for e in EMOTIONS)
    assert (profile["n_words"], profile["n_covered"]) == (2, 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="weighting"):
        emotion_profile([], weighting="tfidf")
    with pytest.raises(ValueError, match="needs the mass"):
        emotion_profile([{"joy"}], weighting="probability")
    with pytest.raises(ValueError, match="shape"):
        emotion_profile([{"joy"}], np.array([0.1, 0.2]), weighting="probability")
