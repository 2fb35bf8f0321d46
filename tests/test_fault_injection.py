"""Fault injection: no command loses a user's file, and every bad input is one line and exit code 2.

Each writing command (``probing.run``, ``finetune.train``, ``finetune.predict`` and the analysis
commands) is pointed at a place that holds something it did not write: a user's folder, a file,
another command's results, its own earlier result with a user's file added. Each must refuse
with one line naming the fix, before any work, and leave everything as it was (no parent folder
made, nothing renamed). Its own earlier result is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from analysis import correlate, fairness, figures, identity_sets, recall
from finetune import train
from probing import run as probe
from analysis_helpers import one_line_error, profiles, write_run

PROBE = ["--model", "tiny-xlmr", "--completions", "token", "--languages", "en", "--categories", "religion", "--top_k", "20", "--quiet"]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content's sha256 (folders as ``dir``)."""
    return {p.relative_to(root).as_posix(): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_dir):
    """Small valid inputs for every command: two profile folders, one probing run, a scored identity set."""
    root = tmp_path_factory.mktemp("inputs")
    base = write_run(root / "base", profiles(0))
    other = write_run(root / "other", profiles(1))
    run_dir = root / "probe"
    assert probe.main([*PROBE, "--output_dir", str(run_dir)]) == 0
    assert identity_sets.main(["--languages", "en", "--categories", "religion", "--output_dir",
                               str(root / "ids")]) == 0
    import pandas as pd

    scored = pd.read_csv(root / "ids" / "identity_set.csv")
    scored["score"] = (scored["label"] * 0.6 + (scored.index % 7) / 20).clip(0, 1)
    scored.to_csv(root / "scored.csv", index=False)
    return {"base": base, "other": other, "run": run_dir, "scored": root / "scored.csv"}


# command name -> (main, the arguments before --output_dir)
def commands(inputs) -> dict:
    return {
        "probing.run": (probe.main, PROBE),
        "analysis.correlate": (correlate.main, [str(inputs["base"]), str(inputs["other"]), "--permutations", "0",
                                                "--bootstrap", "0"]),
        "analysis.recall": (recall.main, [str(inputs["run"]), "--bootstrap", "0"]),
        "analysis.figures": (figures.main, [str(inputs["base"])]),
        "analysis.fairness": (fairness.main, [str(inputs["scored"]), "--bootstrap", "0"]),
        "analysis.identity_sets": (identity_sets.main, ["--languages", "en", "--categories", "religion"]),
    }


COMMANDS = ["probing.run", "analysis.correlate", "analysis.recall", "analysis.figures", "analysis.fairness",
            "analysis.identity_sets"]


def refused(cli, main, argv, root: Path) -> str:
    """Run a command that must be refused; assert it changed nothing under ``root``; return its line."""
    before = snapshot(root)
    line = one_line_error(*cli(main, argv)[::2])
    assert snapshot(root) == before
    return line


@pytest.mark.parametrize("name", COMMANDS)
def test_a_users_folder_survives_every_command(name, inputs, tmp_path, cli):
    main, argv = commands(inputs)[name]
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\chapter{Results}\n", encoding="utf-8")
    line = refused(cli, main, [*argv, "--output_dir", str(thesis), "--overwrite"], tmp_path)
    assert "thesis.tex" in line and "is not a result folder" in line and "--output_dir" in line


@pytest.mark.parametrize("name", COMMANDS)
def test_an_output_dir_that_is_a_file_is_refused(name, inputs, tmp_path, cli):
    main, argv = commands(inputs)[name]
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    line = refused(cli, main, [*argv, "--output_dir", str(tmp_path / "notes.txt"), "--overwrite"], tmp_path)
    assert "is a file" in line


@pytest.mark.parametrize("name", COMMANDS)
def test_another_commands_results_are_refused(name, inputs, tmp_path, cli):
    main, argv = commands(inputs)[name]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "table.csv").write_text("a\n1\n", encoding="utf-8")
    writer = "analysis.recall" if name != "analysis.recall" else "analysis.correlate"
    (foreign / "manifest.json").write_text(json.dumps({"command": ["python", "-m", writer],
                                                      "outputs": {"table.csv": {}}}), encoding="utf-8")
    line = refused(cli, main, [*argv, "--output_dir", str(foreign), "--overwrite"], tmp_path)
    assert f"results of {writer}, not of {name}" in line


