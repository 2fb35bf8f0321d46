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
    # BH within each comparison and method (the default family), named in bh_family
    assert set(table["bh_family"]) == {"base vs ft | spearman", "base vs ft | rsa", "base vs ft | emotion"}
    for method, rows in table.groupby("method"):
        assert (rows["bh_family"] == f"base vs ft | {method}").all()
        np.testing.assert_allclose(rows["p_adjusted"], correlations.benjamini_hochberg(rows["p"]), equal_nan=True)
    assert (table["significant"] == (table["p_adjusted"] <= 0.05)).all()
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


# ------------------------------------------------------------------ adaptive p-values, BH families, p_floor


@pytest.mark.parametrize("extra, expected", [
    (["--permutations", "-1"], "--permutations must be between 0 and 1,000,000"),
    (["--permutations", "1000001"], "--permutations must be between 0 and 1,000,000"),
    (["--exceedances", "-2"], "--exceedances must be between 0 and 1000"),
    (["--exceedances", "1001"], "--exceedances must be between 0 and 1000"),
    (["--permutations", "20", "--exceedances", "30"], "--exceedances (30) must not exceed --permutations (20)"),
    (["--alpha", "0"], "--alpha must be between 0 and 1"),
    (["--alpha", "1.5"], "--alpha must be between 0 and 1"),
    (["--bh_family", "language"], "invalid choice: 'language'"),
])
def test_bad_permutation_options_are_one_line_exit_2(extra, expected, runs, tmp_path, cli):
    base, ft = runs
    out = tmp_path / "out"
    line = one_line_error(*cli(correlate.main, [str(base), str(ft), *extra, "--output_dir", str(out)])[::2])
    assert expected in line
    assert not out.exists()


def test_three_group_category_has_floor_one_sixth_and_cannot_reject(tmp_path, cli):
    """gender keeps 3 groups: 3! = 6 pairings, enumerated; p_floor = 1/6 > alpha whatever the data."""
    groups = GROUPS[:3] + GROUPS[5:9]
    base = write_run(tmp_path / "b", profiles(seed=0, groups=groups))
    other = write_run(tmp_path / "o", profiles(seed=0, groups=groups))  # identical: the best the data can do
    out = tmp_path / "out"
    run_ok(cli, [str(base), str(other), "--bootstrap", "0", "--output_dir", str(out)])
    table = read_correlations(out)
    gender = table[table["category"] == "gender"]
    assert np.allclose(gender["p_floor"], 1 / 6) and np.allclose(gender["p"], 1 / 6)
    assert (gender["n_permutations"] == 6).all() and gender["cannot_reject"].all()
    assert not gender["significant"].any()
    religion = table[table["category"] == "religion"]  # 4! = 24 pairings: floor 1/24 <= 0.05
    assert np.allclose(religion["p_floor"], 1 / 24) and not religion["cannot_reject"].any()
    pooled = table[table["category"] == "all"]  # 3! 4! = 144 pairings, fewer than the default maximum: exact
    assert np.allclose(pooled["p_floor"], 1 / 144) and np.allclose(pooled["p"], 1 / 144)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["summary"]["cannot_reject"] == int(gender["cannot_reject"].sum()) == len(gender)
    # with --alpha 0.2 the same rows can reject
    run_ok(cli, [str(base), str(other), "--bootstrap", "0", "--alpha", "0.2", "--output_dir", str(tmp_path / "a")])
    assert not read_correlations(tmp_path / "a").query("category == 'gender'")["cannot_reject"].any()


def test_bh_family_option_and_manifest(runs, tmp_path, cli):
    base, ft = runs
    tables = {}
    for family in correlate.BH_FAMILIES:
        out = tmp_path / family
        run_ok(cli, [str(base), str(ft), *FAST, "--bh_family", family, "--output_dir", str(out)])
        tables[family] = table = read_correlations(out)
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["bh_family"] == family and manifest["alpha"] == 0.05 and manifest["exceedances"] == 20
        assert set(manifest["permutations_by_family"]) == set(table["bh_family"])
        for _, rows in table.groupby("bh_family"):
            np.testing.assert_allclose(rows["p_adjusted"], correlations.benjamini_hochberg(rows["p"]), equal_nan=True)
    assert set(tables["run"]["bh_family"]) == {"run"}
    assert set(tables["comparison"]["bh_family"]) == {"base vs ft"}
    assert "base vs ft | fr | emotion" in set(tables["comparison_language_method"]["bh_family"])
    # the family changes the adjustment only, never p
    for table in tables.values():
        pd.testing.assert_series_equal(table["p"], tables["run"]["p"])


