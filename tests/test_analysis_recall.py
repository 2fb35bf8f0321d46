"""analysis.recall: recall@k of human stereotypes, checked by hand on a small run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from analysis import recall
from probing.predictions import SCHEMA, write_predictions

# (group_id, category, template_id, sentence): our English sentences of two religion groups
SENTENCES = [
    ("muslims", "religion", "why_so", "Why are Muslims so <mask>?"),
    ("muslims", "religion", "what_makes_so", "What makes Muslims so <mask>?"),
    ("atheists", "religion", "why_so", "Why are atheists so <mask>?"),
]
# per sentence, the words at rank 1, 2, 3 (lemma: simplemma's, "" for none)
WORDS = {
    "why_so|muslims": [("peaceful", "peaceful"), ("Angry", "angry"), ("nice", "nice")],
    "what_makes_so|muslims": [("violent", "violent"), ("strong", "strong"), ("good", "good")],
    "why_so|atheists": [("smart", "smart"), ("rude", "rude"), ("people", "people")],
}


def predictions_table(words=WORDS, pieces=None) -> pa.Table:
    """The run's rows; ``pieces[word]``: the tokens of a whole word of several (word mode), else one token."""
    rows = []
    pieces = pieces or {}
    for group_id, category, template_id, sentence in SENTENCES:
        for rank, (word, lemma) in enumerate(words[f"{template_id}|{group_id}"], start=1):
            token = pieces.get(word, ["\u2581" + word])
            rows.append({"model": "m", "language": "en", "category": category, "group_id": group_id,
                         "group": group_id.capitalize(), "template_id": template_id, "sentence": sentence,
                         "rank": rank, "token_id": rank, "token": " ".join(token), "n_pieces": len(token),
                         "word": word, "lemma": lemma, "log_prob": -float(rank), "score": -float(rank), "kept": True,
                         "drop_reason": ""})
    frame = pd.DataFrame(rows)
    arrays = []
    for field in SCHEMA:
        values = frame[field.name].tolist()
        if pa.types.is_dictionary(field.type):
            arrays.append(pa.array(values, pa.string()).dictionary_encode())
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_predictions(run / "predictions.parquet", [predictions_table()])
    (run / "manifest.json").write_text(json.dumps({"parameters": {"top_k": 3}}), encoding="utf-8")
    return run


def stereotype_file(tmp_path, rows, columns=("language", "group_id", "template_id", "attribute")):
    path = tmp_path / "stereotypes.csv"
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


STEREOTYPES = [
    ("en", "muslims", "why_so", "angry"),      # rank 2 (word, lower-cased)
    ("en", "muslims", "why_so", "Angry "),     # duplicate of the row above once normalised
    ("en", "muslims", "why_so", "violent"),    # only predicted in what_makes_so (rank 1): group level only
    ("en", "muslims", "what_makes_so", "goods"),  # lemma of "goods" is "good": rank 3
    ("en", "atheists", "why_so", "arrogant"),  # never predicted
    ("en", "atheists", "why_so", "smart"),     # rank 1
    ("en", "hindus", "why_so", "spiritual"),   # a group the run did not probe
    ("en", "no_such_group", "why_so", "x"),    # matches nothing of prompts/en.yaml
]


def run_recall(cli, tmp_path, run_dir, stereotypes, *extra, name="out"):
    out = tmp_path / name
    code, stdout, stderr = cli(recall.main, [str(run_dir), "--stereotypes", str(stereotypes), "--k", "1", "2", "3",
                                             "--bootstrap", "200", "--output_dir", str(out), *extra])
    return code, stderr, out


