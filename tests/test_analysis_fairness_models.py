"""analysis.fairness --models: fine-tuned tiny multi-task models score the identity sets themselves, one
result folder per model, side by side with paired differences; finetune.predict's manifest names the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import one_line_error

from analysis import fairness as f
from finetune import predict, train
from finetune.config import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "finetune" / "configs"
SMALL = ["--languages", "en", "--categories", "religion", "--device", "cpu"]  # 10 groups, 200 sentences


@pytest.fixture(scope="module")
def pair(models_dir, tiny_dir):
    """Two tiny multi-task models with a toxicity head: ``tiny-multi-a`` trained for 2 steps from
    finetune/configs/multitask.yaml on tiny-xlmr, and ``tiny-multi-b``, a copy whose heads are perturbed
    (so its scores differ; training a second model would only cost time here)."""
    import safetensors.torch
    import torch

    config = load_config(CONFIGS / "multitask.yaml", {"base_model": "tiny-xlmr", "output_name": "tiny-multi-a",
                                                      "max_steps": 2, "batch_size": 8, "max_length": 24})
    a = train.run(config, overwrite=True)
    b = models_dir / "tiny-multi-b"
    shutil.copytree(a, b)
    heads = safetensors.torch.load_file(str(b / "heads.safetensors"))
    noise = torch.Generator().manual_seed(0)
    heads = {k: v + 0.5 * torch.randn(v.shape, generator=noise) for k, v in heads.items()}
    safetensors.torch.save_file(heads, str(b / "heads.safetensors"), metadata={"format": "pt"})
    return Path(a), b


@pytest.fixture(scope="module")
def results(pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("fair") / "out"
    code = f.main(["--models", "tiny-multi-a", "tiny-multi-b", "--compare", "--bootstrap", "60",
                   "--output_dir", str(out), *SMALL])
    assert code == 0
    return out


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_each_model_gets_its_own_folder_and_a_manifest_naming_it(pair, results):
    assert sorted(p.name for p in results.iterdir()) == ["fairness_tiny-multi-a", "fairness_tiny-multi-a_vs_tiny-multi-b",
                                                         "fairness_tiny-multi-b"]
    tables = {}
    for folder, name in zip(pair, ("tiny-multi-a", "tiny-multi-b")):
        run = results / f"fairness_{name}"
        assert sorted(p.name for p in run.iterdir()) == ["fairness.csv", "gaps.csv", "identity_set_scored.csv",
                                                         "manifest.json"]
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        model = manifest["model"]
        assert model["name"] == name and model["folder"] == str(folder.resolve())
        assert model["base_model"] == "tiny-xlmr" and model["random_weights"] is True
        assert model["task"] == "toxicity" and model["score_column"] == "toxicity_p"
        assert model["sha256"]["heads.safetensors"] == predict.sha256_file(folder / "heads.safetensors")
        assert manifest["inputs"][0]["languages"] == ["en"] and manifest["inputs"][0]["rows"] == 200
        tables[name] = read(run / "fairness.csv")
        assert list(tables[name].columns) == f.FAIRNESS_COLUMNS
    # the models score differently, so their folders hold different results (nothing was replaced)
    assert not np.allclose(tables["tiny-multi-a"]["value"], tables["tiny-multi-b"]["value"], equal_nan=True)


def test_scores_are_finetune_predicts_toxicity_p(pair, results, tmp_path, cli):
    scored = read(results / "fairness_tiny-multi-a" / "identity_set_scored.csv")
    source = tmp_path / "identity_set.csv"
    scored.drop(columns="toxicity_p").to_csv(source, index=False)
    output = tmp_path / "predicted.csv"
    code, _, err = cli(predict.main, ["--model", str(pair[0]), "--input", str(source), "--output", str(output),
                                      "--device", "cpu"])
    assert code == 0, err
    np.testing.assert_allclose(scored["toxicity_p"], read(output)["toxicity_p"], rtol=1e-5, atol=1e-6)
    # the same file through the predictions-file path gives the model folder's fairness table
    code, _, err = cli(f.main, [str(output), "--score_column", "toxicity_p", "--bootstrap", "60",
                                "--output_dir", str(tmp_path / "from_file")])
    assert code == 0, err
    pd.testing.assert_frame_equal(read(tmp_path / "from_file" / "fairness.csv"),
                                  read(results / "fairness_tiny-multi-a" / "fairness.csv"), rtol=1e-4, atol=1e-5)


def test_side_by_side_is_paired_and_matches_each_models_run(results):
    comparison = read(results / "fairness_tiny-multi-a_vs_tiny-multi-b" / "fairness_comparison.csv")
    assert list(comparison.columns) == f.COMPARISON_COLUMNS
    assert set(comparison["model_a"]) == {"tiny-multi-a"} and set(comparison["model_b"]) == {"tiny-multi-b"}
    for side, name in (("a", "tiny-multi-a"), ("b", "tiny-multi-b")):
        own = read(results / f"fairness_{name}" / "fairness.csv")
        # the same rows, values and intervals: the paired resamples are each model's own draws
        np.testing.assert_allclose(comparison[f"value_{side}"], own["value"])
        np.testing.assert_allclose(comparison[f"ci_low_{side}"], own["ci_low"])
        np.testing.assert_allclose(comparison[f"ci_high_{side}"], own["ci_high"])
    np.testing.assert_allclose(comparison["difference"], comparison["value_b"] - comparison["value_a"])
    defined = comparison.dropna(subset=["difference_ci_low"])
    assert len(defined) == len(comparison)  # 10 + 10 sentences per group: every interval is defined
    assert ((defined["difference_ci_low"] <= defined["difference"] + 1e-12)
            & (defined["difference"] <= defined["difference_ci_high"] + 1e-12)).all()
    manifest = json.loads((results / "fairness_tiny-multi-a_vs_tiny-multi-b" / "manifest.json").read_text("utf-8"))
    assert [m["name"] for m in manifest["models"]] == ["tiny-multi-a", "tiny-multi-b"]


def test_paired_bootstrap_of_one_model_twice_gives_zero_differences():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 30)
    s = rng.random(60)
    groups = [np.arange(0, 20), np.arange(20, 40)]
    strata = f.strata_of(y, groups, 60)
    a, b = f.paired_bootstrap_metrics(y, [s, s], groups, n_bootstrap=40, strata=strata, seed=5)
    single = f.bootstrap_metrics(y, s, groups, n_bootstrap=40, strata=strata, seed=5)
    for key in single:
        np.testing.assert_array_equal(a[key], single[key])
        np.testing.assert_array_equal(a[key], b[key])
    # a different second model on the same draws: each replicate of b is b's metric on the same counts
    other = np.where(y == 1, s + 0.3, s)
    a, b = f.paired_bootstrap_metrics(y, [s, other], groups, n_bootstrap=40, strata=strata, seed=5)
    np.testing.assert_array_equal(b["roc_auc"], f.bootstrap_metrics(y, other, groups, n_bootstrap=40, strata=strata,
                                                                     seed=5)["roc_auc"])
    assert (b["roc_auc"] >= a["roc_auc"]).all()  # raising every toxic score never lowers a replicate's AUC


def test_a_second_run_replaces_only_its_own_folder_and_only_with_overwrite(pair, tmp_path, cli):
    out = tmp_path / "out"
    argv = ["--models", "tiny-multi-a", "--bootstrap", "0", "--output_dir", str(out), *SMALL]
    assert cli(f.main, argv)[0] == 0
    assert cli(f.main, ["--models", "tiny-multi-b", *argv[2:]])[0] == 0  # the other model: its own folder
    before = (out / "fairness_tiny-multi-b" / "fairness.csv").read_bytes()
    line = one_line_error(*cli(f.main, argv)[::2])
    assert "pass --overwrite" in line
    assert cli(f.main, [*argv, "--overwrite"])[0] == 0
    assert (out / "fairness_tiny-multi-b" / "fairness.csv").read_bytes() == before


def _copy_with_tasks(source: Path, target: Path, edit) -> Path:
    shutil.copytree(source, target)
    spec = json.loads((target / "tasks.json").read_text(encoding="utf-8"))
    spec["tasks"] = edit(spec["tasks"])
    (target / "tasks.json").write_text(json.dumps(spec), encoding="utf-8")
    return target


@pytest.mark.parametrize("case", ["no_toxicity_head", "not_binary", "same_name", "compare_one", "run_name",
                                  "unknown_language"])
def test_bad_model_input_is_one_line_exit_2_and_writes_nothing(case, pair, tmp_path, cli):
    out = tmp_path / "out"
    models = ["tiny-multi-a"]
    extra = []
    if case == "no_toxicity_head":
        models = [str(_copy_with_tasks(pair[0], tmp_path / "no-tox", lambda t: [x for x in t if x["name"] != "toxicity"]))]
        expected = "has no 'toxicity' task (its tasks: sentiment, emotion, entities); pass --task"
    elif case == "not_binary":
        extra = ["--task", "sentiment"]
        expected = "task 'sentiment' of model 'tiny-multi-a' is multiclass, not binary"
    elif case == "same_name":
        (tmp_path / "elsewhere").mkdir()
        models = ["tiny-multi-a", str(shutil.copytree(pair[0], tmp_path / "elsewhere" / "tiny-multi-a"))]
        expected = "two of --models are named 'tiny-multi-a'"
    elif case == "compare_one":
        extra = ["--compare"]
        expected = "--compare needs two or more --models"
    elif case == "run_name":
        extra = ["--run_name", "x"]
        expected = "--run_name names one folder"
    else:
        extra = ["--languages", "xx"]
        expected = "no identity frames for 'xx'"
    argv = ["--models", *models, "--bootstrap", "10", "--output_dir", str(out), *SMALL, *extra]
    line = one_line_error(*cli(f.main, argv)[::2])
    assert expected in line
    assert not out.exists()


def test_predict_writes_one_folder_per_model_and_never_replaces_another_models_file(pair, tmp_path, monkeypatch,
                                                                                    cli):
    monkeypatch.setattr(predict, "PREDICTIONS_DIR", tmp_path / "predictions")
    source = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["I hate them.", "I work with them."]}).to_csv(source, index=False)
    written = {}
    for folder in pair:
        code, _, err = cli(predict.main, ["--model", folder.name, "--input", str(source), "--device", "cpu"])
        assert code == 0, err
        output = tmp_path / "predictions" / folder.name / "texts.csv"
        manifest = json.loads(predict.sidecar_manifest(output).read_text(encoding="utf-8"))["model"]
        assert manifest["name"] == folder.name and manifest["folder"] == str(folder.resolve())
        assert manifest["base_model"] == "tiny-xlmr" and manifest["random_weights"] is True
        assert manifest["sha256"]["heads.safetensors"] == predict.sha256_file(folder / "heads.safetensors")
        written[folder.name] = output.read_bytes()
    assert written["tiny-multi-a"] != written["tiny-multi-b"]
    # model b into model a's file: refused even with --overwrite, a's file untouched
    a_file = tmp_path / "predictions" / "tiny-multi-a" / "texts.csv"
    line = one_line_error(*cli(predict.main, ["--model", "tiny-multi-b", "--input", str(source), "--output",
                                              str(a_file), "--overwrite", "--device", "cpu"])[::2])
    assert "holds the predictions of model" in line and "pass --output with a new file name" in line
    assert a_file.read_bytes() == written["tiny-multi-a"]
    # the same model may replace its own file with --overwrite
    assert cli(predict.main, ["--model", "tiny-multi-a", "--input", str(source), "--overwrite", "--device", "cpu"])[0] == 0


def test_figures_draw_the_side_by_side_forest_plot_and_report_section(results, tmp_path, cli):
    from analysis import figures

    comparison = results / "fairness_tiny-multi-a_vs_tiny-multi-b"
    out = tmp_path / "fig"
    code, _, err = cli(figures.main, [str(comparison), "--formats", "png", "--output_dir", str(out)])
    assert code == 0, err
    names = sorted(p.name for p in (out / "figures").iterdir())
    label = comparison.name
    assert names == [f"fairness_comparison_groups_{label}_en.png", f"fairness_comparison_languages_{label}.png"]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "### Toxicity fairness side by side" in report
    table = read(comparison / "fairness_comparison.csv")
    auc = table[(table["scope"] == "language") & (table["metric"] == "roc_auc")].iloc[0]
    row = next(line for line in report.splitlines() if line.startswith("| en | roc_auc |"))
    assert (f"| {auc['value_a']:.3f} | {auc['value_b']:.3f} | {auc['difference']:.3f} "
            f"[{auc['difference_ci_low']:.3f}, {auc['difference_ci_high']:.3f}] |") in row
    drawn = figures.forest_data(figures.comparison_forest_table(table[table["scope"] == "language"]), ["en"],
                                "language", ("roc_auc",))
    assert drawn["value"].iloc[0] == pytest.approx(auc["difference"])
