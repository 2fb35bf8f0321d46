"""`python -m analysis.correlate` end to end on small profile tables, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import GROUPS, one_line_error, profiles, write_run

from analysis import correlate, correlations
from probing.lexicon import EMOTIONS

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--permutations", "200", "--bootstrap", "200"]


@pytest.fixture
def runs(tmp_path):
    """base: random profiles in en and fr. ft: en identical to base (rows shuffled), fr unrelated,
    one base group missing, one group with an undefined profile."""
    base = profiles(seed=0)
    ft = profiles(seed=1)
    en = (ft["language"] == "en").to_numpy()
    ft.loc[en, list(EMOTIONS)] = base.loc[en, list(EMOTIONS)].to_numpy()
    ft = ft[~((ft["language"] == "fr") & (ft["group_id"] == "boys"))]
    ft.loc[(ft["language"] == "fr") & (ft["group_id"] == "hindus"), list(EMOTIONS)] = np.nan
    ft = ft.sample(frac=1, random_state=0)  # alignment must not depend on row order
    return write_run(tmp_path / "base", base), write_run(tmp_path / "ft", ft)


def run_ok(cli, argv):
    code, stdout, stderr = cli(correlate.main, argv)
    assert code == 0, stderr
    return stdout, stderr


def test_end_to_end_tables_alignment_and_manifest(runs, tmp_path, cli):
    base, ft = runs
    out = tmp_path / "out"
    stdout, stderr = run_ok(cli, [str(base), str(ft / "profiles.csv"), *FAST, "--output_dir", str(out)])
    assert str(out) in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "correlations.csv", "excluded.csv", "manifest.json", "per_group.csv", "shifts.csv"]
    table = pd.read_csv(out / "correlations.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == correlate.CORRELATION_COLUMNS
    assert set(table["comparison"]) == {"base vs ft"}
    assert set(table["method"]) == {"spearman", "rsa", "emotion"}
    assert set(table["category"]) == {"gender", "religion", "all"}
    assert set(table.loc[table["method"] == "emotion", "emotion"]) == set(EMOTIONS)

    # English profiles are identical: rho 1 and small p, whatever the row order of the file.
    en = table[(table["language"] == "en") & (table["method"] != "emotion")]
    assert np.allclose(en["rho"], 1.0)
    assert (en.loc[en["category"] == "all", "p"] <= 2 / 201).all()
    assert (en.loc[en["category"] == "all", "n_groups"] == len(GROUPS)).all()
    # French is unrelated, and 2 groups are out.
    fr_all = table[(table["language"] == "fr") & (table["category"] == "all") & (table["method"] == "spearman")]
    assert fr_all["n_groups"].item() == len(GROUPS) - 2
    assert fr_all["rho"].item() < 0.9
    # BH over every test of the run
    np.testing.assert_allclose(table["p_adjusted"], correlations.benjamini_hochberg(table["p"]), equal_nan=True)
    assert (table["ci_low"].dropna() <= table.loc[table["ci_low"].notna(), "rho"] + 1e-9).all()

    excluded = pd.read_csv(out / "excluded.csv", keep_default_na=False)
    reasons = dict(zip(excluded["group_id"], excluded["reason"]))
    assert reasons == {"boys": "only in base", "hindus": "undefined profile in ft (no covered word)"}
    assert "2 group(s)" in stderr and "excluded.csv" in stderr

    per_group = pd.read_csv(out / "per_group.csv")
    women = per_group[(per_group["language"] == "en") & (per_group["group_id"] == "women")]
    assert np.allclose(women["rho"], 1.0)
    shifts = pd.read_csv(out / "shifts.csv")
    assert np.allclose(shifts.loc[shifts["language"] == "en", "shift"], 0.0)

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["permutations"] == 200 and manifest["bootstrap"] == 200 and manifest["seed"] == 0
    assert [i["label"] for i in manifest["inputs"]] == ["base", "ft"]
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert manifest["parameters"]["rsa_diagonal"] == "exclude"
    assert "git" in manifest["env"] and manifest["outputs"]["correlations.csv"]["rows"] == len(table)


def test_reruns_are_identical_and_the_seed_matters(runs, tmp_path, cli):
    base, ft = runs
    paths = [tmp_path / name for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("0", "0", "1")):
        run_ok(cli, [str(base), str(ft), *FAST, "--seed", seed, "--output_dir", str(path)])
    first, second, other_seed = ((p / "correlations.csv").read_bytes() for p in paths)
    assert first == second
    assert first != other_seed


def test_rsa_diagonal_option_and_method_choice(runs, tmp_path, cli):
    base, ft = runs
    values = {}
    for diagonal in ("include", "exclude"):
        out = tmp_path / diagonal
        run_ok(cli, [str(base), str(ft), "--method", "rsa", "--rsa_diagonal", diagonal, *FAST, "--output_dir", str(out)])
        table = pd.read_csv(out / "correlations.csv")
        assert set(table["method"]) == {"rsa"}
        values[diagonal] = table.set_index(["language", "category"])["rho"]
    assert not np.allclose(values["include"].loc["fr"], values["exclude"].loc["fr"])


def test_cross_language_mode(runs, tmp_path, cli):
    base, _ = runs
    out = tmp_path / "languages"
    run_ok(cli, [str(base), "--mode", "languages", "--reference_language", "en", *FAST, "--output_dir", str(out)])
    table = pd.read_csv(out / "correlations.csv")
    assert set(table["comparison"]) == {"base: en vs fr"}
    assert set(table["language"]) == {"fr"}
    assert set(table["reference"]) == {"base/en"} and set(table["other"]) == {"base/fr"}


def test_cross_language_mode_warns_about_runs_probed_on_single_tokens(runs, tmp_path, cli):
    """A token-mode run (its manifest lacks ``completions``, as every run made before whole-word mode) is one
    warning line in --mode languages, recorded in the manifest; a word-mode run is none; --mode models none."""
    base, ft = runs
    (ft / "manifest.json").write_text(json.dumps({"model": {"name": "m"}, "completions": {"mode": "word"}}),
                                      encoding="utf-8")

    def languages(folder, name):
        out = tmp_path / name
        _, stderr = run_ok(cli, [str(folder), "--mode", "languages", "--method", "spearman", *FAST,
                                 "--output_dir", str(out)])
        return [line for line in stderr.splitlines() if line.startswith("warning:")], json.loads(
            (out / "manifest.json").read_text(encoding="utf-8"))

    (base / "manifest.json").write_text(json.dumps({"model": {"name": "m"}}), encoding="utf-8")
    warnings, manifest = languages(base, "token")
    assert len(warnings) == 1 and warnings[0].startswith("warning: languages compared on single tokens: base was")
    assert warnings[0].endswith("rerun python -m probing.run with --completions word")
    assert manifest["warnings"] == warnings and manifest["inputs"][0]["run_manifest"]["completions"] == "token"
    warnings, manifest = languages(ft, "word")
    assert warnings == [] and manifest["warnings"] == []
    assert manifest["inputs"][0]["run_manifest"]["completions"] == "word"
    out = tmp_path / "models"
    _, stderr = run_ok(cli, [str(base), str(ft), "--method", "spearman", *FAST, "--output_dir", str(out)])
    assert "warning:" not in stderr


def test_same_language_same_profiles_in_cross_language_mode_gives_one(tmp_path, cli):
    table = profiles(seed=3)
    fr = table[table["language"] == "en"].assign(language="fr")
    run = write_run(tmp_path / "run", pd.concat([table[table["language"] == "en"], fr]))
    out = tmp_path / "out"
    run_ok(cli, [str(run), "--mode", "languages", "--method", "spearman", *FAST, "--output_dir", str(out)])
    assert np.allclose(pd.read_csv(out / "correlations.csv")["rho"], 1.0)


def test_too_few_groups_is_reported_not_a_crash(tmp_path, cli):
    table = profiles(seed=0, groups=GROUPS[:2] + GROUPS[5:9])  # gender: 2 groups only
    base = write_run(tmp_path / "b", table)
    other = write_run(tmp_path / "o", profiles(seed=1, groups=GROUPS[:2] + GROUPS[5:9]))
    out = tmp_path / "out"
    run_ok(cli, [str(base), str(other), *FAST, "--output_dir", str(out)])
    result = pd.read_csv(out / "correlations.csv", keep_default_na=False, na_values=[""])
    gender = result[result["category"] == "gender"]
    assert gender["rho"].isna().all() and gender["note"].str.contains("need 3").all()
    assert result.loc[result["category"] == "religion", "rho"].notna().any()


@pytest.mark.parametrize("case", [
    "different_emotions", "no_overlap", "all_undefined", "missing_file", "one_input", "missing_column",
    "duplicate_rows", "category_clash", "unknown_reference_language", "bad_method", "labels_count",
    "unwritable",
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, runs, tmp_path, cli):
    base, ft = runs
    out = tmp_path / "out"
    argv = [str(base), str(ft), *FAST, "--output_dir", str(out)]
    table = pd.read_csv(ft / "profiles.csv")
    expected = {
        "different_emotions": "lacks column(s) trust",
        "no_overlap": "no group is in both inputs",
        "all_undefined": "no group is in both inputs",
        "missing_file": "does not exist",
        "one_input": "needs a reference and at least one other",
        "missing_column": "lacks column(s) group_id",
        "duplicate_rows": "rows for the same (language, group_id)",
        "category_clash": "group ids must mean the same group",
        "unknown_reference_language": "no profiles in the reference language 'de'",
        "bad_method": "invalid choice: 'pearson'",
        "labels_count": "--labels has 1 names for 2 inputs",
        "unwritable": "cannot write to",
    }[case]
    if case == "different_emotions":
        table.rename(columns={"trust": "confidence"}).to_csv(ft / "profiles.csv", index=False)
    if case == "no_overlap":
        table.assign(group_id=table["group_id"] + "_x").to_csv(ft / "profiles.csv", index=False)
    if case == "all_undefined":
        table.assign(**{e: np.nan for e in EMOTIONS}).to_csv(ft / "profiles.csv", index=False)
    if case == "missing_file":
        argv[1] = str(tmp_path / "absent.csv")
    if case == "one_input":
        argv = [str(base), "--output_dir", str(out)]
    if case == "missing_column":
        table.drop(columns="group_id").to_csv(ft / "profiles.csv", index=False)
    if case == "duplicate_rows":
        pd.concat([table, table.head(1)]).to_csv(ft / "profiles.csv", index=False)
    if case == "category_clash":
        table.assign(category="age").to_csv(ft / "profiles.csv", index=False)
    if case == "unknown_reference_language":
        argv = [str(base), "--mode", "languages", "--reference_language", "de", "--output_dir", str(out)]
    if case == "bad_method":
        argv += ["--method", "pearson"]
    if case == "labels_count":
        argv += ["--labels", "only-one"]
    if case == "unwritable":
        (tmp_path / "a_file").write_text("", encoding="utf-8")
        out = tmp_path / "a_file" / "out"
        argv += ["--output_dir", str(out)]
    line = one_line_error(*cli(correlate.main, argv)[::2])
    assert expected in line
    assert not out.exists()


def test_help_ends_with_examples_and_module_entry_point(tmp_path):
    help_text = correlate.build_parser().format_help()
    assert help_text.rstrip().splitlines()[-1].strip().startswith("python -m analysis.correlate")
    proc = subprocess.run([sys.executable, "-m", "analysis.correlate", str(tmp_path / "nope"), str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


def read_correlations(folder):
    return pd.read_csv(folder / "correlations.csv", keep_default_na=False, na_values=[""])


def test_p_depends_on_seed_and_data_only(runs, tmp_path, cli):
    """The same data under other labels, or with another --bootstrap, gives the same p-values
    and chance band; another --permutations leaves the intervals where they were."""
    base, ft = runs
    outputs = {}
    for name, extra in {"ref": [], "labels": ["--labels", "x", "y"], "boot": ["--bootstrap", "300"],
                        "perm": ["--permutations", "300"]}.items():
        run_ok(cli, [str(base), str(ft), *FAST, *extra, "--output_dir", str(tmp_path / name)])
        outputs[name] = read_correlations(tmp_path / name)
    reference = outputs["ref"]
    for name in ("labels", "boot"):
        pd.testing.assert_frame_equal(outputs[name][["p", "null_mean", "null_low", "null_high"]],
                                      reference[["p", "null_mean", "null_low", "null_high"]])
    pd.testing.assert_frame_equal(outputs["labels"][["ci_low", "ci_high"]], reference[["ci_low", "ci_high"]])
    pd.testing.assert_frame_equal(outputs["perm"][["ci_low", "ci_high"]], reference[["ci_low", "ci_high"]])
    assert not outputs["boot"]["ci_low"].equals(reference["ci_low"])


def test_null_band_columns(runs, tmp_path, cli):
    base, ft = runs
    run_ok(cli, [str(base), str(ft), *FAST, "--output_dir", str(tmp_path / "with")])
    table = read_correlations(tmp_path / "with")
    tested = table["p"].notna()
    assert tested.any() and table.loc[tested, ["null_mean", "null_low", "null_high"]].notna().all().all()
    assert (table.loc[tested, "null_low"] <= table.loc[tested, "null_mean"] + 1e-12).all()
    assert (table.loc[tested, "null_mean"] <= table.loc[tested, "null_high"] + 1e-12).all()
    # identical English profiles lie above the chance band of the pooled rows (a category of 4
    # groups has 24 pairings, so there the identity pairing itself reaches the 97.5th percentile)
    en = table[tested & (table["language"] == "en") & (table["method"] != "emotion") & (table["category"] == "all")]
    assert len(en) == 2 and (en["rho"] > en["null_high"]).all()
    run_ok(cli, [str(base), str(ft), "--permutations", "0", "--bootstrap", "50", "--output_dir", str(tmp_path / "none")])
    without = read_correlations(tmp_path / "none")
    assert without[["p", "null_mean", "null_low", "null_high"]].isna().all().all()


def test_category_without_aligned_groups_is_a_row(tmp_path, cli):
    table = profiles(seed=0)
    other = profiles(seed=1)
    other.loc[(other["language"] == "fr") & (other["category"] == "religion"), list(EMOTIONS)] = np.nan
    base, ft = write_run(tmp_path / "b", table), write_run(tmp_path / "o", other)
    run_ok(cli, [str(base), str(ft), *FAST, "--output_dir", str(tmp_path / "out")])
    result = read_correlations(tmp_path / "out")
    religion = result[(result["language"] == "fr") & (result["category"] == "religion")]
    assert len(religion) == 2 + len(EMOTIONS)  # spearman, rsa and one row per emotion
    assert religion["rho"].isna().all() and (religion["n_groups"] == 0).all()
    assert religion["note"].str.contains("no group with a profile in both").all()
    assert result.loc[(result["language"] == "en") & (result["category"] == "religion"), "rho"].notna().all()


def test_cross_language_excluded_rows_name_the_language_of_the_profile(tmp_path, cli):
    table = profiles(seed=0)
    table = table[~((table["language"] == "fr") & (table["group_id"] == "boys"))]
    table = table[~((table["language"] == "en") & (table["group_id"] == "men"))]
    table.loc[(table["language"] == "fr") & (table["group_id"] == "hindus"), list(EMOTIONS)] = np.nan
    table.loc[(table["language"] == "en") & (table["group_id"] == "muslims"), list(EMOTIONS)] = np.nan
    run = write_run(tmp_path / "run", table)
    run_ok(cli, [str(run), "--mode", "languages", *FAST, "--output_dir", str(tmp_path / "out")])
    excluded = pd.read_csv(tmp_path / "out" / "excluded.csv", keep_default_na=False)
    rows = {(r.group_id, r.reason): (r.language, r.group) for r in excluded.itertuples()}
    assert rows == {
        ("boys", "only in run/en"): ("en", "boys-en"),
        ("men", "only in run/fr"): ("fr", "men-fr"),
        ("hindus", "undefined profile in run/fr (no covered word)"): ("fr", "hindus-fr"),
        ("muslims", "undefined profile in run/en (no covered word)"): ("en", "muslims-en"),
    }
    assert set(excluded["comparison"]) == {"run: en vs fr"}


def test_shifts_have_sign_flip_p_values_adjusted_per_comparison_and_language(tmp_path, cli):
    """ft = base with anger raised in every English group (0.7 anger + 0.3 > anger), other emotions
    jittered: every English anger difference is positive, so the pooled row (9 groups) has the
    smallest exact p, 2/512; French is identical (shift 0, p = 1). p_adjusted is BH within each
    language's rows (categories x emotions), and the pooled rows match the functions called
    with the categories as strata."""
    base = profiles(seed=0)
    ft = base.copy()
    rng = np.random.default_rng(5)
    en = (ft["language"] == "en").to_numpy()
    others = [e for e in EMOTIONS if e != "anger"]
    ft.loc[en, "anger"] = (ft.loc[en, "anger"] * 0.7 + 0.3).round(4)
    ft.loc[en, others] = (ft.loc[en, others] + rng.normal(0, 0.01, (en.sum(), len(others)))).clip(0, 1).round(4)
    out = tmp_path / "out"
    run_ok(cli, [str(write_run(tmp_path / "base", base)), str(write_run(tmp_path / "ft", ft)), *FAST,
                 "--method", "spearman", "--output_dir", str(out)])
    shifts = pd.read_csv(out / "shifts.csv")
    assert list(shifts.columns) == correlate.SHIFT_COLUMNS
    fr = shifts[shifts["language"] == "fr"]
    assert np.allclose(fr["shift"], 0.0) and (fr["p"] == 1.0).all() and not fr["significant"].any()
    en_rows = shifts[shifts["language"] == "en"]
    for _, rows in shifts.groupby("language"):
        np.testing.assert_allclose(rows["p_adjusted"], correlations.benjamini_hochberg(rows["p"]))
    assert (shifts["significant"] == (shifts["p_adjusted"] <= correlate.ALPHA)).all()
    anger = en_rows[en_rows["emotion"] == "anger"].set_index("category")
    # each category's and the pooled p by enumeration
    table = base[en].set_index("group_id")
    changed = ft[en].set_index("group_id").loc[table.index]
    for category, members in [("gender", table["category"] == "gender"), ("all", table["category"].notna())]:
        expected = correlations.sign_flip_test(table.loc[members, list(EMOTIONS)].to_numpy(),
                                               changed.loc[members, list(EMOTIONS)].to_numpy(), n_permutations=200)
        assert expected["exact"]
        np.testing.assert_allclose(en_rows[en_rows["category"] == category]["p"], expected["p_value"])
    assert anger.loc["all", "p"] == pytest.approx(2 / 2 ** 9) == en_rows["p"].min()
    # the pooled rows' intervals: resampled within categories
    data = [table[list(EMOTIONS)].to_numpy(dtype=float), changed[list(EMOTIONS)].to_numpy(dtype=float)]
    pooled = correlations.mean_shift(*data, n_bootstrap=200, strata=table["category"].to_numpy(),
                                     seed=correlations.data_streams(0, *data)["shift"])
    np.testing.assert_allclose(en_rows[en_rows["category"] == "all"]["ci_low"], pooled["ci_low"])
    correlation = pd.read_csv(out / "correlations.csv")
    row = correlation[(correlation["language"] == "en") & (correlation["category"] == "all")].iloc[0]
    expected = correlations.compare(*data, method="spearman", n_permutations=200, n_bootstrap=200,
                                    strata=table["category"].to_numpy(), seed=0)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((expected["ci_low"], expected["ci_high"]))

    run_ok(cli, [str(tmp_path / "base"), str(tmp_path / "ft"), "--permutations", "0", "--bootstrap", "50",
                 "--method", "spearman", "--output_dir", str(tmp_path / "none")])
    none = pd.read_csv(tmp_path / "none" / "shifts.csv")
    assert none["p"].isna().all() and none["p_adjusted"].isna().all() and not none["significant"].any()