def test_default_maximum_grows_with_the_family_and_finds_planted_effects(tmp_path, cli):
    """Small version of benchmarks/pvalue_calibration.py (a): two emotion cells agree perfectly among
    null tests. At the defaults (B per family, h = 20, BH per comparison and method) both are
    significant; with 1000 fixed permutations and BH over the run neither is (p = 0.001 is the floor,
    adjusted 0.001 m / 2 > 0.05); null tests stop after a few dozen permutations."""
    rng = np.random.default_rng(5)
    keys = pd.DataFrame([(language, f"c{k}", f"c{k}-g{g}") for language in ("en", "fr") for k in range(10)
                         for g in range(10)], columns=["language", "category", "group_id"])
    base, other = rng.random((len(keys), len(EMOTIONS))), rng.random((len(keys), len(EMOTIONS)))
    planted = [("en", "c1", 2), ("fr", "c7", 5)]
    for language, category, d in planted:
        rows = ((keys["language"] == language) & (keys["category"] == category)).to_numpy()
        other[rows, d] = base[rows, d]
    for name, values in (("b", base), ("o", other)):
        write_run(tmp_path / name, keys.assign(**dict(zip(EMOTIONS, values.T))))
    inputs = [str(tmp_path / "b"), str(tmp_path / "o"), "--bootstrap", "0"]
    run_ok(cli, [*inputs, "--output_dir", str(tmp_path / "default")])
    run_ok(cli, [*inputs, "--permutations", "1000", "--exceedances", "0", "--bh_family", "run",
                 "--output_dir", str(tmp_path / "fixed")])
    default, fixed = read_correlations(tmp_path / "default"), read_correlations(tmp_path / "fixed")
    assert len(default) == 2 * 11 * 12  # 2 languages x (10 categories + all) x (spearman, rsa, 10 emotions)
    m = (default["method"] == "emotion").sum()
    assert m == 220
    manifest = json.loads((tmp_path / "default" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["permutations"] == "auto"
    assert manifest["permutations_by_family"]["b vs o | emotion"] == correlate.default_permutations(m, 0.05) == 8799
    for table, significant in ((default, True), (fixed, False)):
        for language, category, d in planted:
            row = table[(table["language"] == language) & (table["category"] == category)
                        & (table["emotion"] == EMOTIONS[d])].iloc[0]
            assert row["p"] == pytest.approx(row["p_floor"]) and bool(row["significant"]) is significant
    null = default[(default["method"] == "spearman") & (default["category"] != "all")]
    assert null["n_permutations"].median() < 100


def test_default_exceedances_follow_a_small_maximum_and_zero_is_a_fixed_count(runs, tmp_path, cli):
    base, ft = runs
    run_ok(cli, [str(base), str(ft), "--permutations", "9", "--bootstrap", "0", "--output_dir", str(tmp_path / "a")])
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["exceedances"] == 9 and manifest["permutations"] == 9
    run_ok(cli, [str(base), str(ft), "--permutations", "300", "--exceedances", "0", "--bootstrap", "0",
                 "--output_dir", str(tmp_path / "b")])
    table = read_correlations(tmp_path / "b")
    tested = table[table["p"].notna()]
    # en: gender (5 groups, 120 pairings) and religion (4, 24) are enumerated, the pooled row (2880) draws all 300;
    # fr (boys and hindus out): gender 4! = 24, religion 3! = 6, pooled 4! 3! = 144, all enumerated
    en, fr = tested[tested["language"] == "en"], tested[tested["language"] == "fr"]
    assert set(en["n_permutations"]) == {120, 24, 300} and set(fr["n_permutations"]) == {24, 6, 144}
    assert np.allclose(tested.loc[tested["n_permutations"] == 300, "p_floor"], 1 / 301)
    assert "fixed count" in json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["stopping_rule"]


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
    assert (shifts["significant"] == (shifts["p_adjusted"] <= 0.05)).all()
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
