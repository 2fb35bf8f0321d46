"""Borkan et al. (2019) metrics against a hand-worked example, their bootstrap, and the CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import one_line_error
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score

from analysis import fairness as f
from analysis import identity_sets

# The hand-worked example: subgroup A (rows 0-3) and background B (rows 4-7).
#   A: non-toxic 0.1, 0.6; toxic 0.7, 0.9        B: non-toxic 0.2, 0.3; toxic 0.5, 0.8
Y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
S = np.array([0.1, 0.6, 0.7, 0.9, 0.2, 0.3, 0.5, 0.8])
A = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)


def test_borkan_metrics_by_hand():
    # subgroup AUC of A: toxic {.7, .9} above non-toxic {.1, .6} in all 4 pairs
    assert f.subgroup_auc(Y, S, A) == 1.0
    # BPSN of A: background toxic {.5, .8} vs A non-toxic {.1, .6}: .5 < .6 is the only wrong pair: 3/4
    assert f.bpsn_auc(Y, S, A) == 0.75
    # BNSP of A: A toxic {.7, .9} vs background non-toxic {.2, .3}: 4/4
    assert f.bnsp_auc(Y, S, A) == 1.0
    # B as the subgroup: subgroup 1; BPSN: A toxic {.7, .9} vs B non-toxic {.2, .3}: 1;
    # BNSP: B toxic {.5, .8} vs A non-toxic {.1, .6}: 3/4
    assert (f.subgroup_auc(Y, S, ~A), f.bpsn_auc(Y, S, ~A), f.bnsp_auc(Y, S, ~A)) == (1.0, 1.0, 0.75)
    # overall: 16 pairs, only (.5 toxic, .6 non-toxic) wrong: 15/16
    assert roc_auc_score(Y, S) == 15 / 16
    # threshold 0.5: TP 4 (.7 .9 .5 .8), FP 1 (.6), FN 0, TN 3
    rates = f.error_rates(Y, S, threshold=0.5)
    assert (rates["tp"], rates["fp"], rates["fn"], rates["tn"]) == (4, 1, 0, 3)
    assert rates["fpr"] == 0.25 and rates["fnr"] == 0.0 and rates["f1"] == pytest.approx(8 / 9)
    # A: FPR 1/2 (gap +.25), B: FPR 0 (gap -.25)
    assert f.error_rates(Y[A], S[A])["fpr"] - rates["fpr"] == 0.25
    assert f.error_rates(Y[~A], S[~A])["fpr"] - rates["fpr"] == -0.25
    # generalized means over the groups {A, B}, p = -5
    m_bpsn = ((0.75 ** -5 + 1 ** -5) / 2) ** (-1 / 5)
    assert f.generalized_mean([0.75, 1.0]) == pytest.approx(m_bpsn)
    assert m_bpsn == pytest.approx(0.82560, abs=1e-5)
    score = f.bias_score(15 / 16, [1.0, 1.0], [0.75, 1.0], [1.0, 0.75])
    assert score == pytest.approx(0.25 * (15 / 16 + 1 + m_bpsn + m_bpsn))


def test_weighted_metrics_with_unit_weights_equal_the_point_estimates():
    m = f.language_summary(f.weighted_metrics(Y, S, [np.flatnonzero(A), np.flatnonzero(~A)], np.ones((1, 8))))
    assert m["roc_auc"][0] == pytest.approx(15 / 16)
    assert m["group_subgroup_auc"][0].tolist() == [1.0, 1.0]
    assert m["group_bpsn_auc"][0].tolist() == pytest.approx([0.75, 1.0])
    assert m["group_bnsp_auc"][0].tolist() == pytest.approx([1.0, 0.75])
    assert m["group_fpr_gap"][0].tolist() == pytest.approx([0.25, -0.25])
    assert m["f1"][0] == pytest.approx(8 / 9)
    m_bpsn = ((0.75 ** -5 + 1) / 2) ** (-1 / 5)
    assert m["bias_score"][0] == pytest.approx(0.25 * (15 / 16 + 1 + 2 * m_bpsn))


def test_weighted_metrics_match_sklearn_sample_weights_with_ties():
    rng = np.random.default_rng(0)
    n = 200
    y, s = rng.integers(0, 2, n), rng.integers(0, 8, n) / 8  # many tied scores
    groups = [np.flatnonzero(rng.random(n) < 0.15) for _ in range(4)]  # overlapping groups
    weights = rng.integers(0, 4, (3, n)).astype(float)
    m = f.weighted_metrics(y, s, groups, weights)
    for r, w in enumerate(weights):
        assert m["roc_auc"][r] == pytest.approx(roc_auc_score(y, s, sample_weight=w))
        for k, rows in enumerate(groups):
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            bpsn = (mask & (y == 0)) | (~mask & (y == 1))
            bnsp = (mask & (y == 1)) | (~mask & (y == 0))
            assert m["group_subgroup_auc"][r, k] == pytest.approx(roc_auc_score(y[mask], s[mask], sample_weight=w[mask]))
            assert m["group_bpsn_auc"][r, k] == pytest.approx(roc_auc_score(y[bpsn], s[bpsn], sample_weight=w[bpsn]))
            assert m["group_bnsp_auc"][r, k] == pytest.approx(roc_auc_score(y[bnsp], s[bnsp], sample_weight=w[bnsp]))
            predicted = s[mask] >= 0.5
            negatives = w[mask] * (y[mask] == 0)
            assert m["group_fpr"][r, k] == pytest.approx((negatives * predicted).sum() / negatives.sum())


def test_one_class_in_a_subgroup_is_nan_with_a_warning_not_a_crash():
    only_toxic = np.array([0, 0, 1, 1, 0, 0], dtype=bool)
    y, s = np.array([0, 1, 1, 1, 0, 1]), np.array([0.2, 0.9, 0.8, 0.7, 0.1, 0.6])
    with pytest.warns(UndefinedMetricWarning, match="subgroup AUC is undefined"):
        assert np.isnan(f.subgroup_auc(y, s, only_toxic))
    with pytest.warns(UndefinedMetricWarning, match="BPSN AUC is undefined"):
        assert np.isnan(f.bpsn_auc(y, s, only_toxic))  # no subgroup negative
    assert not np.isnan(f.bnsp_auc(y, s, only_toxic))
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(f.generalized_mean([np.nan, np.nan]))
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(f.error_rates([1, 1], [0.2, 0.9])["fpr"])
    m = f.weighted_metrics(y, s, [np.flatnonzero(only_toxic)], np.ones((1, 6)))
    assert np.isnan(m["group_subgroup_auc"][0, 0]) and np.isnan(m["group_bpsn_auc"][0, 0])


def test_generalized_mean_leans_to_the_worst_group():
    assert f.generalized_mean([0.9, 0.9, 0.9]) == pytest.approx(0.9)
    assert f.generalized_mean([0.5, 1.0, 1.0]) < np.mean([0.5, 1.0, 1.0])
    assert f.generalized_mean([0.0, 1.0]) == 0.0
    assert f.generalized_mean([0.8, np.nan, 0.8]) == pytest.approx(0.8)


def test_stratified_bootstrap_keeps_group_sizes_and_is_seeded():
    rng = np.random.default_rng(1)
    n = 120
    y, s = np.tile([0, 1], n // 2), rng.random(n)
    groups = [np.arange(0, 6), np.arange(6, 12)]
    strata = f.strata_of(y, groups, n)
    first = f.bootstrap_metrics(y, s, groups, n_bootstrap=300, strata=strata, seed=3, max_cells=5000)
    again = f.bootstrap_metrics(y, s, groups, n_bootstrap=300, strata=strata, seed=3)
    np.testing.assert_allclose(first["roc_auc"], again["roc_auc"])  # chunking does not change draws' use
    assert not np.isnan(first["group_subgroup_auc"]).any()  # 3 toxic + 3 non-toxic kept in every replicate
    low, high = np.percentile(first["roc_auc"], [2.5, 97.5])
    assert low <= roc_auc_score(y, s) <= high


# ------------------------------------------------------------------ command line


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The shipped identity set for en and fr (gender, religion), scored by a classifier that
    over-scores the neutral frames about Muslims (so their BPSN AUC and FPR gap show it)."""
    from probing import prompts as prompt_files

    folder = tmp_path_factory.mktemp("fair")
    loaded = {lang: prompt_files.load_language(lang) for lang in ("en", "fr")}
    table = pd.concat([identity_sets.identity_set(loaded[lang], identity_sets.load_frames(lang), ["gender", "religion"])
                       for lang in ("en", "fr")], ignore_index=True)
    rng = np.random.default_rng(0)
    table["score"] = np.clip(0.25 + 0.5 * table["label"] + rng.normal(0, 0.08, len(table))
                             + 0.45 * ((table["group_id"] == "muslims") & (table["label"] == 0)), 0, 1)
    path = folder / "scored.csv"
    table.to_csv(path, index=False)
    return path


