"""Figures: created, non-empty, byte-stable, and drawn from the saved tables (edit one, see it change)."""

from __future__ import annotations

import json
import re
import shutil

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from analysis_helpers import one_line_error, profiles, write_run

from analysis import correlate, fairness, figures


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures")
    base = write_run(root / "base", profiles(seed=0))
    write_probing_manifest(base, "tiny-test-model", random_weights=True)
    ft = profiles(seed=0)
    ft.loc[ft.index[::3], "joy"] = 0.99
    ft = write_run(root / "ft", ft)
    write_probing_manifest(ft, "tiny-test-model-finetuned", random_weights=False)
    corr = root / "corr"
    assert correlate.main([str(base), str(ft), "--permutations", "50", "--exceedances", "0", "--bootstrap", "50",
                           "--output_dir", str(corr)]) == 0
    corr_lang = root / "corr_lang"
    assert correlate.main([str(base), "--mode", "languages", "--permutations", "50", "--exceedances", "0", "--bootstrap", "50",
                           "--output_dir", str(corr_lang)]) == 0
    rng = np.random.default_rng(0)
    n = 120
    predictions = pd.DataFrame({"language": np.repeat(["en", "fr"], n // 2), "label": np.tile([0, 1], n // 2),
                                "score": rng.random(n), "women": (rng.random(n) < 0.3).astype(int),
                                "muslims": (rng.random(n) < 0.3).astype(int)})
    predictions["score"] = np.clip(predictions["score"] * 0.5 + 0.5 * predictions["label"], 0, 1)
    predictions.to_csv(root / "pred.csv", index=False)
    fair = root / "fair"
    assert fairness.main([str(root / "pred.csv"), "--identity_columns", "women", "muslims", "--bootstrap", "50",
                          "--output_dir", str(fair)]) == 0
    return {"base": base, "ft": ft, "corr": corr, "corr_lang": corr_lang, "fair": fair, "root": root}


def write_probing_manifest(folder, model, *, random_weights):
    """The keys of a probing run's manifest.json that the report's methods section reads."""
    manifest = {"model": {"name": model, "random_weights": random_weights},
                "parameters": {"model": model, "finetuned_model": "base", "scoring": "typicality", "top_k": 123,
                               "weighting": "count", "lexicon": "nrc:lexicon.txt"},
                "prompts": {"en": {"file": "en.yaml", "version": 2}, "fr": {"file": "fr.yaml", "version": 3}},
                "lexicon": {"en": {"source": "nrc", "n_entries": 900}, "fr": {"source": "nrc", "n_entries": 800}},
                "kept_share": {"en": 0.25, "fr": 0.5}, "filters": {"en": {"kept": 10, "not_a_word": 30},
                                                                   "fr": {"kept": 20, "not_a_word": 20}}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def draw(cli, dirs, out, *extra):
    code, stdout, stderr = cli(figures.main, [*map(str, dirs), "--output_dir", str(out), *extra])
    assert code == 0, stderr
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_figures_and_report_are_created_and_non_empty(run_dirs, tmp_path, cli):
    files = draw(cli, [run_dirs["base"], run_dirs["corr"], run_dirs["fair"]], tmp_path / "out")
    names = set(files)
    expected = {"emotions_base_gender", "emotions_base_religion", "correlations_corr_spearman_base",
                "correlations_corr_rsa_base", "correlations_corr_emotion_base", "shifts_corr_base_vs_ft",
                "fairness_languages_fair", "fairness_groups_fair_en", "fairness_groups_fair_fr"}
    for stem in expected:
        assert files[f"figures/{stem}.png"].startswith(b"\x89PNG") and len(files[f"figures/{stem}.png"]) > 2000
        assert files[f"figures/{stem}.pdf"].startswith(b"%PDF") and len(files[f"figures/{stem}.pdf"]) > 2000
    assert {n for n in names if n.startswith("figures/")} == {f"figures/{s}.{x}" for s in expected for x in ("png", "pdf")}
    report = files["report.md"].decode("utf-8")
    embedded = re.findall(r"\]\((figures/[^)]+)\)", report)
    assert set(embedded) == {f"figures/{s}.png" for s in expected}
    assert "| comparison | language | method | rho |" in report  # the correlation table
    assert "### Toxicity fairness" in report and "roc_auc" in report
    manifest = json.loads(files["manifest.json"])
    read = {(i["run"], i["path"].rsplit("/", 1)[-1]) for i in manifest["inputs"]}
    assert {("base", "profiles.csv"), ("corr", "correlations.csv"), ("corr", "shifts.csv"),
            ("fair", "fairness.csv")} <= read
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])