def test_recall_by_hand(cli, tmp_path, run_dir):
    assert recall.known_lemma("goods", "en") == "good"  # the lemma match below rests on simplemma
    code, stderr, out = run_recall(cli, tmp_path, run_dir, stereotype_file(tmp_path, STEREOTYPES))
    assert code == 0, stderr
    table = pd.read_csv(out / "recall.csv")
    rows = table[(table["level"] == "row") & (table["category"] == "all")].set_index("k")
    # usable rows: angry, violent, goods (muslims); arrogant, smart (atheists) -> n = 5
    # k=1: smart; k=2: + angry; k=3: + goods
    assert rows["n"].tolist() == [5, 5, 5]
    assert rows["recalled"].tolist() == [1, 2, 3]
    assert rows["recall"].tolist() == pytest.approx([1 / 5, 2 / 5, 3 / 5])
    groups = table[(table["level"] == "group") & (table["category"] == "all")].set_index("k")
    # muslims {angry, violent, goods} over both templates: violent at 1, angry at 2, goods (good) at 3;
    # atheists {arrogant, smart}: smart at 1
    assert groups["recalled"].tolist() == [2, 3, 4]
    assert groups["recall"].tolist() == pytest.approx([2 / 5, 3 / 5, 4 / 5])
    assert set(table["category"]) == {"all", "religion"}
    assert (table["n_groups"] == 2).all()
    assert (table["ci_low"] <= table["recall"] + 1e-12).all() and (table["recall"] <= table["ci_high"] + 1e-12).all()
    # the interval of each row is that of its per-group counts: row level, k=1, muslims 0 of 3, atheists 1 of 2
    first = table[(table["level"] == "row") & (table["category"] == "all") & (table["k"] == 1)].iloc[0]
    expected = recall.clustered_proportion_interval([0, 1], [3, 2])
    assert (first["ci_low"], first["ci_high"]) == pytest.approx(expected)
    # group level, k=3: muslims 3 of 3, atheists 1 of 2
    last = groups.loc[3]
    assert (last["ci_low"], last["ci_high"]) == pytest.approx(recall.clustered_proportion_interval([3, 1], [3, 2]))

    unmatched = pd.read_csv(out / "unmatched.csv", keep_default_na=False)
    reasons = dict(zip(unmatched["attribute"], unmatched["reason"]))
    assert reasons["angry"] == recall.DUPLICATE
    assert reasons["spiritual"] == recall.NOT_IN_RUN
    assert reasons["x"] == recall.UNKNOWN_GROUP.format(language="en")
    assert len(unmatched) == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stereotypes"]["usable"] == 6 and manifest["stereotypes"]["rows"] == 8
    assert set(manifest["outputs"]) == {"recall.csv", "unmatched.csv"}
    assert manifest["interval_method"] == recall.INTERVAL_METHOD and "Korn-Graubard" in recall.INTERVAL_METHOD


def test_bootstrap_zero_turns_the_intervals_off(cli, tmp_path, run_dir):
    code, stderr, out = run_recall(cli, tmp_path, run_dir, stereotype_file(tmp_path, STEREOTYPES), "--bootstrap", "0")
    assert code == 0, stderr
    table = pd.read_csv(out / "recall.csv")
    assert table["ci_low"].isna().all() and table["ci_high"].isna().all() and table["recall"].notna().all()
    assert json.loads((out / "manifest.json").read_text())["interval_method"] == "none"


def test_input_column_maps_to_template_and_output_repeats(cli, tmp_path, run_dir):
    rows = [("en", "muslims", "Why are Muslims so", "angry"), ("en", "atheists", "why are atheists so ", "smart"),
            ("en", "atheists", "why are atheists so good at", "math")]
    path = stereotype_file(tmp_path, rows, ("language", "group_id", "input", "attribute"))
    code, stderr, out = run_recall(cli, tmp_path, run_dir, path)
    assert code == 0, stderr
    first = pd.read_csv(out / "recall.csv")
    row = first[(first["level"] == "row") & (first["category"] == "all") & (first["k"] == 2)].iloc[0]
    assert (row["n"], row["recalled"]) == (2, 2)
    unmatched = pd.read_csv(out / "unmatched.csv", keep_default_na=False)
    assert unmatched["reason"].tolist() == [recall.NO_TEMPLATE]
    code, _, out2 = run_recall(cli, tmp_path, run_dir, path, name="again")
    assert code == 0
    pd.testing.assert_frame_equal(first, pd.read_csv(out2 / "recall.csv"))


