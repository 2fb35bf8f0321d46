"""Both weightings against numbers computed by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from probing.lexicon import EMOTIONS, Lexicon
from probing.profiles import emotion_profile
from probing.run import PREDICTION_COLUMNS, profiles_table

LEXICON = Lexicon(language="en", source="test", lemmatizer="en", entries={
    "happy": frozenset({"joy", "positive"}),
    "angry": frozenset({"anger", "negative"}),
    "lazy": frozenset({"negative"}),
})


def predictions(rows):
    """rows: (template_id, word, probability, kept)."""
    table = pd.DataFrame([{
        "model": "m", "language": "en", "category": "gender", "group_id": "women", "group": "women",
        "template_id": t, "sentence": "", "rank": i + 1, "token": "▁" + w, "word": w, "lemma": w.lower(),
        "log_prob": math.log(p), "score": math.log(p), "kept": kept, "drop_reason": "" if kept else "group_word",
    } for i, (t, w, p, kept) in enumerate(rows)])
    return table[PREDICTION_COLUMNS]


ROWS = [
    ("t1", "happy", 0.20, True),
    ("t1", "angry", 0.10, True),
    ("t1", "tall", 0.05, True),     # kept, not in the lexicon
    ("t1", "women", 0.30, False),   # the group's own word: dropped
    ("t2", "Happy", 0.40, True),    # same word as "happy" once lower-cased: mass adds up
    ("t2", "lazy", 0.10, True),
]


def run(weighting):
    data = {"en": SimpleNamespace(lexicon=LEXICON)}
    table = profiles_table(predictions(ROWS), data, weighting, [("en", "gender", "women", "women")], "m")
    assert len(table) == 1
    return table.iloc[0]


def test_count_weighting_by_hand():
    # unique kept words: happy, angry, tall, lazy -> covered: happy, angry, lazy (3)
    row = run("count")
    assert (row["n_words"], row["n_covered"]) == (4, 3)
    assert row["joy"] == pytest.approx(1 / 3)
    assert row["positive"] == pytest.approx(1 / 3)
    assert row["anger"] == pytest.approx(1 / 3)
    assert row["negative"] == pytest.approx(2 / 3)
    assert row["fear"] == 0.0


def test_probability_weighting_by_hand():
    # masses: happy 0.2 + 0.4 = 0.6, angry 0.1, lazy 0.1; total covered mass 0.8
    row = run("probability")
    assert row["joy"] == pytest.approx(0.6 / 0.8)
    assert row["anger"] == pytest.approx(0.1 / 0.8)
    assert row["negative"] == pytest.approx(0.2 / 0.8)
    assert row["surprise"] == 0.0
    assert list(row.index[5:15]) == list(EMOTIONS)


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