def test_reruns_give_the_same_bytes(run_dirs, tmp_path, cli):
    first = draw(cli, [run_dirs["corr"]], tmp_path / "a")
    second = draw(cli, [run_dirs["corr"]], tmp_path / "b")
    first.pop("manifest.json"), second.pop("manifest.json")  # holds the time it was made
    assert first == second


def test_figures_are_drawn_from_the_saved_tables(run_dirs, tmp_path, cli):
    run = tmp_path / "base"
    shutil.copytree(run_dirs["base"], run)
    before = draw(cli, [run], tmp_path / "before", "--formats", "png")
    table = pd.read_csv(run / "profiles.csv")
    row = table.index[(table["category"] == "gender") & (table["language"] == "fr")][0]
    table.loc[row, "anger"] = 1.0 - table.loc[row, "anger"]
    table.to_csv(run / "profiles.csv", index=False)
    after = draw(cli, [run], tmp_path / "after", "--formats", "png")
    assert before["figures/emotions_base_gender.png"] != after["figures/emotions_base_gender.png"]
    assert before["figures/emotions_base_religion.png"] == after["figures/emotions_base_religion.png"]

    corr = tmp_path / "corr"
    shutil.copytree(run_dirs["corr"], corr)
    before = draw(cli, [corr], tmp_path / "c1", "--formats", "png")
    table = pd.read_csv(corr / "correlations.csv", keep_default_na=False, na_values=[""])
    table.loc[(table["method"] == "rsa") & (table["category"] == "all"), "rho"] = -0.5
    table.to_csv(corr / "correlations.csv", index=False)
    after = draw(cli, [corr], tmp_path / "c2", "--formats", "png")
    assert before["figures/correlations_corr_rsa_base.png"] != after["figures/correlations_corr_rsa_base.png"]
    assert before["figures/correlations_corr_spearman_base.png"] == after["figures/correlations_corr_spearman_base.png"]
    assert "-0.500" in after["report.md"].decode("utf-8")


def test_shift_interval_that_misses_the_estimate_is_drawn(run_dirs, tmp_path, cli):
    """Constant shifts give a bootstrap interval a rounding error away from the estimate (seen in the
    demo); a percentile interval may also miss it for real. Either way the figure is drawn."""
    corr = tmp_path / "corr"
    shutil.copytree(run_dirs["corr"], corr)
    table = pd.read_csv(corr / "shifts.csv", keep_default_na=False, na_values=[""])
    table["ci_low"] = table["shift"] + 1e-17
    table["ci_high"] = table["shift"] + 0.05
    table.to_csv(corr / "shifts.csv", index=False)
    files = draw(cli, [corr], tmp_path / "out", "--formats", "png")
    assert files["figures/shifts_corr_base_vs_ft.png"].startswith(b"\x89PNG")