def test_cli_end_to_end(scored, tmp_path, cli):
    out = tmp_path / "out"
    code, stdout, stderr = cli(f.main, [str(scored), "--bootstrap", "200", "--output_dir", str(out)])
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["fairness.csv", "gaps.csv", "manifest.json"]
    table = pd.read_csv(out / "fairness.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == f.FAIRNESS_COLUMNS
    overall = table[table["scope"] == "language"]
    assert set(overall["metric"]) == set(f.LANGUAGE_METRICS) and set(overall["language"]) == {"en", "fr"}
    groups = table[table["scope"] == "group"]
    assert set(groups["metric"]) == set(f.GROUP_METRICS)
    for language in ("en", "fr"):
        bpsn = groups[(groups["language"] == language) & (groups["metric"] == "bpsn_auc")].set_index("group_id")["value"]
        assert bpsn.idxmin() == "muslims"
        gap = groups[(groups["language"] == language) & (groups["metric"] == "fpr_gap")].set_index("group_id")["value"]
        assert gap.idxmax() == "muslims" and gap["muslims"] > 0
    defined = table.dropna(subset=["ci_low"])
    assert ((defined["ci_low"] <= defined["value"] + 1e-9) & (defined["value"] <= defined["ci_high"] + 1e-9)).all()
    muslims = groups[(groups["group_id"] == "muslims") & (groups["language"] == "fr")]
    assert muslims["category"].iloc[0] == "religion" and muslims["group"].iloc[0] == "musulmans"
    # the shipped frames give every group 10 toxic and 10 non-toxic sentences: every interval is defined,
    # and the p = -5 generalized means are no longer pulled to 0 by a replicate with a zero group AUC
    assert (groups["n_positive"] >= f.MIN_CLASS_SIZE).all() and (groups["n_negative"] >= f.MIN_CLASS_SIZE).all()
    assert table["ci_low"].notna().all() and not table["note"].astype("string").fillna("").str.contains("interval").any()
    means = overall[overall["metric"].str.startswith("generalized_mean")]
    assert (means["ci_low"] > 0.5).all(), means[["language", "metric", "ci_low", "ci_high"]]

    gaps = pd.read_csv(out / "gaps.csv", keep_default_na=False, na_values=[""])
    auc = gaps[(gaps["scope"] == "language") & (gaps["metric"] == "roc_auc")].set_index("language")
    assert auc.loc["en", "difference_from_reference"] == 0.0
    assert auc.loc["fr", "difference_from_reference"] == pytest.approx(auc.loc["fr", "value"] - auc.loc["en", "value"])
    assert auc["max_minus_min"].iloc[0] == pytest.approx(abs(auc.loc["fr", "value"] - auc.loc["en", "value"]))

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["bootstrap"] == 200 and manifest["seed"] == 0
    assert manifest["inputs"][0]["identities"] == "group_id"
    assert set(manifest["inputs"][0]["prompts"]) == {"en", "fr"}


def test_cli_identity_columns_and_undefined_subgroup(tmp_path, cli):
    rng = np.random.default_rng(2)
    n = 80
    table = pd.DataFrame({"text": ["t"] * n, "language": ["en"] * n, "label": np.tile([0, 1], n // 2),
                          "score": rng.random(n), "female": (rng.random(n) < 0.3).astype(float),
                          "muslim": 0.0})
    table.loc[[1, 3, 5], "muslim"] = 1.0  # toxic rows only: its subgroup AUC is undefined
    table.loc[[0, 2], "female"] = np.nan  # not annotated (as in the Jigsaw data): not a member
    path = tmp_path / "pred.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "out"
    code, stdout, stderr = cli(f.main, [str(path), "--identity_columns", "female", "muslim", "--bootstrap", "50",
                                        "--output_dir", str(out)])
    assert code == 0, stderr
    assert "undefined" in stderr
    result = pd.read_csv(out / "fairness.csv", keep_default_na=False, na_values=[""])
    muslim = result[(result["group_id"] == "muslim")].set_index("metric")
    assert np.isnan(muslim.loc["subgroup_auc", "value"]) and "3 toxic, 0 non-toxic" in muslim.loc["subgroup_auc", "note"]
    assert np.isnan(muslim.loc["bpsn_auc", "value"])
    assert not np.isnan(muslim.loc["bnsp_auc", "value"])
    assert set(result["group_id"].fillna("")) == {"", "female", "muslim"}


def small_groups_table(n_women=12, n_men=3, seed=4):
    """en predictions: women with n_women toxic + n_women non-toxic rows, men with n_men + n_men, 40 others."""
    rng = np.random.default_rng(seed)
    ids = ["women"] * (2 * n_women) + ["men"] * (2 * n_men) + [""] * 40
    labels = [0, 1] * n_women + [0, 1] * n_men + [0, 1] * 20
    return pd.DataFrame({"language": "en", "label": labels, "score": rng.random(len(ids)).round(3), "group_id": ids})


def test_a_repeated_id_in_one_cell_counts_once(tmp_path, cli):
    table = small_groups_table()
    outputs = []
    for name, cell in (("plain", "women"), ("repeated", "women;women; women ")):
        table.loc[0, "group_id"] = cell
        path = tmp_path / f"{name}.csv"
        table.to_csv(path, index=False)
        outputs.append(tmp_path / name)
        code, stdout, stderr = cli(f.main, [str(path), "--bootstrap", "20", "--output_dir", str(outputs[-1])])
        assert code == 0, stderr
    plain, repeated = (pd.read_csv(out / "fairness.csv", keep_default_na=False, na_values=[""]) for out in outputs)
    pd.testing.assert_frame_equal(plain, repeated)
    women = repeated[repeated["group_id"] == "women"]
    assert (women["n"] == 24).all() and (women["n_positive"] == 12).all()


def test_intervals_are_undefined_with_a_note_for_small_strata(tmp_path, cli):
    path = tmp_path / "pred.csv"
    small_groups_table().to_csv(path, index=False)
    out = tmp_path / "out"
    code, stdout, stderr = cli(f.main, [str(path), "--bootstrap", "100", "--output_dir", str(out)])
    assert code == 0, stderr
    assert "interval(s) are undefined" in stderr
    table = pd.read_csv(out / "fairness.csv", keep_default_na=False, na_values=[""], dtype={"note": str}).fillna({"note": ""})
    men, women = (table[table["group_id"] == g] for g in ("men", "women"))
    assert men["value"].notna().all() and men["ci_low"].isna().all() and men["ci_high"].isna().all()
    assert men["note"].str.contains(f"interval undefined: fewer than {f.MIN_CLASS_SIZE} toxic").all()
    assert women["ci_low"].notna().all() and (women["note"] == "").all()
    overall = table[table["scope"] == "language"].set_index("metric")
    assert overall.loc[["roc_auc", "f1", "fpr", "fnr"], "ci_low"].notna().all()  # 35 + 35 examples
    for metric in ("generalized_mean_subgroup_auc", "generalized_mean_bpsn_auc", "bias_score"):
        assert np.isnan(overall.loc[metric, "ci_low"]) and "1 group(s) have fewer" in overall.loc[metric, "note"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["definitions"]["min_class_size"] == f.MIN_CLASS_SIZE
    assert manifest["summary"]["undefined_intervals"] == len(men) + 4
    # --bootstrap 0: no intervals at all, and no note about them
    code, stdout, stderr = cli(f.main, [str(path), "--bootstrap", "0", "--output_dir", str(tmp_path / "none")])
    table = pd.read_csv(tmp_path / "none" / "fairness.csv", keep_default_na=False, na_values=[""],
                        dtype={"note": str}).fillna({"note": ""})
    assert code == 0 and table["ci_low"].isna().all() and not table["note"].str.contains("interval").any()


def test_interval_rule_and_library_replacements_agree_with_hand_values():
    assert f.interval_defined(10, 10) and not f.interval_defined(9, 30) and not f.interval_defined(30, 9)
    from scipy.stats import pmean

    values = np.array([[0.75, 1.0, np.nan], [0.0, 1.0, 0.5], [np.nan, np.nan, np.nan]])
    rows = f._generalized_mean_rows(values)
    assert rows[0] == pytest.approx(((0.75 ** -5 + 1) / 2) ** (-1 / 5)) == pytest.approx(pmean([0.75, 1.0], -5))
    assert rows[1] == 0.0 and np.isnan(rows[2])


def population_metrics(aucs, p=f.POWER) -> dict:
    """Population values of the simulation of :func:`_coverage`: non-toxic scores N(0, 1) in every
    group, toxic scores N(d_g, 1) in group g (true AUC ``aucs[g]``), groups disjoint and of equal size.

    Then subgroup AUC = BNSP AUC = ``aucs[g]`` (the background's non-toxic scores are N(0, 1) too),
    BPSN AUC of g = the mean AUC of the other groups (their toxic scores against g's non-toxic ones),
    and the overall AUC is the mean of ``aucs``; with equal groups every one of them is the common AUC.
    """
    aucs = np.asarray(aucs, dtype=float)
    bpsn = np.array([np.delete(aucs, g).mean() for g in range(len(aucs))])
    out = {"roc_auc": aucs.mean(), "generalized_mean_subgroup_auc": f.generalized_mean(aucs, p=p),
           "generalized_mean_bpsn_auc": f.generalized_mean(bpsn, p=p),
           "generalized_mean_bnsp_auc": f.generalized_mean(aucs, p=p), "group_subgroup_auc": aucs}
    out["bias_score"] = f.WEIGHT * (out["roc_auc"] + out["generalized_mean_subgroup_auc"]
                                    + out["generalized_mean_bpsn_auc"] + out["generalized_mean_bnsp_auc"])
    return out


COVERED = ("generalized_mean_subgroup_auc", "generalized_mean_bpsn_auc", "generalized_mean_bnsp_auc", "bias_score",
           "group_subgroup_auc")


def _coverage(aucs, n_per_class=f.MIN_CLASS_SIZE, *, datasets=25, n_bootstrap=1000, seed=0) -> dict:
    """Per metric of :data:`COVERED`, the share of 95 % intervals that contain the population value
    (:func:`population_metrics`): the command's interval (BCa, ``"bca"``) and the percentile interval it
    replaced (``"percentile"``); ``"inside"``: the share of BCa intervals that contain their estimate.

    ``len(aucs)`` groups of ``n_per_class`` toxic and ``n_per_class`` non-toxic examples, resampled within
    the strata of :func:`analysis.fairness.strata_of` and jackknifed as the command does.
    """
    from scipy.stats import norm

    aucs = np.asarray(aucs, dtype=float)
    population = population_metrics(aucs)
    rng = np.random.default_rng(seed)
    size = 2 * n_per_class
    members = [np.arange(k * size, (k + 1) * size) for k in range(len(aucs))]
    y = np.tile(np.r_[np.zeros(n_per_class, int), np.ones(n_per_class, int)], len(aucs))
    shift = np.repeat(np.sqrt(2) * norm.ppf(aucs), size) * y
    strata = f.strata_of(y, members, len(y))
    hits = {m: {"bca": [], "percentile": [], "inside": []} for m in COVERED}
    for _ in range(datasets):
        s = rng.normal(0, 1, len(y)) + shift
        point = f.language_summary(f.weighted_metrics(y, s, members, np.ones((1, len(y)))))
        boot = f.bootstrap_metrics(y, s, members, n_bootstrap=n_bootstrap, strata=strata, seed=rng)
        jack = f.jackknife_metrics(y, s, members, seed=rng)
        for metric in COVERED:
            columns = range(len(aucs)) if metric.startswith("group_") else [None]
            for k in columns:
                pick = (lambda t: t[metric]) if k is None else (lambda t: t[metric][:, k])
                estimate = float(pick(point)[0])
                truth = population[metric] if k is None else population[metric][k]
                low, high = f.bca_interval(estimate, pick(boot), pick(jack), 0.95, f.metric_range(metric))
                p_low, p_high = np.percentile(pick(boot), [2.5, 97.5])
                hits[metric]["bca"].append(low <= truth <= high)
                hits[metric]["percentile"].append(p_low <= truth <= p_high)
                hits[metric]["inside"].append(low <= estimate <= high)
    return {m: {kind: float(np.mean(v)) for kind, v in h.items()} for m, h in hits.items()}


def test_bca_intervals_of_the_generalized_means_and_bias_score_cover_the_population_value():
    # Item 5 of issue 19, small version (20 data sets of 20 groups of 10 + 10; analysis/README.md,
    # "Coverage", has the large run). The sample M_p (p = -5) is biased low, and the percentile interval
    # of its replicates, lower still, covers the population M_p in about half of the data sets or less;
    # BCa moves the interval up by the bootstrap's estimate of that bias.
    equal = _coverage([0.8] * 20, datasets=20)
    for metric in ("generalized_mean_subgroup_auc", "generalized_mean_bpsn_auc", "generalized_mean_bnsp_auc",
                   "bias_score"):
        assert equal[metric]["bca"] >= 0.9, (metric, equal[metric])
    assert equal["generalized_mean_subgroup_auc"]["percentile"] <= 0.6
    # 400 per-group subgroup-AUC intervals: BCa about 95 % (the percentile ones ran short, about 92 %)
    assert 0.9 <= equal["group_subgroup_auc"]["bca"] <= 0.99
    unequal = _coverage(np.linspace(0.65, 0.9, 20), datasets=20, seed=1)
    for metric in ("generalized_mean_subgroup_auc", "bias_score"):
        assert unequal[metric]["bca"] >= 0.9, (metric, unequal[metric])
    for result in (equal, unequal):
        assert all(r["inside"] == 1.0 for r in result.values())  # every estimate lies inside its interval


def test_per_group_intervals_of_3_plus_3_examples_cover_poorly():
    # why strata under MIN_CLASS_SIZE get no interval: with 3 + 3 examples a subgroup AUC takes few values
    # and even BCa covers about two thirds of the time (200 intervals)
    assert _coverage([0.8] * 20, 3, datasets=10, seed=2)["group_subgroup_auc"]["bca"] < 0.8


@pytest.mark.parametrize("case", ["missing_columns", "no_identity", "labels_not_binary", "scores_not_numeric",
                                  "unknown_group", "unknown_language", "missing_file", "bad_bootstrap"])
def test_bad_input_is_one_line_exit_2(case, scored, tmp_path, cli):
    table = pd.read_csv(scored)
    path = tmp_path / "pred.csv"
    out = tmp_path / "out"
    argv = [str(path), "--bootstrap", "10", "--output_dir", str(out)]
    expected = {
        "missing_columns": "lacks column(s) score",
        "no_identity": "lacks column(s) group_id",
        "labels_not_binary": "must be 0 (not toxic) or 1 (toxic); row 2 has 0.7",
        "scores_not_numeric": "must be a finite number",
        "unknown_group": "group id 'muslim' (en) is not in",
        "unknown_language": "language 'xx'",
        "missing_file": "does not exist",
        "bad_bootstrap": "--bootstrap must be 0 or more",
    }[case]
    if case == "missing_columns":
        table = table.drop(columns="score")
    if case == "no_identity":
        table = table.drop(columns="group_id")
    if case == "labels_not_binary":
        table["label"] = table["label"].astype(float)
        table.loc[0, "label"] = 0.7
    if case == "scores_not_numeric":
        table["score"] = table["score"].astype(object)
        table.loc[3, "score"] = "high"
    if case == "unknown_group":
        table.loc[table["group_id"] == "muslims", "group_id"] = "muslim"
    if case == "unknown_language":
        table.loc[0, "language"] = "xx"
    if case == "bad_bootstrap":
        argv[2] = "-1"
    if case != "missing_file":
        table.to_csv(path, index=False)
    line = one_line_error(*cli(f.main, argv)[::2])
    assert expected in line
    if case == "unknown_group":
        assert "did you mean muslims" in line
    assert not out.exists()


def test_parquet_input_gives_the_same_tables_as_csv(scored, tmp_path, cli):
    parquet = tmp_path / "scored.parquet"
    pd.read_csv(scored, keep_default_na=False, na_values=[""]).to_parquet(parquet, index=False)
    outputs = {}
    for path in (scored, parquet):
        outputs[path.suffix] = tmp_path / path.suffix.lstrip(".")
        code, stdout, stderr = cli(f.main, [str(path), "--bootstrap", "50", "--output_dir", str(outputs[path.suffix])])
        assert code == 0, stderr
    for name in ("fairness.csv", "gaps.csv"):
        assert (outputs[".parquet"] / name).read_bytes() == (outputs[".csv"] / name).read_bytes()
    manifest = json.loads((outputs[".parquet"] / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"][0]["path"] == str(parquet)


@pytest.mark.parametrize("name, expected", [
    ("x.parquet", "as Parquet"), ("x.jsonl", "as JSON lines"), ("empty.parquet", "has no rows"),
])
def test_unreadable_or_empty_table_is_one_line_exit_2(name, expected, tmp_path, cli):
    path = tmp_path / name
    if name == "empty.parquet":
        pd.DataFrame({"language": [], "label": [], "score": [], "group_id": []}).to_parquet(path)
    else:
        path.write_text("language,label,score,group_id\nen,1,0.9,women\n", encoding="utf-8")  # plain text
    out = tmp_path / "out"
    line = one_line_error(*cli(f.main, [str(path), "--output_dir", str(out)])[::2])
    assert f"{path} {expected}" in line
    if name == "x.parquet":
        assert "pass a Parquet file written by pandas/pyarrow, or a CSV" in line
    assert not out.exists()


def test_read_table_reads_every_format_alike(tmp_path):
    from analysis._common import read_table

    table = pd.DataFrame({"language": ["en", "fr"], "label": [0, 1], "score": [0.25, 0.75], "group_id": ["women", ""]})
    table.to_csv(tmp_path / "t.csv", index=False)
    table.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    table.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    table.to_parquet(tmp_path / "t.parquet", index=False)
    for name in ("t.csv", "t.tsv", "t.jsonl", "t.parquet"):
        read = read_table(tmp_path / name, keep_default_na=False)
        pd.testing.assert_frame_equal(read, table, check_dtype=False, obj=name)


def test_help_ends_with_examples():
    lines = f.build_parser().format_help().rstrip().splitlines()
    assert lines[-1].strip().startswith("python -m analysis.fairness")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the pure functions do not warn on well-defined input
        f.subgroup_auc(Y, S, A)
