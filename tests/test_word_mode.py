"""`python -m probing.run --completions word` end to end on tiny-xlmr: whole words in the tables,
the candidate set recorded, resume, and every bad input of the word-mode options."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from probing import run
from probing.lexicon import load_emoatlas
from probing.predictions import read_predictions
from test_resume import interrupt_after

FAST = ["--model", "tiny-xlmr", "--languages", "en", "--categories", "gender", "--quiet"]


@pytest.fixture(scope="module")
def multi_piece_words(tiny):
    """40 English lexicon keys that XLM-R writes with 2-4 pieces (taken from the lexicon itself)."""
    _, tokenizer = tiny
    keys = sorted(k for k in load_emoatlas("en", "English", "en").entries if k.isalpha())
    pieces = tokenizer(keys, add_special_tokens=False)["input_ids"]
    return [k for k, p in zip(keys, pieces) if 2 <= len(p) <= 4][:40]


@pytest.fixture
def word_list(tmp_path, multi_piece_words):
    path = tmp_path / "words_en.txt"
    path.write_text("# multi-piece emotional words\n" + "\n".join(multi_piece_words) + "\n", encoding="utf-8")
    return path


def test_multi_piece_words_reach_the_completions_and_the_profiles(tiny, tmp_path, word_list, multi_piece_words, cli):
    _, tokenizer = tiny
    out = tmp_path / "run"
    code, _, stderr = cli(run.main, [*FAST, "--top_k", "10", "--candidates", f"en={word_list}", "--output_dir", str(out)])
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "candidates.parquet", "filters.csv", "manifest.json", "predictions.parquet", "profiles.csv"]
    predictions = read_predictions(out)
    assert (predictions["n_pieces"] >= 2).all()
    assert set(predictions["word"].astype(str)) <= set(multi_piece_words)
    for row in predictions.drop_duplicates("word").itertuples():
        ids = tokenizer(str(row.word), add_special_tokens=False)["input_ids"]
        assert str(row.token).split(" ") == tokenizer.convert_ids_to_tokens(ids)
        assert row.token_id == ids[0] and row.n_pieces == len(ids)
    assert predictions["kept"].all()  # no group word among them

    profiles = pd.read_csv(out / "profiles.csv")
    assert (profiles["n_covered"] > 0).all()
    n_words = predictions.groupby("group_id", observed=True)["word"].nunique()
    assert (profiles.set_index("group_id")["n_words"].loc[n_words.index] == n_words).all()

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    completions = manifest["completions"]
    assert completions["mode"] == "word" and completions["candidates"]["en"]["n"] == len(multi_piece_words)
    assert completions["candidates"]["en"]["by_source"] == {"user": len(multi_piece_words)}
    assert completions["forward_passes"] > 0
    reached = manifest["lexicon_reach"]["en"]
    assert reached == pytest.approx(len(multi_piece_words) / len(load_emoatlas("en", "English", "en").entries), abs=1e-6)
    candidates = pd.read_parquet(out / "candidates.parquet")
    assert list(candidates["word"]) == multi_piece_words and set(candidates["source"]) == {"user"}
    filters = pd.read_csv(out / "filters.csv", keep_default_na=False)
    kept_candidates = filters[(filters["stage"] == "candidates") & (filters["outcome"] == "kept")]
    assert kept_candidates["n"].tolist() == [len(multi_piece_words)]
    assert filters.groupby(["language", "stage"])["share"].sum().round(9).eq(1).all()


def test_default_candidate_set_reaches_more_of_the_lexicon_than_single_tokens(tiny_dir, tmp_path, cli):
    word, token = tmp_path / "word", tmp_path / "token"
    assert cli(run.main, [*FAST, "--top_k", "20", "--output_dir", str(word)])[0] == 0
    assert cli(run.main, [*FAST, "--top_k", "20", "--completions", "token", "--output_dir", str(token)])[0] == 0
    word_manifest = json.loads((word / "manifest.json").read_text(encoding="utf-8"))
    token_manifest = json.loads((token / "manifest.json").read_text(encoding="utf-8"))
    assert token_manifest["completions"] == {"mode": "token", "forward_passes": token_manifest["completions"][
        "forward_passes"]}
    assert word_manifest["lexicon_reach"]["en"] > 0.95 > 0.5 > token_manifest["lexicon_reach"]["en"] > 0.05
    sources = word_manifest["completions"]["candidates"]["en"]["by_source"]
    assert set(sources) == {"lexicon", "lexicon_form", "frequent"} and all(n > 1000 for n in sources.values())
    candidates = pd.read_parquet(word / "candidates.parquet")
    assert len(candidates) == word_manifest["completions"]["candidates"]["en"]["n"]
    assert (candidates["n_pieces"] > 1).mean() > 0.5  # most English words are several tokens
    predictions = read_predictions(word)
    assert set(predictions["word"].astype(str)) <= set(candidates["word"])
    # random weights: every log p is ~log(1/250002) per piece, so one-piece words win raw scoring
    assert (predictions["n_pieces"] == 1).all()


def test_word_mode_typicality_runs_and_scores_are_differences(tmp_path, word_list, cli):
    out = tmp_path / "run"
    code, _, stderr = cli(run.main, [*FAST, "--top_k", "5", "--scoring", "typicality", "--typicality_pool", "20",
                                     "--candidates", f"en={word_list}", "--output_dir", str(out)])
    assert code == 0, stderr
    predictions = read_predictions(out)
    per_sentence = predictions.groupby("sentence", observed=True)["score"]
    assert (per_sentence.apply(lambda s: list(s) == sorted(s, reverse=True))).all()
    assert not (predictions["score"] == predictions["log_prob"]).all()


def test_word_mode_resumes_after_ctrl_c(tmp_path, word_list, monkeypatch, cli):
    args = [*FAST, "--categories", "gender", "religion", "--top_k", "8", "--shard_sentences", "60",
            "--candidates", f"en={word_list}"]
    reference = tmp_path / "reference"
    assert cli(run.main, [*args, "--output_dir", str(reference)])[0] == 0
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 1)
    assert cli(run.main, [*args, "--output_dir", str(out)])[0] == run.INTERRUPTED_EXIT_CODE
    monkeypatch.undo()
    code, _, stderr = cli(run.main, [*args, "--output_dir", str(out)])
    assert code == 0, stderr
    assert "resuming: 1 of" in stderr
    assert (out / "profiles.csv").read_bytes() == (reference / "profiles.csv").read_bytes()
    pd.testing.assert_frame_equal(read_predictions(out), read_predictions(reference))


def test_a_changed_candidate_list_starts_over(tmp_path, word_list, multi_piece_words, monkeypatch, cli):
    args = [*FAST, "--top_k", "8", "--shard_sentences", "30"]
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 1)
    assert cli(run.main, [*args, "--candidates", f"en={word_list}", "--output_dir", str(out)])[0] == 130
    monkeypatch.undo()
    shorter = tmp_path / "shorter.txt"
    shorter.write_text("\n".join(multi_piece_words[:20]), encoding="utf-8")
    code, _, stderr = cli(run.main, [*args, "--candidates", f"en={shorter}", "--output_dir", str(out)])
    assert code == 0, stderr
    assert "discarding 1 shard file(s)" in stderr and "completions.candidates.en" in stderr


def test_a_candidate_longer_than_max_pieces_is_counted_not_fatal(tmp_path, word_list, multi_piece_words, cli):
    out = tmp_path / "run"
    code, _, stderr = cli(run.main, [*FAST, "--top_k", "3", "--max_pieces", "2", "--candidates",
                                     f"en={word_list}", "--output_dir", str(out)])
    assert code == 0, stderr
    filters = pd.read_csv(out / "filters.csv", keep_default_na=False).set_index(["stage", "outcome"])
    too_long = int(filters.loc[("candidates", "too_many_pieces"), "n"])
    kept = int(filters.loc[("candidates", "kept"), "n"])
    assert too_long > 0 and kept + too_long == len(multi_piece_words)
    assert (read_predictions(out)["n_pieces"] <= 2).all()


def _bad_list(tmp_path: Path, kind: str) -> str:
    path = tmp_path / f"{kind}.txt"
    if kind == "missing":
        return str(path)
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_text("# nothing\n\n", encoding="utf-8")
    elif kind == "latin1":
        path.write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    elif kind == "greek":
        path.write_text("καλός\nκακός\nωραίος\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "latin1", "greek"])
def test_a_bad_candidate_list_is_one_line_and_exit_2(tiny_dir, tmp_path, kind, cli):
    out = tmp_path / "run"
    code, stdout, stderr = cli(run.main, [*FAST, "--candidates", f"en={_bad_list(tmp_path, kind)}",
                                          "--output_dir", str(out)])
    lines = [line for line in stderr.splitlines() if line.strip() and "random weights" not in line]
    assert code == 2 and len(lines) == 1, stderr
    assert "Traceback" not in stderr and not out.exists() and not list(tmp_path.glob(".run*"))


@pytest.mark.parametrize("argv, message", [
    (["--candidates", "en=x.txt", "--completions", "token"], "--candidates needs --completions word"),
    (["--candidates", "x.txt"], "is not LANG=PATH"),
    (["--candidates", "fr=x.txt"], "not among --languages"),
    (["--candidates", "en=a.txt", "en=b.txt"], "names en twice"),
    (["--max_pieces", "0"], "--max_pieces must be at least 1"),
    (["--shortlist_factor", "0.5"], "--shortlist_factor must be at least 1"),
    (["--frequent_words", "-1"], "--frequent_words must be 0 or more"),
])
def test_bad_word_mode_options(tmp_path, argv, message, cli):
    code, _, stderr = cli(run.main, [*FAST, *argv, "--output_dir", str(tmp_path / "run")])
    assert code == 2 and message in stderr and "Traceback" not in stderr


def test_top_k_above_the_candidate_set_is_refused(tiny_dir, tmp_path, word_list, multi_piece_words, cli):
    out = tmp_path / "run"
    code, _, stderr = cli(run.main, [*FAST, "--top_k", str(len(multi_piece_words) + 1), "--candidates",
                                     f"en={word_list}", "--output_dir", str(out)])
    assert code == 2 and f"the {len(multi_piece_words)} candidate words of en" in stderr
    assert not out.exists()