@pytest.mark.parametrize("case", ["no_tables", "missing", "bad_forest"])
def test_bad_input_is_one_line_exit_2(case, run_dirs, tmp_path, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x", encoding="utf-8")
    argv = {"no_tables": [str(empty)], "missing": [str(tmp_path / "absent")],
            "bad_forest": [str(run_dirs["fair"]), "--forest_groups", "0"]}[case]
    out = tmp_path / "out"
    line = one_line_error(*cli(figures.main, [*argv, "--output_dir", str(out)])[::2])
    assert {"no_tables": "has none of", "missing": "is not a folder", "bad_forest": "--forest_groups"}[case] in line
    assert not out.exists()


def sections(report: str) -> dict[str, str]:
    """report.md cut at its ``## `` headings: heading text -> body."""
    parts = re.split(r"^## (.+)$", report, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_report_lists_each_figure_once_under_its_own_run(run_dirs, tmp_path, cli):
    """`corr_lang` starts with `corr`: figures are matched to runs exactly, not by name prefix."""
    out = tmp_path / "out"
    files = draw(cli, [run_dirs["corr"], run_dirs["corr_lang"]], out, "--formats", "png")
    report = files["report.md"].decode("utf-8")
    drawn = [figures.safe_name(n) for n in json.loads(files["manifest.json"])["figures"]]  # file stems
    embedded = re.findall(r"!\[[^\]]*\]\(figures/([^)]+)\.png\)", report)
    assert sorted(embedded) == sorted(drawn) and len(embedded) == len(set(embedded))
    parts = sections(report)
    lang = {n for n in drawn if n.startswith(("correlations_corr_lang_", "shifts_corr_lang_"))}
    assert lang and set(re.findall(r"\(figures/([^)]+)\.png\)", parts["corr_lang"])) == lang
    assert set(re.findall(r"\(figures/([^)]+)\.png\)", parts["corr"])) == set(drawn) - lang
    # language mode: one grouped shift figure per input, not one per language
    assert [n for n in lang if n.startswith("shifts_")] == ["shifts_corr_lang_base_languages"]


def test_report_paths_are_relative_and_resolve(run_dirs, tmp_path, cli):
    out = tmp_path / "deep" / "out"
    files = draw(cli, [run_dirs["base"], run_dirs["corr"], run_dirs["fair"]], out, "--formats", "png")
    report = files["report.md"].decode("utf-8")
    assert str(tmp_path) not in report and str(run_dirs["root"]) not in report
    links = re.findall(r"\]\(([^)]+)\)", report)
    folders = re.findall(r"^\| \w[^|]* \|.*`([^`]+)` \|$", report, flags=re.M)  # the models table's folder column
    assert links and folders
    for target in links + folders:
        assert not target.startswith("/") and ":" not in target, target
        assert (out / target).exists(), target
    assert {(out / t).resolve() for t in links if not t.startswith("figures/")} >= {
        run_dirs[k].resolve() for k in ("base", "corr", "fair")}


def test_methods_section_names_what_was_compared(run_dirs, tmp_path, cli):
    """Only the correlate folder is given: the models come from the manifests its inputs sit next to."""
    files = draw(cli, [run_dirs["corr"], run_dirs["fair"]], tmp_path / "out", "--formats", "png")
    report = files["report.md"].decode("utf-8")
    methods = sections(report)["Methods"]
    for text in ("tiny-test-model", "tiny-test-model-finetuned", "nrc:lexicon.txt", "typicality", "123",
                 "yes (random weights", "| no |", "`ft` against `base`", "to 50 permutations per test",
                 "Benjamini-Hochberg", "threshold 0.5", "exchangeable within the category",
                 "permute within each category only"):
        assert text in methods, text
    assert "| en | 2 | nrc | 900 | 25.0% of 40 |" in methods  # prompts version, lexicon, kept candidates
    read = json.loads(files["manifest.json"])["methods_manifests"]
    assert {r["for"] for r in read} == {"base", "ft"} and all(len(r["sha256"]) == 64 for r in read)
    # a probing run given directly: groups per language and category, and lexicon coverage from profiles.csv
    files = draw(cli, [run_dirs["base"]], tmp_path / "base_only", "--formats", "png")
    methods = sections(files["report.md"].decode("utf-8"))["Methods"]
    assert "| language | gender | religion |" in methods and "| en | 5 | 4 |" in methods
    assert "50.0%" in methods  # n_covered / n_words = 5 / 10


def test_p_floor_is_noted(run_dirs, tmp_path, cli):
    corr = tmp_path / "corr"
    shutil.copytree(run_dirs["corr"], corr)
    table = pd.read_csv(corr / "correlations.csv", keep_default_na=False, na_values=[""])
    table.loc[table["p"] <= 1 / 51 + 1e-12, "p"] = 2 / 51  # none at the floor
    table.to_csv(corr / "correlations.csv", index=False)
    report = draw(cli, [corr], tmp_path / "a", "--formats", "png")["report.md"].decode("utf-8")
    assert "1/(B+1)" not in sections(report)["corr"] and "†" not in report
    table.loc[(table["method"] == "rsa") & (table["category"] == "all"), "p"] = 1 / 51
    table.to_csv(corr / "correlations.csv", index=False)
    report = draw(cli, [corr], tmp_path / "b", "--formats", "png")["report.md"].decode("utf-8")
    assert "p = 1/(B+1) = 0.0196" in report and "the smallest p the B permutations can give" in report
    assert "0.0196 †" in report


def test_null_band_is_shown_when_the_table_has_it(run_dirs, tmp_path, cli):
    """Works with correlations.csv files written before and after the null_* columns were added."""
    corr = tmp_path / "corr"
    shutil.copytree(run_dirs["corr"], corr)
    table = pd.read_csv(corr / "correlations.csv", keep_default_na=False, na_values=[""])
    table = table.drop(columns=[c for c in ("null_mean", "null_low", "null_high") if c in table.columns])
    table.to_csv(corr / "correlations.csv", index=False)
    before = draw(cli, [corr], tmp_path / "a", "--formats", "png")["report.md"].decode("utf-8")
    assert "null 95% band" not in before and "| comparison | language | method | rho | 95% CI | p |" in before
    table["null_mean"], table["null_low"], table["null_high"] = 0.111, -0.222, 0.333
    table.to_csv(corr / "correlations.csv", index=False)
    after = draw(cli, [corr], tmp_path / "b", "--formats", "png")["report.md"].decode("utf-8")
    assert "| comparison | language | method | rho | 95% CI | null mean | null 95% band |" in after
    assert "[-0.222, 0.333]" in after


def test_correlation_figures_name_the_compared_models(run_dirs):
    run = figures.load_run(run_dirs["corr"], "corr")
    with matplotlib.rc_context(figures.STYLE):
        drawn = list(figures.correlation_figures(run))
    try:
        for figure in drawn:
            assert "ft vs base" in figure.figure.axes[0].get_title() and "ft vs base" in figure.caption
            assert figure.run == "corr" and figure.kind == "correlations"
    finally:
        for figure in drawn:
            plt.close(figure.figure)


def test_undefined_fairness_value_is_marked_in_the_forest_data(run_dirs):
    table = pd.read_csv(run_dirs["fair"] / "fairness.csv", keep_default_na=False, na_values=[""])
    table["note"] = table["note"].astype(str)
    block = table[(table["scope"] == "group") & (table["language"] == "en")].copy()
    hit = block.index[(block["group_id"] == "women") & (block["metric"] == "bpsn_auc")]
    block.loc[hit, ["value", "ci_low", "ci_high"]] = np.nan
    block.loc[hit, "note"] = "no toxic background example"
    data = figures.forest_data(block, ["women", "muslims"], "group_id", figures.GROUP_METRICS)
    assert len(data) == 2 * len(figures.GROUP_METRICS)
    marked = data[data["undefined"]]
    assert marked[["row", "metric", "note"]].values.tolist() == [["women", "bpsn_auc", "no toxic background example"]]
    assert data.loc[~data["undefined"], "value"].notna().all()
    absent = figures.forest_data(block, ["nobody"], "group_id", ("subgroup_auc",))
    assert absent["undefined"].tolist() == [True] and absent["note"].tolist() == ["no value"]
    limits = figures.metric_limits(block, figures.GROUP_METRICS, {m: [0.5] for m in figures.GROUP_METRICS})
    with matplotlib.rc_context(figures.STYLE):
        fig = figures.forest(data, ["women", "muslims"], figures.GROUP_METRICS, "t", limits,
                             {m: [(0.5, "0.5 (chance)")] for m in figures.GROUP_METRICS})
    try:
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert texts == ["undefined"]
        assert [ax.get_xlim() for ax in fig.axes] == [limits[m] for m in figures.GROUP_METRICS]
    finally:
        plt.close(fig)


def test_long_categories_are_split_and_labelled_with_group_names(tmp_path):
    groups = [("country", f"c{i:03d}") for i in range(90)] + [("gender", g) for g in ("women", "men", "boys")]
    folder = write_run(tmp_path / "many", profiles(seed=1, groups=groups))
    run = figures.load_run(folder, "many")
    with matplotlib.rc_context(figures.STYLE):
        drawn = list(figures.profile_figures(run))
    try:
        assert [f.name for f in drawn] == ["emotions_many_country_1of3", "emotions_many_country_2of3",
                                           "emotions_many_country_3of3", "emotions_many_gender"]
        labels = [t.get_text() for t in drawn[-1].figure.axes[0].get_yticklabels()]
        assert labels == ["women-en", "men-en", "boys-en"]  # the English names, not the ids
        assert all(len(f.figure.axes[0].get_yticklabels()) <= 40 for f in drawn)
    finally:
        for figure in drawn:
            plt.close(figure.figure)


def test_recall_curves_and_table(tmp_path, cli):
    """A recall.csv (analysis.recall) gives one curve figure per level and language, and its table."""
    rows = []
    for run in ("base", "ft"):
        for level in ("row", "group"):
            for category in ("all", "gender", "religion"):
                for k in (1, 10, 100):
                    recall = 0.1 * np.log10(k) + (0.05 if run == "ft" else 0.0)
                    rows.append({"run": run, "language": "en", "level": level, "category": category, "k": k,
                                 "recall": recall, "n": 40, "recalled": round(40 * recall), "n_groups": 8,
                                 "ci_low": max(recall - 0.05, 0), "ci_high": recall + 0.05})
    folder = tmp_path / "rec"
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "recall.csv", index=False)
    files = draw(cli, [folder], tmp_path / "out", "--formats", "png")
    assert {"figures/recall_rec_row_en.png", "figures/recall_rec_group_en.png"} <= set(files)
    report = files["report.md"].decode("utf-8")
    section = sections(report)["rec"]
    assert "### Recall of human-collected stereotypes" in section
    assert "| run | language | level | recall@1 | recall@10 | recall@100 |" in section
    assert "| ft | en | row | 0.050 [0.000, 0.100] | 0.150 [0.100, 0.200] | 0.250 [0.200, 0.300] |" in section
    assert "Per category, at k = 100:" in section
    assert section.count("![recall_rec_") == 2


def test_methods_give_each_runs_completion_mode_and_lexicon_reach(tmp_path, cli):
    """A word-mode run records its mode and lexicon reach; a run made before both is a token-mode run
    whose reach is n/a; without any reach recorded the report says so in one line."""
    word = write_run(tmp_path / "word", profiles(seed=0))
    write_probing_manifest(word, "m", random_weights=False)
    manifest = json.loads((word / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(completions={"mode": "word", "max_pieces": 4}, lexicon_reach={"en": 0.995, "fr": 0.98})
    (word / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    old = write_run(tmp_path / "old", profiles(seed=1))
    write_probing_manifest(old, "m", random_weights=False)
    methods = sections(draw(cli, [word, old], tmp_path / "out", "--formats", "png")["report.md"].decode())["Methods"]
    models = [line for line in methods.splitlines() if line.startswith("| ")][:3]
    assert "| top_k | completions | lexicon |" in models[0]
    assert "| 123 | word (up to 4 pieces) |" in models[1] and "| 123 | token |" in models[2]
    assert "| run | en | fr |\n|---|---|---|\n| word | 99.5% | 98.0% |\n| old | n/a | n/a |" in methods
    methods = sections(draw(cli, [old], tmp_path / "only_old", "--formats", "png")["report.md"].decode())["Methods"]
    assert "Lexicon reach (the share of each lexicon's entries the completions can reach): not recorded" in methods
    assert "| run | en | fr |" not in methods


def test_recall_table_names_each_runs_completion_mode(tmp_path, cli):
    """The recall manifest's input records (analysis.recall) give each run's mode and random-weights flag."""
    folder = tmp_path / "rec"
    folder.mkdir()
    pd.DataFrame([{"run": run, "language": "en", "level": "row", "category": "all", "k": 1, "recall": 0.1, "n": 10,
                   "recalled": 1, "n_groups": 3, "ci_low": 0.0, "ci_high": 0.2} for run in ("base", "word")]
                 ).to_csv(folder / "recall.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({"inputs": [
        {"table": "stereotypes"}, {"run": "base", "completions": "token", "random_weights": True},
        {"run": "word", "completions": "word", "random_weights": False}]}), encoding="utf-8")
    section = sections(draw(cli, [folder], tmp_path / "out", "--formats", "png")["report.md"].decode())["rec"]
    assert "| base (random weights, token mode) | en | row |" in section
    assert "| word (word mode) | en | row |" in section


# ---- report.md's summary ----------------------------------------------------------------------------------

PLANTED_GROUPS = [("gender", f"g{i:02d}") for i in range(12)] + [("religion", f"r{i:02d}") for i in range(12)]


def summary_bullets(report: str) -> dict[str, str]:
    """The summary's per-language bullets: language -> what moved (the text before "Pooled rho")."""
    summary = sections(report)["Summary"]
    return {m.group(1): m.group(2).split(" Pooled rho:")[0]
            for m in re.finditer(r"^- \*\*(\w+)\*\*:? (.*)$", summary, flags=re.M)}


def test_summary_names_exactly_the_planted_shift(tmp_path, cli):
    """Two runs equal but for one emotion (fear) in one language (fr), raised by 0.3 for every group: the
    summary names that shift, with its interval, and no other. The shift is clear by interval (every group
    moves by exactly 0.3) and by a test (24 groups, all the same sign)."""
    reference = profiles(seed=3, languages=("de", "en", "fr"), groups=PLANTED_GROUPS)
    reference[list(figures.EMOTIONS)] = (reference[list(figures.EMOTIONS)] * 0.6).round(4)
    other = reference.copy()
    other.loc[other["language"] == "fr", "fear"] += 0.3
    base, ft = write_run(tmp_path / "base", reference), write_run(tmp_path / "ft", other)
    corr = tmp_path / "corr"
    assert correlate.main([str(base), str(ft), "--permutations", "999", "--bootstrap", "200",
                           "--output_dir", str(corr)]) == 0
    report = draw(cli, [corr], tmp_path / "out", "--formats", "png")["report.md"].decode("utf-8")
    assert report.index("## Summary") < report.index("## Methods") < report.index("## corr")
    moved = summary_bullets(report)
    assert set(moved) == {"de", "en", "fr"}
    assert moved["fr"].startswith("(24 groups): 1 of 10 emotions moved: fear +0.300 [0.300, 0.300]"), moved["fr"]
    assert moved["de"] == moved["en"] == "(24 groups): no emotion moved (of 10)."
    assert sections(report)["Summary"].count("emotions moved:") == 1
    # the details: the shift table marks that one cell
    shifts = next(line for line in sections(report)["corr"].split("### Shifts")[1].splitlines()
                  if line.startswith("| base vs ft | fr |"))
    assert shifts.count("*") == 1 and "+0.300*" in shifts


def test_undefined_rows_collapse_into_one_sentence_per_cause(tmp_path, cli):
    """de has no covered word in `ft` (every profile empty): one sentence says so, from excluded.csv; en's
    surprise is the same for every group: one sentence for those rows, from the note column."""
    reference = profiles(seed=4, languages=("de", "en", "fr"))
    reference.loc[reference["language"] == "en", "surprise"] = 0.5
    other = reference.copy()
    other.loc[other["language"] == "de", list(figures.EMOTIONS)] = np.nan
    other.loc[other["language"] == "de", "n_covered"] = 0
    base, ft = write_run(tmp_path / "base", reference), write_run(tmp_path / "ft", other)
    corr = tmp_path / "corr"
    assert correlate.main([str(base), str(ft), "--permutations", "20", "--bootstrap", "20",
                           "--output_dir", str(corr)]) == 0
    table = pd.read_csv(corr / "correlations.csv", keep_default_na=False, na_values=[""])
    assert table.loc[table["language"] == "de", "rho"].isna().all()  # the rows the sentences explain
    assert table.loc[(table["language"] == "en") & (table["emotion"] == "surprise"), "rho"].isna().all()
    report = draw(cli, [corr], tmp_path / "out", "--formats", "png")["report.md"].decode("utf-8")
    causes = re.findall(r"^- (.+)$", sections(report)["Summary"].split("one line per cause:")[1].split("\n\n\n")[0],
                        flags=re.M)
    causes = [c for c in causes if not c.startswith("**")]
    assert causes == ["de: all 9 groups left out (undefined profile in ft (no covered word)): every row undefined.",
                      "`emotion`, constant across groups: rho undefined: en 3 of 30 rows."], causes
    assert "| n/a |" not in sections(report)["corr"].split("All groups of each language")[0]


def test_rows_that_cannot_reject_are_listed_once(tmp_path, cli):
    """A correlations.csv with the columns of adaptive tests (n_permutations, p_floor, cannot_reject,
    bh_family, significant) and a manifest with alpha and a stopping rule: the rows that cannot reject
    are listed once, by p_floor, never as "not significant"; the families, alpha and the rule are named."""
    rows = []
    for method in ("spearman", "rsa"):
        for category, n, p, floor in (("age", 3, 1 / 6, 1 / 6), ("gender", 12, 0.001, 0.001), ("all", 15, 0.001, 0.001)):
            rows.append({"comparison": "base vs ft", "language": "en", "category": category, "method": method,
                         "emotion": "", "rho": 0.4, "p": p, "p_adjusted": min(1.0, 3 * p),
                         "bh_family": f"base vs ft | {method}", "significant": p < 0.05,
                         "n_permutations": 999 if p < 0.05 else 5, "p_floor": floor, "cannot_reject": floor > 0.1,
                         "null_mean": 0.0, "null_low": -0.2, "null_high": 0.2, "ci_low": 0.1, "ci_high": 0.6,
                         "n_groups": n, "reference": "base", "other": "ft", "note": ""})
    folder = tmp_path / "corr"
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "correlations.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({
        "alpha": 0.1, "bh_family": "comparison_method", "permutations": 999,
        "stopping_rule": "stop once 10 permutations reach the observed statistic", "parameters": {"mode": "models"},
    }), encoding="utf-8")
    report = draw(cli, [folder], tmp_path / "out", "--formats", "png")["report.md"].decode("utf-8")
    summary = sections(report)["Summary"]
    assert summary.count("can never be significant") == 1 and report.count("can never be significant") == 1
    assert ("These 2 rows can never be significant at alpha = 0.1, whatever the data: their smallest attainable p "
            "(`p_floor`) exceeds alpha, so they are not negative results — p_floor 0.167: en/age (2 rows).") in summary
    assert "`base vs ft | spearman`, `base vs ft | rsa`" in summary and "adjusted p ≤ 0.1" in summary
    bullet = summary_bullets(report)["en"]
    assert "spearman 2 of 3 (gender, all; 1 cannot reject); rsa 2 of 3 (gender, all; 1 cannot reject)" in bullet
    assert "age" not in bullet and "not significant" not in report
    methods = sections(report)["Methods"]
    assert "5 to 999 permutations per test" in methods
    assert "stopping rule: stop once 10 permutations reach the observed statistic" in methods
    assert "significant at alpha = 0.1" in methods and "`base vs ft | rsa`" in methods
    # the pooled rows: † at their own floor, 1/(999 + 1)
    pooled = [line for line in sections(report)["corr"].splitlines() if line.startswith("| base vs ft | en |")]
    assert len(pooled) == 2 and all("| 0.001 † | 0.003 | yes | 15 |" in line for line in pooled), pooled
