"""analysis.explore: the Streamlit explorer driven headless (AppTest) on run folders made here by
probing.run (tiny-xlmr), analysis.correlate and analysis.recall; its Try a model page on tiny-xlmr and a
multi-task model trained here for two steps (against finetune.predict and plain transformers); the CLI's checks."""

from __future__ import annotations

import base64
import html
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
import torch
from analysis_helpers import one_line_error
from streamlit.testing.v1 import AppTest

from analysis import correlate, explore, recall
from finetune import predict, train
from finetune.config import load_config
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
    ("models_not_a_folder", "is not a folder; pass the folder that holds your model folders"),
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
    elif case == "models_not_a_folder":
        argv = ["--models", str(folder)]
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


def test_cli_without_run_folders_serves_the_model_page_on_its_models_folder(tmp_path, cli, monkeypatch):
    calls = []
    monkeypatch.setattr(explore.os, "execv", lambda path, command: calls.append(command))
    code, stdout, _ = cli(explore.main, ["--models", str(tmp_path), "--port", str(free_port())])
    assert code == 0 and "http://localhost:" in stdout
    command = calls[0]
    assert command[command.index("--") + 1:] == ["--models", str(tmp_path.resolve())]
    assert explore.app_arguments(command[command.index("--") + 1:]).models == str(tmp_path.resolve())


# ---------------------------------------------------------------------------------------------
# Try a model
# ---------------------------------------------------------------------------------------------

SENTENCE = "Anna Smith works for Acme Corporation in Paris , <mask> ."


@pytest.fixture(scope="module")
def multitask(models_dir, tiny_dir):
    """tiny-xlmr trained for two steps with the shipped multi-task config (toxicity: binary, sentiment:
    multiclass, emotion: multilabel, entities: token; auxiliary masked-LM head), in the session's models folder."""
    config = load_config(ROOT / "finetune" / "configs" / "multitask.yaml", {
        "base_model": "tiny-xlmr", "output_name": "tiny-explore-multitask", "max_steps": 2, "batch_size": 4,
        "eval_steps": 0, "max_eval_examples": 8, "early_stopping_patience": 0, "lr_reduce_patience": 0})
    return train.run(config, overwrite=True)


def model_page(monkeypatch, model: str, sentence: str, *paths) -> AppTest:
    """The explorer (no run folder: the Try a model page alone) with ``model`` picked and ``sentence`` typed."""
    at = app(monkeypatch, *paths)
    at.query_params["model"] = model
    ok(at.run())
    at.text_area(key="sentence").input(sentence)
    return ok(at.run())


def test_the_model_page_shows_each_heads_prediction_as_finetune_predict_does(multitask, monkeypatch, tmp_path, cli):
    at = model_page(monkeypatch, "tiny-explore-multitask", SENTENCE)
    assert at.sidebar.radio(key="view").options == ["Try a model"]
    assert at.selectbox(key="model").value == "tiny-explore-multitask"
    assert any("random weights" in w.value for w in at.warning)
    shown = tables(at)
    assert set(shown) == {"task_toxicity", "task_sentiment", "task_emotion", "task_entities", "mask_completions"}
    # oracle: finetune.predict's own output for the sentence, through its command line
    source, output = tmp_path / "one.csv", tmp_path / "one.jsonl"
    pd.DataFrame({"text": [SENTENCE]}).to_csv(source, index=False)
    code, _, err = cli(predict.main, ["--model", "tiny-explore-multitask", "--input", str(source), "--output",
                                      str(output), "--device", "cpu"])
    assert code == 0, err
    want = json.loads(output.read_text(encoding="utf-8").splitlines()[0])

    toxicity = shown["task_toxicity"].set_index("label")["probability"]
    assert toxicity.to_dict() == {"toxic": want["toxicity_p"], "non_toxic": 1 - want["toxicity_p"]}
    sentiment = shown["task_sentiment"]
    assert sentiment.set_index("label")["probability"].to_dict() == {
        label: want[f"sentiment_p_{label}"] for label in ("negative", "neutral", "positive")}
    assert sentiment["label"].iloc[0] == want["sentiment_prediction"]  # most probable first
    assert sentiment["probability"].is_monotonic_decreasing
    emotion = shown["task_emotion"].set_index("label")
    labels = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    assert emotion["score"].to_dict() == {label: want[f"emotion_p_{label}"] for label in labels}
    chosen = [label for label in labels if emotion.loc[label, "predicted"]]
    assert ("|".join(chosen) or "none") == want["emotion_prediction"]
    predictions = [m.value for m in at.markdown if m.value.startswith("**prediction:**")]
    assert predictions == [f"**prediction:** {want['toxicity_prediction']}",
                           f"**prediction:** {want['sentiment_prediction']}",
                           f"**prediction:** {' | '.join(want['emotion_prediction'].split('|'))}"]

    entities = shown["task_entities"]
    tags = want["entities_prediction"]
    assert entities["word"].tolist() == SENTENCE.split() and entities["tag"].tolist() == tags
    assert any(tag != "O" for tag in tags)  # so that the marks below are seen (seeded training)
    body = [h.proto.body for h in at.get("html")]
    assert body == [f"<p>{explore.marked_text(SENTENCE.split(), tags)}</p>"]
    for word, tag in zip(SENTENCE.split(), tags):  # each tagged word inside a mark, its type written after it
        if tag.startswith("B-"):
            assert f"<mark>{html.escape(word)}" in body[0] and f"<small>{tag[2:]}</small></mark>" in body[0]
    assert len(shown["mask_completions"]) == explore.MASK_TOP_K  # its LM head completes <mask> too
    assert at.query_params["model"] == "tiny-explore-multitask"


