"""analysis.compare_models: replicates against task_metrics, the paired bootstrap by hand and by simulation,
the command end to end on two tiny multi-task models, its figure and report section, and bad input."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from analysis_helpers import one_line_error
from scipy.stats import norm
from sklearn import metrics as skm
from test_finetune_train import synthetic_config, write_synthetic

from analysis import compare_models, figures
from analysis._common import rng_for
from analysis.compare_models import percentile_interval, replicate_metrics, resample_counts
from finetune import train
from finetune.config import load_config
from finetune.metrics import task_metrics

warnings.filterwarnings("ignore", message=".*undefined.*")

POLARITY = {"name": "polarity", "type": "binary", "dataset": "sentences", "label_column": "polarity"}
PLACES = {"name": "places", "type": "token", "dataset": "entities", "label_column": "tags",
          "labels": ["O", "B-LOC", "I-LOC"]}
TINY_RUN = {"max_steps": 2, "eval_steps": 2, "max_length": 16, "logging_steps": 1}


# ---- replicates equal task_metrics on the resampled rows ----------------------------------------

def _rows(counts_row):
    return np.repeat(np.arange(len(counts_row)), counts_row.astype(int))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multiclass2", "multilabel", "token_bio", "token_tags"])
def test_replicates_equal_task_metrics_on_resampled_rows(kind):
    rng = np.random.default_rng(1)
    n = 12
    if kind == "binary":
        labels, y, s = ["no", "yes"], rng.integers(0, 2, n).astype(float), np.round(rng.random(n), 1)  # ties
    elif kind.startswith("multiclass"):
        k = 3 if kind == "multiclass" else 2
        labels, y, s = list("abc"[:k]), rng.integers(0, k, n), rng.dirichlet(np.ones(k), n)
    elif kind == "multilabel":
        labels, y, s = ["a", "b", "c"], rng.integers(0, 2, (n, 3)).astype(float), np.round(rng.random((n, 3)), 1)
    else:
        labels = ["O", "B-LOC", "I-LOC"] if kind == "token_bio" else ["x", "y", "z"]
        y = [list(rng.integers(0, 3, rng.integers(2, 6))) for _ in range(n)]
        s = [[int(t) if rng.random() < 0.7 else int(rng.integers(0, 3)) for t in seq] for seq in y]
    task = kind.split("_")[0].rstrip("2")
    checked = 0
    for counts in resample_counts([np.arange(n)], n, 30, np.random.default_rng(3)):
        fast = replicate_metrics(task, labels, y, s, counts)
        for b in range(len(counts)):
            rows = _rows(counts[b])
            pick = (lambda v: [v[i] for i in rows]) if task == "token" else (lambda v: np.asarray(v)[rows])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = task_metrics(task, labels, pick(y), pick(s))
            for metric, values in fast.items():
                assert values[b] == pytest.approx(expected[metric], abs=1e-12, nan_ok=True), (metric, b)
                checked += 1
    assert checked >= 60


def test_resample_counts_draw_within_each_stratum():
    strata = [np.array([0, 2, 4]), np.array([1, 3])]
    for counts in resample_counts(strata, 5, 40, np.random.default_rng(0), chunk=16):
        assert (counts[:, [0, 2, 4]].sum(axis=1) == 3).all() and (counts[:, [1, 3]].sum(axis=1) == 2).all()


# ---- the paired bootstrap, by hand ----------------------------------------------------------------

def test_paired_bootstrap_of_an_accuracy_difference_by_hand():
    # five rows; model a is right on rows 0, 1, 2 and 4 (accuracy 4/5), model b on rows 0, 1 and 4 (3/5)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    a = np.array([0.9, 0.2, 0.8, 0.3, 0.1])
    b = np.array([0.7, 0.4, 0.3, 0.2, 0.4])
    counts = np.array([[2, 0, 1, 1, 1],    # rows 0 0 2 3 4: a right 4/5, b right 3/5 -> difference 0.2
                       [0, 1, 2, 2, 0],    # rows 1 2 2 3 3: a 3/5, b 1/5 -> 0.4
                       [1, 1, 0, 0, 3],    # rows 0 1 4 4 4: a 5/5, b 5/5 -> 0.0
                       [0, 0, 0, 5, 0]], dtype=float)  # row 3 five times: a 0, b 0 -> 0.0
    acc_a = replicate_metrics("binary", ["0", "1"], y, a, counts)["accuracy"]
    acc_b = replicate_metrics("binary", ["0", "1"], y, b, counts)["accuracy"]
    assert acc_a.tolist() == pytest.approx([0.8, 0.6, 1.0, 0.0])
    assert acc_b.tolist() == pytest.approx([0.6, 0.2, 1.0, 0.0])
    difference = acc_a - acc_b
    assert difference.tolist() == pytest.approx([0.2, 0.4, 0.0, 0.0])
    # the 25th and 75th percentiles of (0, 0, 0.2, 0.4) with linear interpolation: 0 and 0.25
    low, high, defined = percentile_interval(difference, 0.5)
    assert (low, high, defined) == (pytest.approx(0.0), pytest.approx(0.25), 4)


def test_compare_task_equals_a_direct_numpy_and_sklearn_computation():
    rng = np.random.default_rng(5)
    n = 40
    y = rng.integers(0, 2, n).astype(float)
    languages = ["en"] * 25 + ["fr"] * 15
    scores = {"ref": np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1), "other": rng.random(n)}
    task = compare_models.TaskData("tox", "binary", ["0", "1"], list(y), {m: list(v) for m, v in scores.items()},
                                   languages)
    rows = pd.DataFrame(compare_models.compare_task(task, ["ref", "other"], "ref", n_bootstrap=200, confidence=0.9,
                                                    seed=7))
    # the same draws in plain numpy: en's rows, then each language's rows within that language for "all"
    for language, strata in (("en", [np.arange(25)]), ("all", [np.arange(25), np.arange(25, 40)])):
        local = np.arange(25) if language == "en" else np.arange(40)
        generator = rng_for(7, "compare_models", "tox", language)
        draws = np.concatenate([np.concatenate([s[generator.integers(0, len(s), size=(200, len(s)))] for s in strata],
                                               axis=1)], axis=0)
        auc = {m: np.array([skm.roc_auc_score(y[local][d], scores[m][local][d]) for d in draws]) for m in scores}
        acc = {m: np.array([skm.accuracy_score(y[local][d], scores[m][local][d] >= 0.5) for d in draws])
               for m in scores}
        for metric, replicates in (("roc_auc", auc), ("accuracy", acc)):
            got = rows[(rows["language"] == language) & (rows["metric"] == metric)].set_index("model")
            point = {"roc_auc": skm.roc_auc_score, "accuracy": lambda t, s: skm.accuracy_score(t, s >= 0.5)}[metric]
            for model in scores:
                assert got.at[model, "value"] == pytest.approx(point(y[local], scores[model][local]))
                assert (got.at[model, "ci_low"], got.at[model, "ci_high"]) == pytest.approx(
                    tuple(np.percentile(replicates[model], [5, 95])))
            assert got.at["other", "difference"] == pytest.approx(got.at["other", "value"] - got.at["ref", "value"])
            assert (got.at["other", "diff_ci_low"], got.at["other", "diff_ci_high"]) == pytest.approx(
                tuple(np.percentile(replicates["other"] - replicates["ref"], [5, 95])))
            assert np.isnan(got.at["ref", "difference"]) and np.isnan(got.at["ref", "diff_ci_low"])


# ---- coverage of the paired interval, by simulation -----------------------------------------------

def paired_coverage(n_datasets: int, n_rows: int, n_bootstrap: int, *, mu=(1.2, 0.8), rho=0.6, seed=0) -> dict:
    """Coverage of the population AUC and accuracy differences by the paired percentile interval.

    Two classifiers score the same rows: ``s_m = mu_m y + sqrt(rho) z + sqrt(1 - rho) e_m`` with ``z`` shared
    (correlated errors), ``e_m``, ``z`` standard normal, ``y`` a fair coin. Then ``AUC_m = Phi(mu_m / sqrt(2))``
    and, at the threshold 0.5 on ``sigmoid(s)`` (``s >= 0``), ``accuracy_m = (Phi(mu_m) + 1/2) / 2``.
    """
    rng = np.random.default_rng(seed)
    truth = {"roc_auc": norm.cdf(mu[1] / np.sqrt(2)) - norm.cdf(mu[0] / np.sqrt(2)),
             "accuracy": (norm.cdf(mu[1]) - norm.cdf(mu[0])) / 2}
    hits = {k: 0 for k in truth}
    widths = {k: [] for k in truth}
    for d in range(n_datasets):
        y = rng.integers(0, 2, n_rows).astype(float)
        z = rng.standard_normal(n_rows)
        scores = {m: 1 / (1 + np.exp(-(mu[k] * y + np.sqrt(rho) * z + np.sqrt(1 - rho) * rng.standard_normal(n_rows))))
                  for k, m in enumerate(("a", "b"))}
        task = compare_models.TaskData("t", "binary", ["0", "1"], list(y), {m: list(v) for m, v in scores.items()},
                                       ["xx"] * n_rows)
        rows = pd.DataFrame(compare_models.compare_task(task, ["a", "b"], "a", n_bootstrap=n_bootstrap,
                                                        confidence=0.95, seed=d))
        for metric, value in truth.items():
            row = rows[(rows["language"] == "xx") & (rows["metric"] == metric) & (rows["model"] == "b")].iloc[0]
            hits[metric] += row["diff_ci_low"] <= value <= row["diff_ci_high"]
            widths[metric].append(row["diff_ci_high"] - row["diff_ci_low"])
    return {k: {"coverage": hits[k] / n_datasets, "width": float(np.mean(widths[k])), "true": float(truth[k])}
            for k in truth}


def test_paired_interval_covers_the_population_difference():
    result = paired_coverage(60, 200, 300)
    # nominal 0.95; 60 data sets: a coverage of 0.95 is below 0.85 with probability < 0.001
    assert result["roc_auc"]["coverage"] >= 0.85 and result["accuracy"]["coverage"] >= 0.85, result


# ---- the command end to end ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(models_dir, tiny_dir, tmp_path_factory):
    """Two tiny models on the same data and split: four tasks, and two of them (polarity, places)."""
    folder = tmp_path_factory.mktemp("compare-data")
    write_synthetic(folder)
    multi = train.run(load_config(synthetic_config(folder, output_name="cmp-multi", **TINY_RUN)), overwrite=True)
    two = train.run(load_config(synthetic_config(folder, output_name="cmp-two", tasks=[POLARITY, PLACES], seed=1,
                                                 **TINY_RUN)), overwrite=True)
    return {"data": folder, "multi": multi, "two": two}


@pytest.fixture(scope="module")
def compared(pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare-out") / "run"
    code = compare_models.main(["--models", str(pair["multi"]), str(pair["two"]), "--split", "validation",
                                "--bootstrap", "200", "--output_dir", str(out)])
    assert code == 0
    return out


def test_split_comparison_is_tidy_and_matches_sklearn_on_the_predictions(compared, pair):
    table = pd.read_csv(compared / "comparison.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == compare_models.COMPARISON_COLUMNS
    assert set(table["task"]) == {"polarity", "places"}  # the shared tasks only
    assert set(table["language"]) == {"en", "xx", "all"}
    assert set(table["model"]) == {"cmp-multi", "cmp-two"} and set(table["reference"]) == {"cmp-multi"}
    assert set(table[table["task"] == "places"]["metric"]) == {"accuracy", "entity_f1"}
    assert table.duplicated(["language", "task", "metric", "model"]).sum() == 0
    reference = table[table["model"] == "cmp-multi"]
    assert reference["difference"].isna().all() and reference["diff_ci_low"].isna().all()
    other = table[table["model"] == "cmp-two"].set_index(["language", "task", "metric"]).sort_index()
    ref = reference.set_index(["language", "task", "metric"])
    assert np.allclose(other["difference"], other["value"] - ref.loc[other.index, "value"], equal_nan=True)
    # the validation rows are those finetune.train held out: load_splits of the saved config
    from finetune.data import load_splits

    _, splits, _ = load_splits(load_config(pair["multi"] / "train_config.yaml"))
    sentences = next(s for s in splits if s.dataset == "sentences")
    labelled = sentences.table.frame.iloc[sentences.rows]["polarity"].notna().sum()
    predictions = pd.read_parquet(compared / "predictions.parquet")
    polarity = predictions[(predictions["task"] == "polarity") & (predictions["model"] == "cmp-two")]
    pooled = table[(table["task"] == "polarity") & (table["language"] == "all")]
    assert len(polarity) == labelled == int(pooled["n"].iloc[0])
    assert set(polarity["row"]) == {int(r) + 1 for r in sentences.rows
                                    if pd.notna(sentences.table.frame["polarity"].iat[int(r)])}
    for language, rows in [*polarity.groupby("language"), ("all", polarity)]:
        y = (rows["truth"] == "1").astype(int)
        got = other.loc[(language, "polarity")]
        assert got.at["accuracy", "value"] == pytest.approx(skm.accuracy_score(y, rows["score"] >= 0.5))
        assert got.at["roc_auc", "value"] == pytest.approx(skm.roc_auc_score(y, rows["score"]))
        assert got.at["macro_f1", "value"] == pytest.approx(skm.f1_score(y, rows["score"] >= 0.5, average="macro"))
    manifest = json.loads((compared / "manifest.json").read_text(encoding="utf-8"))
    first = manifest["models"][0]
    assert first["name"] == "cmp-multi" and first["base_model"] == "tiny-xlmr" and first["random_weights"] is True
    assert len(first["config_sha256"]) == 64 and manifest["reference"] == "cmp-multi"
    assert {i["data_set"] for i in manifest["inputs"]} == {"sentences", "entities"}
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])


def test_labelled_file_comparison_and_figures(pair, tmp_path, cli):
    out = tmp_path / "file"
    code, stdout, stderr = cli(compare_models.main, [
        "--models", str(pair["two"]), str(pair["multi"]), "--input", str(pair["data"] / "sentences.csv"),
        "--language_column", "lang", "--tasks", "polarity", "--bootstrap", "50", "--output_dir", str(out)])
    assert code == 0, stderr
    table = pd.read_csv(out / "comparison.csv", keep_default_na=False, na_values=[""])
    assert set(table["task"]) == {"polarity"} and set(table["reference"]) == {"cmp-two"}
    assert int(table[table["language"] == "all"]["n"].iloc[0]) == pd.read_csv(pair["data"] / "sentences.csv")[
        "polarity"].notna().sum()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"][0]["label_columns"] == {"polarity": "polarity"}
    report_dir = tmp_path / "figures"
    code, _, stderr = cli(figures.main, [str(out), "--formats", "png", "--output_dir", str(report_dir)])
    assert code == 0, stderr
    assert (report_dir / "figures" / "comparison_file_polarity.png").stat().st_size > 1000
    report = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "### Extrinsic comparison of models" in report
    assert "cmp-multi − cmp-two" in report and "figures/comparison_file_polarity.png" in report
    row = table[(table["language"] == "all") & (table["metric"] == "accuracy")
                & (table["model"] == "cmp-multi")].iloc[0]
    assert f"{row['value']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" in report
    assert f"{row['difference']:.3f} [{row['diff_ci_low']:.3f}, {row['diff_ci_high']:.3f}]" in report


# ---- bad input: one line, exit 2, nothing written ------------------------------------------------

def _copy_with(folder, tmp_path, name, edit):
    copy = tmp_path / name
    shutil.copytree(folder, copy)
    edit(copy)
    return copy


def _relabel(copy):
    spec = json.loads((copy / "tasks.json").read_text(encoding="utf-8"))
    spec["tasks"][0]["labels"] = ["negative", "positive"]
    (copy / "tasks.json").write_text(json.dumps(spec), encoding="utf-8")


def _other_split(copy):
    config = yaml.safe_load((copy / "train_config.yaml").read_text(encoding="utf-8"))
    config["datasets"]["sentences"]["validation_fraction"] = 0.3
    (copy / "train_config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.mark.parametrize("case", ["label_sets", "missing_column", "unknown_model", "held_out_rows", "reference",
                                  "token_without_words", "one_model"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, pair, tmp_path, cli):
    out = tmp_path / "out"
    two, multi = str(pair["two"]), str(pair["multi"])
    data = pair["data"] / "sentences.csv"
    if case == "label_sets":
        argv = ["--models", multi, str(_copy_with(pair["two"], tmp_path, "relabelled", _relabel)), "--split",
                "validation"]
        expected = "task 'polarity' differs between models"
    elif case == "missing_column":
        table = pd.read_csv(data).drop(columns=["polarity"])
        table.to_csv(tmp_path / "no_label.csv", index=False)
        argv = ["--models", two, multi, "--input", str(tmp_path / "no_label.csv"), "--language_column", "lang",
                "--tasks", "polarity"]
        expected = "no column 'polarity' with the labels of task 'polarity'"
    elif case == "unknown_model":
        argv = ["--models", two, "no-such-model", "--split", "validation"]
        expected = "unknown model 'no-such-model'"
    elif case == "held_out_rows":
        argv = ["--models", multi, str(_copy_with(pair["two"], tmp_path, "other-split", _other_split)), "--split",
                "validation"]
        expected = "held out different validation rows for task 'polarity'"
    elif case == "reference":
        argv = ["--models", two, multi, "--split", "validation", "--reference", "cmp-nothing"]
        expected = "--reference 'cmp-nothing' is not one of --models"
    elif case == "token_without_words":
        argv = ["--models", two, multi, "--input", str(data), "--language_column", "lang"]
        expected = "task 'places' tags words: pass --tokens_column"
    else:
        argv = ["--models", two, "--split", "validation"]
        expected = "two or more models"
    code, stdout, stderr = cli(compare_models.main, [*argv, "--bootstrap", "10", "--output_dir", str(out)])
    assert expected in one_line_error(code, stderr)
    assert stdout == "" and not out.exists()