def test_shipped_data_set_loads_and_every_group_is_accounted_for():
    rows, unmapped = recall.load_choenni()
    assert len(rows) + len(unmapped) == 1886
    assert set(unmapped["reason"]) <= {recall.UNMAPPED_GROUP}
    assert not rows["attribute"].str.contains("\n").any()
    source = pd.read_csv(recall.CHOENNI_FILE, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    assert len(source) == 1886 and not source.apply(lambda c: c.str.contains("\n")).any().any()
    usable, unmatched = recall.resolve_templates(rows)
    assert len(usable) + len(unmatched) == len(rows)
    assert unmatched["reason"].ne("").all()
    assert set(usable["template_id"]) <= {"why_so", "what_makes_so", "how_come_so", "why_always_so", "why_all_so",
                                          "country_why_so", "country_what_makes_so", "country_how_come_so",
                                          "country_why_always_so", "country_why_all_people_so"}
    academics = usable[(usable["group_id"] == "academics") & (usable["attribute"] == "pretentious")]
    assert academics["template_id"].tolist() == ["why_so"]


@pytest.mark.parametrize("case, message", [
    ("missing_column", "lacks column"),
    ("no_template_column", "lacks column template_id or input"),
    ("nothing_matches", "no row of"),
    ("absent_from_run", "matches a sentence of the run"),
    ("k_zero", "--k must be 1 or more"),
    ("k_above_top_k", "above the top_k"),
    ("negative_bootstrap", "--bootstrap must be 0 or more"),
    ("confidence_one", "--confidence must be between 0 and 1"),
])
def test_bad_input_is_one_line_exit_2(case, message, cli, tmp_path, run_dir):
    rows, columns = STEREOTYPES, ("language", "group_id", "template_id", "attribute")
    if case == "missing_column":
        rows, columns = [r[:3] for r in STEREOTYPES], ("language", "group_id", "template_id")
    elif case == "no_template_column":
        rows, columns = [(r[0], r[1], r[3]) for r in STEREOTYPES], ("language", "group_id", "attribute")
    elif case == "nothing_matches":
        rows = [("en", "no_such_group", "why_so", "x")]
    elif case == "absent_from_run":
        rows = [("en", "hindus", "why_so", "spiritual")]
    extra = {"negative_bootstrap": ["--bootstrap", "-1"], "confidence_one": ["--confidence", "1"]}.get(case, [])
    path = stereotype_file(tmp_path, rows, columns)
    out = tmp_path / "out"
    k = {"k_zero": ["0", "2"], "k_above_top_k": ["1", "4"]}.get(case, ["1"])
    code, _, stderr = cli(recall.main, [str(run_dir), "--stereotypes", str(path), "--k", *k,
                                        "--output_dir", str(out), *extra])
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], stderr
    assert not out.exists()


def test_default_k_stops_at_the_runs_top_k(cli, tmp_path, run_dir):
    path = stereotype_file(tmp_path, STEREOTYPES)
    out = tmp_path / "out"
    code, _, stderr = cli(recall.main, [str(run_dir), "--stereotypes", str(path), "--output_dir", str(out)])
    assert code == 0, stderr
    assert sorted(set(pd.read_csv(out / "recall.csv")["k"])) == [1]  # of 1 5 10 50 100 200, those <= top_k 3


def write_run(folder, table: pa.Table, manifest: dict):
    folder.mkdir()
    write_predictions(folder / "predictions.parquet", [table])
    (folder / "manifest.json").write_text(json.dumps({"parameters": {"top_k": 3}, **manifest}), encoding="utf-8")
    return folder


