"""analysis.explore: the Streamlit explorer driven headless (AppTest) on run folders made here by
probing.run (tiny-xlmr), analysis.correlate and analysis.recall; the CLI's checks."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from analysis_helpers import one_line_error
from streamlit.testing.v1 import AppTest

from analysis import correlate, explore, recall
from probing import run as probing_run
from probing.lexicon import EMOTIONS
from probing.predictions import SCHEMA, read_predictions, write_predictions

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "analysis" / "explore_app.py")
PROBE = ["--model", "tiny-xlmr", "--completions", "token", "--languages", "en", "fr", "--categories", "religion", "--top_k", "200", "--quiet"]
VIEWS = ["Profiles", "Completions", "Correlations", "Recall", "Runs"]


def _main(main, argv):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 0


@pytest.fixture(scope="module")
def folders(tiny_dir, tmp_path_factory):
    """Two probing runs of tiny-xlmr on en and fr religion groups (``base``: count weighting, ``prob``:
    probability weighting, so their profiles differ), their correlations and their recall."""
    root = tmp_path_factory.mktemp("explore")
    _main(probing_run.main, [*PROBE, "--output_dir", str(root / "base")])
    _main(probing_run.main, [*PROBE, "--weighting", "probability", "--output_dir", str(root / "prob")])
    _main(correlate.main, [str(root / "base"), str(root / "prob"), "--permutations", "50", "--bootstrap", "50",
                           "--output_dir", str(root / "corr")])
    _main(recall.main, [str(root / "base"), str(root / "prob"), "--k", "1", "5", "10", "--bootstrap", "20",
                        "--output_dir", str(root / "rec")])
    return {name: root / name for name in ("base", "prob", "corr", "rec")}


def app(monkeypatch, *paths) -> AppTest:
    """The app as `streamlit run analysis/explore_app.py -- PATHS...` starts it."""
    monkeypatch.setattr(sys, "argv", [APP, *map(str, paths)])
    return AppTest.from_file(APP, default_timeout=60)


def tables(at: AppTest) -> dict[str, pd.DataFrame]:
    """Every table shown, by the key of its download button; fails unless each table has one."""
    assert len(at.dataframe) == len(at.download_button) > 0
    return {button.key.removeprefix("download_"): frame.value for frame, button in zip(at.dataframe, at.download_button)}


def ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _decoded(value):
    """Plotly's JSON with its typed arrays (``{"bdata": base64, "dtype": ...}``) as numpy arrays."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            return array.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else array
        return {key: _decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


def charts(at: AppTest) -> list[dict]:
    """The plotly figures shown, as dicts (``data``: the traces, ``layout``)."""
    return [_decoded(json.loads(chart.proto.spec)) for chart in at.get("plotly_chart")]


def covered_group(folder: Path, language: str = "en") -> str:
    profiles = pd.read_csv(folder / "profiles.csv")
    rows = profiles[(profiles["language"] == language) & (profiles["n_covered"] > 0)]
    return str(rows["group_id"].iloc[0])


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders_with_a_download_per_table(view, folders, monkeypatch):
    at = app(monkeypatch, *folders.values())
    at.query_params["view"] = view
    ok(at.run())
    assert at.sidebar.radio(key="view").value == view
    shown = tables(at)
    expected = {"Profiles": {"profiles_table"},
                "Completions": {"sentences_base", "kept_base", "reasons_base", "dropped_base"},
                "Correlations": {"correlations_table", "shifts_table"},
                "Recall": {"recall_table"},
                "Runs": {"runs_table", "filters_base", "filters_prob"}}[view]
    assert expected <= set(shown)
    if view in ("Profiles", "Correlations", "Recall"):
        assert at.get("plotly_chart")


def test_a_group_shows_its_profile_and_the_completions_behind_it(folders, monkeypatch):
    group = covered_group(folders["base"])
    at = app(monkeypatch, folders["base"])
    at.run()
    at.sidebar.multiselect(key="language").set_value(["en"])
    at.sidebar.selectbox(key="category").set_value("religion")
    at.sidebar.selectbox(key="group").set_value(group)
    ok(at.run())
    profile = tables(at)["profiles_table"]
    expected = pd.read_csv(folders["base"] / "profiles.csv")
    expected = expected[(expected["language"] == "en") & (expected["group_id"] == group)]
    assert len(profile) == 1 and profile["run"].tolist() == ["base"]
    np.testing.assert_allclose(profile[list(EMOTIONS)].to_numpy(float), expected[list(EMOTIONS)].to_numpy(float))
    n_words, n_covered = int(expected["n_words"].iloc[0]), int(expected["n_covered"].iloc[0])
    assert profile[["n_words", "n_covered"]].values.tolist() == [[n_words, n_covered]]
    chart = charts(at)[0]
    assert any(f"({n_covered}/{n_words} words covered)" in str(trace.get("customdata")) for trace in chart["data"])

    at.sidebar.radio(key="view").set_value("Completions")
    ok(at.run())
    shown = tables(at)
    kept, dropped = shown["kept_base"], shown["dropped_base"]
    # oracle: the whole file read and filtered in pandas
    everything = read_predictions(folders["base"])
    rows = everything[(everything["language"] == "en") & (everything["group_id"] == group)]
    assert len(kept) + len(dropped) == len(rows) == 5 * 200  # five templates of top-200
    want = rows[rows["kept"]].astype({"template_id": str}).sort_values(["template_id", "rank"])
    assert kept["word"].tolist() == want["word"].astype(str).tolist()
    assert kept["rank"].tolist() == want["rank"].tolist()
    np.testing.assert_allclose(kept["probability"], np.exp(want["log_prob"].to_numpy(np.float64)), rtol=1e-12)
    # the profile counts the distinct (lower-cased) kept words, and those of them the lexicon lists
    assert kept["word"].str.lower().nunique() == n_words
    assert kept.loc[kept["dimensions"] != explore.NOT_IN_LEXICON, "word"].str.lower().nunique() == n_covered
    reasons = shown["reasons_base"].set_index("drop_reason")["n"].to_dict()
    assert reasons == rows.loc[~rows["kept"], "drop_reason"].astype(str).value_counts().to_dict()
    assert set(dropped["drop_reason"]) == set(reasons) and "" not in reasons

    at.selectbox(key="template").set_value("why_so")
    ok(at.run())
    shown = tables(at)
    assert set(shown["kept_base"]["template_id"]) == {"why_so"}
    assert len(shown["kept_base"]) + len(shown["dropped_base"]) == 200
    assert shown["sentences_base"]["sentence"].tolist() == [
        rows.loc[rows["template_id"] == "why_so", "sentence"].astype(str).iloc[0]]


def test_two_runs_compare_side_by_side(folders, monkeypatch):
    group = covered_group(folders["base"])
    at = app(monkeypatch, folders["base"], folders["prob"])
    at.run()
    at.sidebar.selectbox(key="compare").set_value("prob")
    at.sidebar.multiselect(key="language").set_value(["en", "fr"])
    at.sidebar.selectbox(key="group").set_value(group)
    ok(at.run())
    shown = tables(at)
    profile = shown["profiles_table"]
    assert profile[["run", "language"]].values.tolist() == [["base", "en"], ["base", "fr"], ["prob", "en"],
                                                             ["prob", "fr"]]
    base, prob = (pd.read_csv(folders[name] / "profiles.csv").set_index(["language", "group_id"]) for name in
                  ("base", "prob"))
    shift = shown["profile_shift"].set_index("language")
    for language in ("en", "fr"):
        expected = prob.loc[(language, group), list(EMOTIONS)].astype(float) - base.loc[
            (language, group), list(EMOTIONS)].astype(float)
        np.testing.assert_allclose(shift.loc[language, list(EMOTIONS)].astype(float), expected, equal_nan=True)
    assert {trace["name"] for trace in charts(at)[0]["data"]} == {"base", "prob"}

    at.radio(key="chart").set_value("radar")
    ok(at.run())
    radar = charts(at)[0]["data"]
    assert len(radar) == 4 and {t["type"] for t in radar} == {"scatterpolar"}

    at.sidebar.radio(key="view").set_value("Completions")
    ok(at.run())
    shown = tables(at)
    assert set(shown["kept_base"]["language"]) == set(shown["kept_prob"]["language"]) == {"en", "fr"}
    # the same predictions: the runs differ in weighting only
    pd.testing.assert_frame_equal(shown["kept_base"], shown["kept_prob"])


def test_a_word_mode_run_shows_whole_words_with_their_pieces_and_its_mode(folders, monkeypatch, tmp_path):
    """The base run made a word-mode run: its first kept English completion of the group becomes a whole word of
    three pieces. The completions view shows the word with n_pieces and each run's mode; Runs shows mode and reach."""
    group = covered_group(folders["base"])
    word = tmp_path / "word"
    shutil.copytree(folders["base"], word)
    rows = read_predictions(word)
    first = rows.index[(rows["language"] == "en") & (rows["group_id"] == group) & rows["kept"]
                       & (rows["template_id"] == "why_so")][0]
    for column in ("token", "word", "lemma"):
        rows[column] = rows[column].astype(str)
    rows.loc[first, ["token", "word", "lemma", "n_pieces"]] = ["\u2581mé chant es", "méchantes", "méchant", 3]
    write_predictions(word / "predictions.parquet", [pa.Table.from_pandas(rows, schema=SCHEMA, preserve_index=False)])
    manifest = json.loads((word / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(completions={"mode": "word", "max_pieces": 4}, lexicon_reach={"en": 0.99, "fr": 0.97})
    (word / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    at = app(monkeypatch, folders["base"], word)
    at.query_params.update(view="Completions", run="word", compare="base", language=["en"], category="religion",
                           group=group)
    ok(at.run())
    at.selectbox(key="template").set_value("why_so")
    ok(at.run())
    kept = tables(at)["kept_word"]
    assert list(kept.columns) == explore.KEPT_COLUMNS
    assert kept[["rank", "word", "n_pieces"]].iloc[0].tolist() == [rows.loc[first, "rank"], "méchantes", 3]
    assert (kept["n_pieces"].iloc[1:] == 1).all() and (tables(at)["kept_base"]["n_pieces"] == 1).all()
    captions = [c.value for c in at.caption]
    assert "Completion mode: word (up to 4 pieces): each completion is a whole word; n_pieces is its number " \
           "of tokens." in captions
    assert any(c.startswith("Completion mode: token: each completion is one vocabulary token") for c in captions)

    at.sidebar.radio(key="view").set_value("Runs")
    ok(at.run())
    runs = tables(at)["runs_table"].set_index("run")
    assert runs.loc["word", "completions"] == "word (up to 4 pieces)" and runs.loc["base", "completions"] == "token"
    assert runs.loc["word", "lexicon reach"] == "en 99.0%, fr 97.0%"
    base_reach = json.loads((folders["base"] / "manifest.json").read_text(encoding="utf-8"))["lexicon_reach"]
    assert runs.loc["base", "lexicon reach"] == ", ".join(f"{lang} {100 * share:.1f}%" for lang, share in base_reach.items())
    old = tmp_path / "old"  # a run made before lexicon reach was recorded
    shutil.copytree(word, old)
    manifest.pop("lexicon_reach")
    (old / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    at = app(monkeypatch, folders["base"], old)
    at.query_params.update(view="Runs")
    ok(at.run())
    assert tables(at)["runs_table"].set_index("run").loc["old", "lexicon reach"] == "not recorded"


def test_the_url_query_restores_the_state_and_follows_it(folders, monkeypatch):
    group = covered_group(folders["prob"], "fr")
    at = app(monkeypatch, folders["base"], folders["prob"])
    at.query_params.update(view="Completions", run="prob", compare="base", language=["fr"], category="religion",
                           group=group)
    ok(at.run())
    sidebar = at.sidebar
    assert sidebar.radio(key="view").value == "Completions"
    assert sidebar.selectbox(key="run").value == "prob" and sidebar.selectbox(key="compare").value == "base"
    assert sidebar.multiselect(key="language").value == ["fr"]
    assert sidebar.selectbox(key="group").value == group
    assert set(tables(at)["kept_prob"]["language"]) == {"fr"}
    assert at.query_params == {"view": "Completions", "run": "prob", "language": "fr", "category": "religion",
                               "group": group, "compare": "base"}
    sidebar.multiselect(key="language").set_value(["en", "fr"])
    sidebar.radio(key="view").set_value("Profiles")
    ok(at.run())
    assert at.query_params["language"] == ["en", "fr"] and at.query_params["view"] == "Profiles"


def test_analysis_folders_alone_leave_the_profile_views_explained(folders, monkeypatch):
    at = app(monkeypatch, folders["corr"], folders["rec"])
    for view in ("Profiles", "Completions"):
        at.query_params["view"] = view
        ok(at.run())
        assert [i.value for i in at.info] == ["none of the folders is a probing run (profiles.csv); pass one written "
                                              "by python -m probing.run"]
        assert not at.sidebar.selectbox  # no run, language, category or group to pick
        at = app(monkeypatch, folders["corr"], folders["rec"])


def test_a_link_to_an_unknown_group_warns_and_shows_the_default(folders, monkeypatch):
    at = app(monkeypatch, folders["base"])
    at.query_params.update(group="no_such_group", category="religion")
    ok(at.run())
    assert any("no_such_group" in w.value for w in at.warning)
    profiles = pd.read_csv(folders["base"] / "profiles.csv")
    assert at.sidebar.selectbox(key="group").value == sorted(profiles.loc[profiles["category"] == "religion",
                                                                          "group_id"])[0]


def test_correlations_filter_by_method_and_category(folders, monkeypatch):
    at = app(monkeypatch, folders["corr"], folders["rec"])
    at.query_params["view"] = "Correlations"
    ok(at.run())
    at.multiselect(key="correlation_method").set_value(["spearman"])
    at.multiselect(key="correlation_category").set_value(["religion"])
    ok(at.run())
    table = tables(at)["correlations_table"]
    saved = pd.read_csv(folders["corr"] / "correlations.csv")
    expected = saved[(saved["method"] == "spearman") & (saved["category"] == "religion")]
    assert len(table) == len(expected) > 0
    np.testing.assert_allclose(table[["rho", "ci_low", "ci_high", "null_low", "null_high"]].to_numpy(float),
                               expected[["rho", "ci_low", "ci_high", "null_low", "null_high"]].to_numpy(float))
    shown = charts(at)
    assert len(shown) == 1  # one method chosen
    points = shown[0]["data"][-1]
    np.testing.assert_allclose(points["x"], expected["rho"].to_numpy(float))


def test_recall_curves(folders, monkeypatch):
    at = app(monkeypatch, folders["rec"])
    at.query_params["view"] = "Recall"
    ok(at.run())
    at.selectbox(key="recall_level").set_value("group")
    ok(at.run())
    table = tables(at)["recall_table"]
    saved = pd.read_csv(folders["rec"] / "recall.csv", keep_default_na=False)
    expected = saved[(saved["level"] == "group") & (saved["category"] == "all")]
    assert table[["run", "k", "recalled", "n"]].values.tolist() == expected[["run", "k", "recalled", "n"]].values.tolist()
    curves = charts(at)[0]["data"]
    assert len(curves) == 2 and all(list(c["x"]) == [1, 5, 10] for c in curves)


def test_the_app_on_a_bad_folder_shows_one_error(tmp_path, monkeypatch):
    at = app(monkeypatch, tmp_path / "missing")
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"error: {tmp_path / 'missing'} does not exist; pass run folders written "
                                           f"by probing.run, analysis.correlate or analysis.recall"]


@pytest.fixture
def no_server(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a server was started")

    monkeypatch.setattr(explore.os, "execv", refuse)


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("empty_folder", "holds none of profiles.csv, correlations.csv, recall.csv"),
    ("figures_folder", "holds none of profiles.csv, correlations.csv, recall.csv"),
    ("fairness_folder", "holds none of profiles.csv, correlations.csv, recall.csv"),
    ("empty_profiles", "has none of"),  # analysis.figures.load_run skips empty tables
    ("a_file", "is not a folder"),
    ("foreign_profiles", "lacks column(s)"),
    ("foreign_predictions", "not a predictions table"),
    ("port", "--port must be between 1 and 65535"),
    ("no_folder", "the following arguments are required"),
])
def test_cli_bad_input_is_one_line_exit_2_before_any_server(case, message, tmp_path, cli, no_server, folders):
    folder = tmp_path / case
    argv = [str(folder)]
    if case == "empty_folder":
        folder.mkdir()
    elif case == "figures_folder":  # what analysis.figures writes: report.md and figures, no table
        folder.mkdir()
        (folder / "report.md").write_text("# report\n", encoding="utf-8")
    elif case == "fairness_folder":  # analysis.fairness output: not shown by the explorer
        folder.mkdir()
        pd.DataFrame({"scope": ["language"], "metric": ["roc_auc"], "value": [0.5]}).to_csv(folder / "fairness.csv")
    elif case == "empty_profiles":
        folder.mkdir()
        (folder / "profiles.csv").write_text("", encoding="utf-8")
    elif case == "a_file":
        folder.write_text("x\n", encoding="utf-8")
    elif case == "foreign_profiles":
        folder.mkdir()
        pd.DataFrame({"name": ["a"], "score": [1]}).to_csv(folder / "profiles.csv", index=False)
    elif case == "foreign_predictions":
        folder.mkdir()
        (folder / "profiles.csv").write_bytes((folders["base"] / "profiles.csv").read_bytes())
        pd.DataFrame({"language": ["en"]}).to_parquet(folder / "predictions.parquet")
    elif case == "port":
        argv = [str(folders["base"]), "--port", "0"]
    elif case == "no_folder":
        argv = []
    line = one_line_error(*cli(explore.main, argv)[::2])
    assert message in line


def test_cli_serves_the_app_on_the_runs(folders, cli, monkeypatch):
    calls = []
    monkeypatch.setattr(explore.os, "execv", lambda path, command: calls.append((path, command)))
    port = free_port()  # the command refuses a busy port
    code, stdout, _ = cli(explore.main, [str(folders["base"]), str(folders["corr"]), "--port", str(port)])
    assert code == 0 and f"http://localhost:{port}" in stdout
    path, command = calls[0]
    assert path == command[0] == sys.executable
    assert command[1:5] == ["-m", "streamlit", "run", str(explore.APP)]
    assert command[command.index("--server.port") + 1] == str(port)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--") + 1:] == [str(folders["base"].resolve()), str(folders["corr"].resolve())]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_module_starts_a_server_that_answers(folders):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "analysis.explore", str(folders["base"]), "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, answer = time.monotonic() + 60, ""
        while time.monotonic() < deadline and server.poll() is None and answer != "ok":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    answer = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert answer == "ok", server.stdout.read1().decode() if server.poll() is not None else "no answer"
    finally:
        server.terminate()
        server.wait(timeout=30)