def test_the_model_page_completes_the_mask_of_a_masked_lm_as_transformers_does(tiny_dir, tiny, monkeypatch):
    sentence = "Paris is the <mask> of France ."
    at = model_page(monkeypatch, "tiny-xlmr", sentence)
    assert any("task heads none (a masked LM only)" in c.value for c in at.caption)
    at.number_input(key="mask_top_k").set_value(12)
    shown = tables(ok(at.run()))
    assert set(shown) == {"mask_completions"}
    completions = shown["mask_completions"]
    # oracle: plain transformers, the softmax of the logits at the mask and its top k
    model, tokenizer = tiny
    encoded = tokenizer(sentence, return_tensors="pt")
    at_mask = encoded["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    with torch.no_grad():
        probabilities = model(**encoded).logits[0, at_mask].double().softmax(-1)
    top = probabilities.topk(13)
    assert completions["rank"].tolist() == list(range(1, 13))
    np.testing.assert_allclose(completions["probability"], top.values[:12].numpy(), rtol=1e-5)
    ids = tokenizer.convert_tokens_to_ids(completions["token"].tolist())
    np.testing.assert_allclose(completions["probability"], probabilities[ids].numpy(), rtol=1e-5)
    if top.values[11] - top.values[12] > 1e-5 * top.values[11]:  # no tie at the cut: the same tokens
        assert set(ids) == set(top.indices[:12].tolist())
    assert completions["word"].tolist() == [tokenizer.convert_tokens_to_string([t]).strip()
                                            for t in completions["token"]]


def test_the_model_page_without_a_sentence_shows_a_hint(tiny_dir, monkeypatch):
    at = app(monkeypatch)
    at.query_params["model"] = "tiny-xlmr"
    ok(at.run())
    assert [i.value for i in at.info] == ["type a sentence to see each head's prediction; put <mask> in it to see "
                                          "the model's completions"]
    assert not at.dataframe
    assert [w.value for w in at.warning] == ["tiny-xlmr has random weights: its predictions mean nothing (tests and "
                                             "demos only)"]

    at.text_area(key="sentence").input("Paris is the capital of France .")  # no mask: say how to get completions
    ok(at.run())
    assert [i.value for i in at.info] == ["put <mask> in the sentence to see the model's top completions there"]


@pytest.mark.parametrize("case, message", [
    ("missing", "is not a folder; pick a folder written by finetune.train or a masked LM's folder"),
    ("run_folder", "is not a model folder (no config.json); pick a folder written by finetune.train"),
    ("broken_config", "cannot be loaded as a model ("),
    ("no_weights", "cannot be loaded as a model ("),
])
def test_the_model_page_on_a_folder_that_is_not_a_model_says_so_once(case, message, tiny_dir, folders, tmp_path,
                                                                      monkeypatch):
    folder = tmp_path / case
    if case == "run_folder":
        folder = folders["base"]
    elif case == "broken_config":
        folder.mkdir()
        (folder / "config.json").write_text("{not json", encoding="utf-8")
    elif case == "no_weights":
        shutil.copytree(tiny_dir, folder)
        (folder / "model.safetensors").unlink()
    at = app(monkeypatch, folders["base"])
    at.query_params["view"] = "Try a model"
    ok(at.run())
    assert at.sidebar.radio(key="view").value == "Try a model"
    at.text_input(key="model_path").input(str(folder))
    at.text_area(key="sentence").input("Paris is the <mask> of France .")
    ok(at.run())
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and message in warnings[0] and str(folder) in warnings[0], warnings
    assert not at.dataframe


def test_entity_marks_by_hand():
    words = ["Anna", "Smith", "&", "John", "visit", "New", "York", "<3"]
    tags = ["B-PER", "I-PER", "O", "I-PER", "O", "B-LOC", "I-LOC"]  # the last word beyond max_length: no tag
    assert explore.entity_spans(tags + [""]) == [(0, 2, "PER"), (3, 4, "PER"), (5, 7, "LOC")]
    assert explore.marked_text(words, tags + [""]) == (
        "<mark>Anna Smith <small>PER</small></mark> &amp; <mark>John <small>PER</small></mark> visit "
        "<mark>New York <small>LOC</small></mark> &lt;3")