def test_a_whole_word_of_several_tokens_is_recalled_at_its_rank_in_word_mode(cli, tmp_path):
    """Word mode: "pretentious" is one completion of three pieces at rank 2 of muslims/why_so, matched whole.
    Token mode predicts one token where the whole word cannot be: nothing recalled, and a note says why."""
    words = {**WORDS, "why_so|muslims": [("peaceful", "peaceful"), ("pretentious", "pretentious"), ("nice", "nice")]}
    word_run = write_run(tmp_path / "word_run",
                         predictions_table(words, {"pretentious": ["\u2581pre", "tent", "ious"]}),
                         {"completions": {"mode": "word", "max_pieces": 4}})
    token_words = {**WORDS, "why_so|muslims": [("peaceful", "peaceful"), ("pre", ""), ("nice", "nice")]}
    token_run = write_run(tmp_path / "token_run", predictions_table(token_words), {})
    path = stereotype_file(tmp_path, [("en", "muslims", "why_so", "pretentious"), ("en", "atheists", "why_so", "smart")])
    out = tmp_path / "out"
    code, _, stderr = cli(recall.main, [str(word_run), str(token_run), "--stereotypes", str(path), "--k", "1", "2",
                                        "--bootstrap", "0", "--output_dir", str(out)])
    assert code == 0, stderr
    table = pd.read_csv(out / "recall.csv")
    rows = table[(table["level"] == "row") & (table["category"] == "all")].set_index(["run", "k"])["recalled"]
    assert rows.to_dict() == {("word_run", 1): 1, ("word_run", 2): 2, ("token_run", 1): 1, ("token_run", 2): 1}
    inputs = {i.get("run"): i for i in json.loads((out / "manifest.json").read_text())["inputs"]}
    assert inputs["word_run"]["completions"] == "word" and inputs["token_run"]["completions"] == "token"
    assert inputs["word_run"]["recalled_rows"] == {"single_token": 1, "multi_token": 1}  # smart; pretentious
    assert inputs["token_run"]["recalled_rows"] == {"single_token": 1, "multi_token": 0}
    notes = [line for line in stderr.splitlines() if "token mode" in line]
    assert len(notes) == 1 and "token_run" in notes[0] and "--completions word" in notes[0]


# --- the interval: Korn-Graubard Clopper-Pearson on an effective sample size (recall.clustered_proportion_interval)

SMALL_CATEGORY = np.array([3, 3, 4, 4, 5, 5, 5])  # 29 rows in 7 groups, as a small category of the data set


def large_category(seed=0):
    """380 groups, 2,000 rows: each group one row plus a uniform share of the other 1,620."""
    return 1 + np.random.default_rng(seed).multinomial(2000 - 380, np.full(380, 1 / 380))


def recall_coverage(sizes, recall_rate, icc, repeats, seed, confidence=0.95):
    """Share of the intervals that cover the true recall, and their mean width, over ``repeats``
    simulated categories. Rows are recalled independently with their group's rate; the group rates
    are ``recall_rate`` (``icc=0``) or drawn from a beta of mean ``recall_rate`` and intra-cluster
    correlation ``icc`` (``a = r (1 - icc) / icc``, ``b = (1 - r) (1 - icc) / icc``)."""
    rng = np.random.default_rng(seed)
    covered, widths = [], []
    for _ in range(repeats):
        if icc == 0:
            rates = np.full(len(sizes), recall_rate)
        else:
            scale = (1 - icc) / icc
            rates = rng.beta(recall_rate * scale, (1 - recall_rate) * scale, size=len(sizes))
        hits = rng.binomial(sizes, rates)
        low, high = recall.clustered_proportion_interval(hits, sizes, confidence=confidence)
        covered.append(low <= recall_rate <= high)
        widths.append(high - low)
    return float(np.mean(covered)), float(np.mean(widths))


@pytest.mark.parametrize("icc", [0.0, 0.1])
def test_interval_covers_a_small_category(icc):
    """Nominal 95% intervals for 29 rows in 7 groups at true recall 0.05 (the old percentile bootstrap
    covered 0.77 there without heterogeneity)."""
    coverage, width = recall_coverage(SMALL_CATEGORY, 0.05, icc, repeats=400, seed=11)
    assert coverage >= 0.90
    assert width < 0.4


@pytest.mark.slow
@pytest.mark.parametrize("recall_rate", [0.02, 0.05, 0.10])
@pytest.mark.parametrize("icc", [0.0, 0.05, 0.2])
def test_interval_covers_small_and_large_categories_large(recall_rate, icc):
    coverage, _ = recall_coverage(SMALL_CATEGORY, recall_rate, icc, repeats=2000, seed=12)
    assert coverage >= 0.90
    coverage, width = recall_coverage(large_category(), recall_rate, icc, repeats=1000, seed=13)
    assert 0.92 <= coverage <= 0.99
    assert width < 6 * recall_rate  # reasonable: well under the recall's scale at 2,000 rows