@pytest.mark.parametrize("name", COMMANDS)
def test_an_earlier_result_is_replaced_only_with_overwrite_and_only_when_it_holds_nothing_else(
        name, inputs, tmp_path, cli):
    main, argv = commands(inputs)[name]
    out = tmp_path / "out"
    code, _, stderr = cli(main, [*argv, "--output_dir", str(out)])
    assert code == 0, stderr
    line = refused(cli, main, [*argv, "--output_dir", str(out)], tmp_path)
    assert "--overwrite" in line and "earlier result" in line
    first = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["created"]

    code, _, stderr = cli(main, [*argv, "--output_dir", str(out), "--overwrite"])
    assert code == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or backup folder left behind
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["created"] >= first

    (out / "my_notes.md").write_text("keep me\n", encoding="utf-8")
    line = refused(cli, main, [*argv, "--output_dir", str(out), "--overwrite"], tmp_path)
    assert "my_notes.md" in line


@pytest.mark.parametrize("name", COMMANDS)
def test_an_empty_folder_is_used(name, inputs, tmp_path, cli):
    main, argv = commands(inputs)[name]
    (tmp_path / "empty").mkdir()
    code, _, stderr = cli(main, [*argv, "--output_dir", str(tmp_path / "empty")])
    assert code == 0, stderr
    assert (tmp_path / "empty" / "manifest.json").is_file()


@pytest.mark.parametrize("name", COMMANDS)
def test_a_refused_run_leaves_no_parent_folders(name, inputs, tmp_path, cli):
    main, argv = commands(inputs)[name]
    bad = {"probing.run": ["--top_k", "0"], "analysis.identity_sets": ["--languages", "xx"]}.get(name, ["--bootstrap", "-1"])
    if name == "analysis.figures":
        bad = ["--forest_groups", "0"]
    refused(cli, main, [*argv, *bad, "--output_dir", str(tmp_path / "new" / "nested" / "out")], tmp_path)


def test_top_k_above_the_vocabulary_is_refused_after_the_model_loads_with_nothing_left(tiny_dir, tmp_path, cli):
    line = refused(cli, probe.main, [*PROBE, "--top_k", "10000000", "--output_dir", str(tmp_path / "a" / "out")],
                   tmp_path)
    assert "--top_k 10000000" in line and "250002 tokens" in line and "--top_k 250002 or less" in line


@pytest.mark.parametrize("main,argv", [
    (probe.main, PROBE),
    (correlate.main, ["BASE", "OTHER"]),
    (figures.main, ["BASE"]),
    (fairness.main, ["SCORED"]),
])
@pytest.mark.parametrize("name", ["../../../x", "a/b", ".hidden", "", "x y"])
def test_run_names_are_plain_folder_names(main, argv, name, inputs, tmp_path, cli, monkeypatch):
    argv = [{"BASE": str(inputs["base"]), "OTHER": str(inputs["other"]), "SCORED": str(inputs["scored"])}.get(a, a)
            for a in argv]
    monkeypatch.chdir(tmp_path)
    line = refused(cli, main, [*argv, "--run_name", name], tmp_path.parent)
    assert "--run_name" in line and "plain folder name" in line


def test_finetuned_model_names_cannot_leave_the_models_folder(models_dir, tmp_path, cli):
    line = refused(cli, probe.main, ["--finetuned_model", "../../x", "--languages", "en", "--output_dir",
                                     str(tmp_path / "out")], tmp_path)
    assert "--model PATH" in line


def test_finetune_output_name_on_a_users_folder_is_refused(models_dir, tiny_dir, tmp_path, cli):
    mine = models_dir / "my-model"
    mine.mkdir(exist_ok=True)
    (mine / "weights-i-made.safetensors").write_bytes(b"\x00" * 16)
    config = Path(__file__).resolve().parent.parent / "finetune" / "configs" / "english.yaml"
    line = refused(cli, train.main, ["--config", str(config), "--base_model", "tiny-xlmr", "--output_name", "my-model",
                                     "--overwrite"], models_dir)
    assert "weights-i-made.safetensors" in line and "--output_name" in line


@pytest.mark.parametrize("stage", ["computing", "writing"])
def test_ctrl_c_in_an_analysis_command_is_one_line_and_leaves_nothing(stage, inputs, tmp_path, cli, monkeypatch):
    import analysis._common as common

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(*((correlate, "run_tests", interrupt) if stage == "computing"
                          else (common, "write_json", interrupt)))
    main, argv = commands(inputs)["analysis.correlate"]
    code, _, stderr = cli(main, [*argv, "--output_dir", str(tmp_path / "new" / "out")])
    assert code == 130 and stderr == "interrupted; nothing was written\n"
    assert list(tmp_path.iterdir()) == []  # no result, no staging folder, no parent made for it
