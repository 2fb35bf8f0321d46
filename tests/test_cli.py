"""`python -m probing.run` end to end on tiny-xlmr, and every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from probing import run
from probing.engine import onednn_linear_available
from probing.lexicon import EMOTIONS
from probing.manifest import AtomicFolder
from probing.predictions import read_predictions
from probing.prompts import PROMPTS_DIR
from probing.words import DROP_REASONS

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--model", "tiny-xlmr", "--completions", "token", "--languages", "en", "fr", "--categories", "gender", "country",
         "--top_k", "30", "--quiet"]


def test_end_to_end_outputs(tiny_dir, tmp_path, cli):
    out_dir = tmp_path / "run"
    code, stdout, stderr = cli(run.main, [*SMALL, "--output_dir", str(out_dir)])
    assert code == 0, stderr
    assert str(out_dir) in stdout
    assert "random weights" in stderr
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "filters.csv", "manifest.json", "predictions.parquet", "profiles.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left behind

    predictions = read_predictions(out_dir)
    assert list(predictions.columns) == run.PREDICTION_COLUMNS
    assert str(predictions["rank"].dtype) == "int16" and str(predictions["log_prob"].dtype) == "float32"
    assert isinstance(predictions["sentence"].dtype, pd.CategoricalDtype)
    per_sentence = predictions.groupby(["language", "group_id", "template_id"])["rank"]
    assert (per_sentence.count() == 30).all() and (per_sentence.min() == 1).all()
    assert set(predictions["language"]) == {"en", "fr"}
    assert set(predictions["category"]) == {"gender", "country"}
    assert predictions["sentence"].str.count("<mask>").eq(1).all()
    kept = predictions[predictions["kept"]]
    assert kept["token"].str.startswith("▁").all()
    assert (kept["drop_reason"] == "").all()
    assert set(predictions.loc[~predictions["kept"], "drop_reason"]) <= set(DROP_REASONS)
    assert set(predictions.loc[~predictions["kept"], "drop_reason"]) >= {"not_word_start", "not_a_word"}
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert predictions["token"].astype(str).tolist() == tokenizer.convert_ids_to_tokens(
        predictions["token_id"].tolist())

    profiles = pd.read_csv(out_dir / "profiles.csv")
    assert list(profiles.columns) == run.PROFILE_COLUMNS
    assert not profiles.duplicated(["language", "group_id"]).any()
    assert len(profiles) == predictions.groupby(["language", "group_id"]).ngroups
    values = profiles[list(EMOTIONS)].to_numpy()
    assert ((values >= 0) & (values <= 1) | pd.isna(values)).all()
    n_words = kept.assign(w=kept["word"].astype(str).str.lower()).groupby(
        ["language", "group_id"], observed=True)["w"].nunique()
    merged = profiles.set_index(["language", "group_id"])["n_words"]
    assert (merged.loc[n_words.index] == n_words).all()
    assert (profiles["n_emotional"] == profiles["n_covered"]).all()  # EmoAtlas lists emotional words only

    filters = pd.read_csv(out_dir / "filters.csv", keep_default_na=False)
    counts = predictions.assign(outcome=predictions["drop_reason"].astype(str).replace("", "kept")).groupby(
        ["language", "outcome"], observed=True).size()
    for row in filters.itertuples():
        assert row.n == counts.get((row.language, row.outcome), 0)
    assert filters.groupby("language")["share"].sum().round(9).eq(1).all()

    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["random_weights"] is True
    assert manifest["model"]["name"] == "tiny-xlmr"
    assert manifest["model"]["onednn_linears"] is onednn_linear_available()
    assert manifest["parameters"]["top_k"] == 30
    assert manifest["seed"] == 0
    assert set(manifest["prompts"]) == {"en", "fr"} and len(manifest["prompts"]["fr"]["sha256"]) == 64
    assert manifest["lexicon"]["fr"]["source"] == "emoatlas"
    assert manifest["env"]["packages"]["transformers"]
    assert "commit" in manifest["env"]["git"]
    assert manifest["outputs"]["predictions.parquet"]["rows"] == len(predictions)
    assert manifest["kept_share"]["fr"] == pytest.approx(predictions.loc[predictions["language"] == "fr", "kept"].mean())
    assert manifest["word_lists"]["fr"]["min_zipf"] == 2.5
    assert "kept candidates" in stdout and "fr " in stdout


def test_typicality_and_probability_run(tiny_dir, tmp_path, cli):
    out_dir = tmp_path / "typ"
    code, _, stderr = cli(run.main, [*SMALL, "--scoring", "typicality", "--weighting", "probability",
                              "--output_dir", str(out_dir)])
    assert code == 0, stderr
    predictions = read_predictions(out_dir)
    first = predictions.groupby(["language", "group_id", "template_id"], observed=True).head(30)
    assert (first.groupby(["language", "group_id", "template_id"], observed=True)["score"].apply(
        lambda s: s.is_monotonic_decreasing)).all()
    assert (predictions["score"] != predictions["log_prob"]).any()


def copy_prompts(tmp_path):
    target = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, target)
    return target


def break_template(prompts_dir):
    path = prompts_dir / "fr.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("{mask}")
    path.write_text(text[:start] + "???" + text[start + len("{mask}"):], encoding="utf-8")
    return path


@pytest.mark.parametrize("case", [
    "template_without_slot", "unknown_language", "unknown_category", "missing_lexicon",
    "malformed_lexicon", "lexicon_is_a_folder", "unknown_model", "unreachable_hub", "unwritable_output",
    "top_k_zero", "min_zipf_out_of_range", "shard_sentences_zero", "wrong_flag",
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tiny_dir, tmp_path, cli):
    out_dir = tmp_path / "out"
    argv = [*SMALL, "--output_dir", str(out_dir)]
    expected = {
        "template_without_slot": "exactly one {mask}",
        "unknown_language": "unknown language 'xx'",
        "unknown_category": "unknown category 'hobbies'",
        "missing_lexicon": "not found",
        "malformed_lexicon": "not an NRC EmoLex table",
        "lexicon_is_a_folder": "is a folder; pass the NRC EmoLex file itself",
        "min_zipf_out_of_range": "--min_zipf must lie in [0, 8]",
        "shard_sentences_zero": "--shard_sentences must be at least 1",
        "unknown_model": "unknown model 'no-such-model'",
        "unreachable_hub": "--model PATH",
        "unwritable_output": "cannot write to",
        "top_k_zero": "--top_k must be at least 1",
        "wrong_flag": "unrecognized arguments: --colour",
    }[case]
    if case == "template_without_slot":
        argv += ["--prompts_dir", str(copy_prompts(tmp_path))]
        broken = break_template(tmp_path / "prompts")
        expected_file = str(broken)
    if case == "unknown_language":
        argv += ["--languages", "xx"]
    if case == "unknown_category":
        argv += ["--categories", "hobbies"]
    if case == "missing_lexicon":
        argv += ["--lexicon", f"nrc:{tmp_path / 'absent.txt'}"]
    if case == "malformed_lexicon":
        (tmp_path / "lex.txt").write_text("just some text\n", encoding="utf-8")
        argv += ["--lexicon", f"nrc:{tmp_path / 'lex.txt'}"]
    if case == "lexicon_is_a_folder":
        argv += ["--lexicon", f"nrc:{tmp_path}"]
    if case == "min_zipf_out_of_range":
        argv += ["--min_zipf", "9"]
    if case == "shard_sentences_zero":
        argv += ["--shard_sentences", "0"]
    if case == "unknown_model":
        argv = [a for a in argv if a not in ("--model", "tiny-xlmr")] + ["--finetuned_model", "no-such-model"]
    if case == "unreachable_hub":
        argv = [a for a in argv if a not in ("--model", "tiny-xlmr")] + ["--model", "no-org/no-such-model-xyz"]
    if case == "unwritable_output":
        (tmp_path / "a_file").write_text("", encoding="utf-8")
        out_dir = tmp_path / "a_file" / "out"
        argv += ["--output_dir", str(out_dir)]
    if case == "top_k_zero":
        argv += ["--top_k", "0"]
    if case == "wrong_flag":
        argv += ["--colour", "red"]
    code, stdout, stderr = cli(run.main, argv)
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert expected in lines[0]
    if case == "template_without_slot":
        assert expected_file in lines[0]
    if case == "unknown_model":
        assert "tiny-xlmr" in lines[0]  # lists what is available
    assert "Traceback" not in stderr
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_failure_while_writing_leaves_earlier_results_untouched(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "profiles.csv").write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with AtomicFolder(target) as staging:
            (staging / "profiles.csv").write_text("new, half", encoding="utf-8")
            raise RuntimeError("crash mid-write")
    assert (target / "profiles.csv").read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_module_entry_point_exit_code(tmp_path):
    """The real `python -m probing.run` process: exit 2 and no traceback."""
    proc = subprocess.run([sys.executable, "-m", "probing.run", "--top_k", "-3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --top_k must be at least 1, got -3"