def test_zero_hits_give_clopper_pearson_on_the_effective_rows():
    """No hit in 29 rows of 7 groups: deff = 1, n_star = 29 (t_28 / t_6)**2, upper bound
    1 - 0.025**(1 / n_star) (Clopper-Pearson with no success), never [0, 0]."""
    n_star = 29 * (stats.t.ppf(0.975, 28) / stats.t.ppf(0.975, 6)) ** 2
    assert n_star == pytest.approx(29 * (2.0484 / 2.4469) ** 2, rel=1e-4)
    low, high = recall.clustered_proportion_interval(np.zeros(7, int), SMALL_CATEGORY)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / n_star), rel=1e-12)
    assert high == pytest.approx(0.1664, abs=1e-3)


def test_one_row_per_group_is_clopper_pearson():
    """With one row per group the df adjustment vanishes (t_{N-1} / t_{G-1} = 1). Zero or all hits
    give deff = 1 and exactly Clopper-Pearson on N rows (scipy.stats.binomtest, an independent
    implementation); otherwise deff = N / (N - 1) (the G / (G - 1) of the variance), so at 2,000 rows
    the bounds agree to within 1e-4."""
    for n_rows, hits in ((40, 0), (40, 40), (2000, 300), (2000, 7)):
        outcomes = np.zeros(n_rows, int)
        outcomes[:hits] = 1
        oracle = stats.binomtest(hits, n_rows).proportion_ci(0.95, method="exact")
        low, high = recall.clustered_proportion_interval(outcomes, np.ones(n_rows, int))
        tolerance = 1e-12 if hits in (0, n_rows) else 1e-4
        assert low == pytest.approx(oracle.low, abs=tolerance)
        assert high == pytest.approx(oracle.high, abs=tolerance)


def test_heterogeneous_groups_widen_the_interval_and_equal_ones_do_not():
    """The same 6 hits in 60 rows: spread evenly (deff truncated to 1) or all in one group (deff > 1)."""
    sizes = np.full(6, 10)
    even = recall.clustered_proportion_interval(np.ones(6, int), sizes)
    clustered = recall.clustered_proportion_interval(np.array([6, 0, 0, 0, 0, 0]), sizes)
    n_star = 60 * (stats.t.ppf(0.975, 59) / stats.t.ppf(0.975, 5)) ** 2
    assert even == pytest.approx((stats.beta.ppf(0.025, 0.1 * n_star, 0.9 * n_star + 1),
                                  stats.beta.ppf(0.975, 0.1 * n_star + 1, 0.9 * n_star)))
    assert clustered[0] < even[0] and clustered[1] > even[1]


def test_a_single_group_has_no_interval_and_confidence_is_monotone():
    assert np.isnan(recall.clustered_proportion_interval([2], [5])).all()
    narrow = recall.clustered_proportion_interval([1, 2, 0], [4, 5, 6], confidence=0.8)
    wide = recall.clustered_proportion_interval([1, 2, 0], [4, 5, 6], confidence=0.99)
    assert wide[0] < narrow[0] < 3 / 15 < narrow[1] < wide[1]


@pytest.mark.parametrize("hits, n, confidence, message", [
    ([1, 2], [3], 0.95, "same length"),
    ([], [], 0.95, "at least one group"),
    ([[1]], [[2]], 0.95, "one-dimensional"),
    ([1, 0], [0, 2], 0.95, "at least one row"),
    ([3, 0], [2, 2], 0.95, "must not exceed"),
    ([-1, 0], [2, 2], 0.95, "non-negative whole"),
    ([0.5, 0], [2, 2], 0.95, "non-negative whole"),
    ([np.nan, 0], [2, 2], 0.95, "non-negative whole"),
    ([1, 0], [2, np.inf], 0.95, "non-negative whole"),
    (["1", "0"], [2, 2], 0.95, "must hold numbers"),
    ([True, False], [2, 2], 0.95, "must hold numbers"),
    ([1, 0], [2, 2], 1.0, "confidence"),
    ([1, 0], [2, 2], 0.0, "confidence"),
    ([1, 0], [2, 2], True, "confidence"),
    ([1, 0], [2, 2], "0.9", "confidence"),
])
def test_interval_rejects_bad_input(hits, n, confidence, message):
    with pytest.raises(ValueError, match=message):
        recall.clustered_proportion_interval(hits, n, confidence=confidence)
