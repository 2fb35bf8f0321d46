"""An explorer of saved results in the browser: ``python -m analysis.explore RUN_DIR... [--port N]``.

Starts a Streamlit app (:mod:`analysis.explore_app`; ``streamlit run analysis/explore_app.py --
RUN_DIR...`` does the same) on the folders that ``probing.run``, ``analysis.correlate`` and
``analysis.recall`` write. Its result pages read their saved tables only, never a model:

* ``profiles.csv`` (and ``filters.csv``, ``manifest.json``) of a probing run: a group's emotion
  profile in each language, beside another run's (base vs fine-tuned), with ``n_words`` and
  ``n_covered``;
* ``predictions.parquet``: the completions behind a profile, per template, read for one group at
  a time with pyarrow filters (a full run holds 3 M rows, one row group per language): the kept
  words (whole words with their ``n_pieces`` tokens in a run probed with ``--completions word``, one
  token each in token mode, the run's mode said above them) with their probability
  ``p = exp(log_prob)``, lemma and lexicon dimensions (the run's own lexicon, looked up as
  :meth:`probing.lexicon.Lexicon.lookup` does), and the dropped ones with their reason;
* ``correlations.csv`` and ``shifts.csv`` (``analysis.correlate``): rho with its bootstrap
  interval and the permutation null band, by method and category;
* ``recall.csv`` (``analysis.recall``): recall@k curves with their intervals.

Its *Try a model* page (the only page when no RUN_DIR is given) loads a model folder, one of
``--models DIR`` (default ``results/models/``) or a path typed in, and shows for a typed sentence
what :func:`finetune.predict.predict` gives for it (each head's classes with probabilities,
multi-label scores, the binary probability, entity tags marked in the text) and, for a masked LM
(a plain one such as ``tiny-xlmr``, or a multi-task model's LM head), the top completions of the
sentence's first mask token, by :class:`probing.engine.MaskedLMScorer`.

This module holds the command line and the table logic (pure functions, tested without a
browser); the page layout is in :mod:`analysis.explore_app`.
"""

from __future__ import annotations

import argparse
import errno
import html
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._common import completion_label, completion_mode, lexicon_reach, read_csv
from analysis.figures import Run, group_labels, load_run, run_labels
from probing import models as model_files
from probing import prompts as prompt_files
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.lexicon import EMOTIONS, Lexicon, load_lexicon
from probing.predictions import PREDICTIONS_FILE, PROFILE_META_COLUMNS, predictions_file, read_predictions

APP = Path(__file__).with_name("explore_app.py")
DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"
EXPLORED = ("profiles.csv", "correlations.csv", "recall.csv")  # a folder must hold one of them
COMPLETION_COLUMNS = ["language", "template_id", "sentence", "rank", "token", "n_pieces", "word", "lemma",
                      "log_prob", "kept", "drop_reason"]  # of predictions.parquet (schema checked by predictions_file)
KEPT_COLUMNS = ["language", "template_id", "rank", "word", "n_pieces", "lemma", "probability", "dimensions"]
DROPPED_COLUMNS = ["language", "template_id", "rank", "token", "word", "n_pieces", "drop_reason", "probability"]
CORRELATION_COLUMNS = ["comparison", "language", "category", "method", "emotion", "rho", "ci_low", "ci_high",
                       "null_low", "null_high", "p", "p_adjusted", "n_groups", "note"]
NOT_IN_LEXICON = "(not in lexicon)"
SHOWN = ("profiles.csv", "correlations.csv", "shifts.csv", "excluded.csv", "recall.csv")  # the tables the pages read
SHOWN_COLUMNS = {  # what the pages read of each table, besides analysis.figures.REQUIRED_COLUMNS
    "profiles.csv": PROFILE_META_COLUMNS,
    "correlations.csv": [*CORRELATION_COLUMNS, "reference", "other"],
    "shifts.csv": ["language", "category"],
    "excluded.csv": ["language", "category"],
    "recall.csv": ["recalled", "n_groups"],
}

EXAMPLES = """examples:
  python -m analysis.explore results/profiles/demo-tiny-xlmr results/profiles/demo-english \\
      results/analysis/demo-correlate results/analysis/demo-recall
  python -m analysis.explore --models results/models   # the "Try a model" page alone
  python -m analysis.explore results/profiles/xlmr-base --port 8600   # then open http://localhost:8600
  ssh -L 8501:localhost:8501 server   # on your laptop, to reach an explorer running on `server`
"""


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def load_runs(paths: list[str | Path]) -> list[Run]:
    """The run folders ``paths``, labelled by folder name (made unique), with their small tables read.

    Each must hold ``profiles.csv``, ``correlations.csv`` or ``recall.csv``; every table the pages read
    must have the columns they read (:data:`SHOWN_COLUMNS`, :func:`analysis.figures.check_table`; profile
    values in [0, 1]); a probing run's ``predictions.parquet`` is checked (schema only) and read later,
    one group at a time. Anything else is a :class:`UserError` naming what to pass.
    """
    if not paths:
        raise UserError("no run folder given; pass folders written by probing.run, analysis.correlate "
                        "or analysis.recall")
    paths = [Path(p) for p in paths]
    runs = []
    for path, label in zip(paths, run_labels(paths)):
        if not path.exists():
            raise UserError(f"{path} does not exist; pass run folders written by probing.run, analysis.correlate "
                            f"or analysis.recall")
        unexplored = UserError(f"{path} holds none of {', '.join(EXPLORED)} (or only empty ones); pass a folder "
                               f"written by probing.run, analysis.correlate or analysis.recall")
        if path.is_dir() and not any((path / name).is_file() for name in EXPLORED):
            raise unexplored
        # a file rather than a folder is refused here; each table is checked, with the columns the pages read
        run = load_run(path, label, SHOWN, SHOWN_COLUMNS)
        if not set(EXPLORED) & set(run.tables):
            raise unexplored
        if "profiles.csv" in run.tables:
            if (path / PREDICTIONS_FILE).exists():
                predictions_file(path)
            if (path / "filters.csv").is_file():
                run.tables["filters.csv"] = read_csv(path / "filters.csv")
        runs.append(run)
    return runs


def probing_runs(runs: list[Run]) -> list[Run]:
    return [run for run in runs if "profiles.csv" in run.tables]


def has_predictions(run: Run) -> bool:
    return (run.path / PREDICTIONS_FILE).is_file()


def random_weights(run: Run) -> bool:
    return bool((run.manifest.get("model") or {}).get("random_weights", False))


def run_summary(run: Run) -> dict:
    """What the Runs page says about a run: where it is, what made it and which tables it holds."""
    manifest = run.manifest
    parameters = manifest.get("parameters") or {}
    model = manifest.get("model") or {}
    tables = {name: len(table) for name, table in run.tables.items()}
    if has_predictions(run):
        rows = ((manifest.get("outputs") or {}).get(PREDICTIONS_FILE) or {}).get("rows")
        tables[PREDICTIONS_FILE] = rows if rows is not None else "not recorded"
    probing = "profiles.csv" in run.tables
    reach = ", ".join(f"{lang} {lexicon_reach(manifest, lang)}" for lang in sorted(manifest.get("lexicon_reach") or {}))
    return {"run": run.label, "folder": str(run.path), "made by": " ".join(manifest.get("command") or []) or "not recorded",
            "created": manifest.get("created", "not recorded"), "model": model.get("name", ""),
            "random weights": bool(model.get("random_weights", False)), "top_k": parameters.get("top_k"),
            "lexicon": parameters.get("lexicon"), "weighting": parameters.get("weighting"),
            "completions": completion_label(manifest) if probing else "",
            "lexicon reach": (reach or "not recorded") if probing else "",
            "tables": ", ".join(f"{name} ({rows} rows)" for name, rows in tables.items())}


def completions_note(run: Run) -> str:
    """What a probing run's completions are (:func:`analysis._common.completion_mode`), for the completions view."""
    if completion_mode(run.manifest) == "word":
        return (f"Completion mode: {completion_label(run.manifest)}: each completion is a whole word; "
                f"n_pieces is its number of tokens.")
    return ("Completion mode: token: each completion is one vocabulary token (n_pieces 1), so a word of several "
            "tokens cannot appear; python -m probing.run --completions word predicts whole words.")


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------

def languages_of(runs: list[Run]) -> list[str]:
    """The languages of the runs' profiles, English first, then alphabetical."""
    found = {str(lang) for run in runs for lang in run.tables["profiles.csv"]["language"].unique()}
    return sorted(found, key=lambda lang: (lang != "en", lang))


def categories_of(runs: list[Run]) -> list[str]:
    return sorted({str(c) for run in runs for c in run.tables["profiles.csv"]["category"].unique()})


def groups_of(runs: list[Run], category: str) -> dict[str, str]:
    """``group_id -> name`` of a category's groups in the runs (the English name when there is one)."""
    block = pd.concat([run.tables["profiles.csv"] for run in runs], ignore_index=True)
    block = block[block["category"] == category]
    group_ids = sorted(dict.fromkeys(block["group_id"].astype(str)))
    return dict(zip(group_ids, group_labels(block, group_ids)))


def emotions_of(profiles: pd.DataFrame) -> list[str]:
    return [c for c in EMOTIONS if c in profiles.columns]


def profile_rows(runs: list[Run], group_id: str, languages: list[str]) -> pd.DataFrame:
    """The group's profile rows in each run and language: ``run``, then profiles.csv's columns."""
    parts = []
    for run in runs:
        profiles = run.tables["profiles.csv"]
        rows = profiles[(profiles["group_id"] == group_id) & profiles["language"].isin(languages)]
        parts.append(rows.assign(run=run.label))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if table.empty:
        return table
    order = {**{lang: i for i, lang in enumerate(languages)}, **{run.label: i for i, run in enumerate(runs)}}
    table = table.sort_values(["run", "language"], key=lambda column: column.map(order), kind="stable")
    first = ["run", "language", "group", "n_words", "n_covered", "n_emotional"]
    return table[[*first, *[c for c in table.columns if c not in first]]].reset_index(drop=True)


def long_profiles(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (:func:`profile_rows`) in long form for charts: one row per run, language and emotion,
    with ``series`` naming the run, language and coverage (``n_covered`` of ``n_words`` words)."""
    emotions = emotions_of(rows.drop(columns="run"))
    series = [f"{lang} · {run} ({covered}/{words} words covered)" for run, lang, covered, words
              in zip(rows["run"], rows["language"], rows["n_covered"], rows["n_words"])]
    table = rows.assign(series=series).melt(id_vars=["run", "language", "series"], value_vars=emotions,
                                            var_name="emotion", value_name="value")
    return table


def coverage_titles(rows: pd.DataFrame) -> dict[str, str]:
    """Per language, a chart title with its runs' coverage (plotly markup: one line per run)."""
    titles = {}
    for language, part in rows.groupby("language", sort=False):
        counts = "<br>".join(f"{run}: {covered} of {words} words covered" for run, covered, words
                             in zip(part["run"], part["n_covered"], part["n_words"]))
        titles[str(language)] = f"<b>{language}</b><br>{counts}"
    return titles


def profile_shift(rows: pd.DataFrame, reference: str, other: str) -> pd.DataFrame:
    """Per language: ``other`` minus ``reference`` for each emotion (NaN where either is undefined)."""
    emotions = emotions_of(rows.drop(columns="run"))
    base = rows[rows["run"] == reference].set_index("language")[emotions]
    compared = rows[rows["run"] == other].set_index("language")[emotions]
    languages = [lang for lang in base.index if lang in compared.index]
    shift = compared.loc[languages] - base.loc[languages]
    return shift.reset_index().assign(compared=f"{other} − {reference}")[["compared", "language", *emotions]]


# ---------------------------------------------------------------------------------------------
# Completions
# ---------------------------------------------------------------------------------------------

def group_predictions(path: str | Path, languages: list[str], group_id: str) -> pd.DataFrame:
    """The prediction rows of one group in ``languages`` (:data:`COMPLETION_COLUMNS`), read with
    pyarrow filters so that the rest of the file is skipped."""
    table = read_predictions(path, columns=COMPLETION_COLUMNS,
                             filters=[("language", "in", list(languages)), ("group_id", "=", group_id)])
    for column in table.columns:
        if isinstance(table[column].dtype, pd.CategoricalDtype):
            table[column] = table[column].astype(str)
    return table


def run_lexicon(run: Run, language: str) -> tuple[Lexicon | None, str]:
    """The lexicon a probing run used for ``language`` (its manifest's ``--lexicon``), and a note:
    ``""``, or why the dimensions cannot be shown or may differ from the run's."""
    spec = (run.manifest.get("parameters") or {}).get("lexicon")
    if not spec:
        return None, f"{run.label}'s manifest does not name its lexicon: dimensions not shown"
    try:
        prompts = prompt_files.load_language(language)
        lexicon = load_lexicon(spec, language, prompts.name, prompts.lemmatizer)
    except UserError as error:
        return None, f"lexicon {spec} for {language} cannot be loaded ({error}): dimensions not shown"
    recorded = ((run.manifest.get("lexicon") or {}).get(language) or {}).get("sha256")
    if recorded and recorded != lexicon.sha256:
        return lexicon, (f"the {spec} lexicon files for {language} differ from those {run.label} was probed with "
                         f"(sha256): dimensions shown are today's")
    return lexicon, ""


def dimensions(words, lemmas, lexicon: Lexicon | None) -> list[str]:
    """Each word's lexicon dimensions, comma-separated (``""``: listed without association;
    :data:`NOT_IN_LEXICON`: not listed).

    >>> lexicon = Lexicon("en", "test", "en", {"happy": frozenset({"joy", "positive"}), "table": frozenset()})
    >>> dimensions(["Happy", "table", "chair"], ["", "", ""], lexicon)
    ['joy, positive', '', '(not in lexicon)']
    """
    if lexicon is None:
        return [""] * len(words)
    out = []
    for word, lemma in zip(words, lemmas):
        dims = lexicon.lookup(word, lemma)[1]
        out.append(NOT_IN_LEXICON if dims is None else ", ".join(d for d in EMOTIONS if d in dims))
    return out


def completion_tables(rows: pd.DataFrame, lexicons: dict[str, Lexicon | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(kept, dropped)`` completions of :func:`group_predictions` rows, by language, template and rank.

    ``probability`` is ``exp(log_prob)``, the model's probability of the token at the mask.
    ``kept`` adds each word's lexicon ``dimensions`` (:func:`dimensions`, with ``lexicons[language]``).
    """
    rows = rows.sort_values(["language", "template_id", "rank"], kind="stable")
    rows = rows.assign(probability=np.exp(rows["log_prob"].to_numpy(dtype=np.float64)))
    kept = rows[rows["kept"]].copy()
    kept["dimensions"] = ""
    for language, part in kept.groupby("language"):
        kept.loc[part.index, "dimensions"] = dimensions(part["word"], part["lemma"], lexicons.get(language))
    dropped = rows[~rows["kept"]]
    return kept[KEPT_COLUMNS].reset_index(drop=True), dropped[DROPPED_COLUMNS].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Correlations and recall
# ---------------------------------------------------------------------------------------------

def filter_rows(table: pd.DataFrame, **chosen) -> pd.DataFrame:
    """Rows of ``table`` whose column ``c`` is one of ``chosen[c]`` (a column given None is not filtered).

    >>> filter_rows(pd.DataFrame({"method": ["rsa", "spearman"], "rho": [0.1, 0.2]}), method=["rsa"])["rho"].tolist()
    [0.1]
    """
    keep = np.ones(len(table), dtype=bool)
    for column, values in chosen.items():
        if values is not None:
            keep &= table[column].astype(str).isin([str(v) for v in values]).to_numpy()
    return table[keep].reset_index(drop=True)


def correlation_label(rows: pd.DataFrame) -> list[str]:
    """A chart row label per correlation row: the emotion (``emotion`` rows), category, language and,
    with several comparisons, the compared run.

    >>> rows = pd.DataFrame({"method": ["rsa", "emotion"], "emotion": ["", "joy"], "category": ["age", "all"],
    ...                      "language": ["en", "fr"], "other": ["ft", "ft"]})
    >>> correlation_label(rows)
    ['age · en', 'joy · all · fr']
    """
    several = rows["other"].nunique() > 1
    labels = []
    for method, emotion, category, language, other in zip(rows["method"], rows["emotion"], rows["category"],
                                                          rows["language"], rows["other"]):
        parts = [str(emotion)] if method == "emotion" else []
        parts += [str(category), str(language)] + ([str(other)] if several else [])
        labels.append(" · ".join(parts))
    return labels


# ---------------------------------------------------------------------------------------------
# Try a model
# ---------------------------------------------------------------------------------------------

MASK_TOP_K = 10  # completions shown unless the page asks for another number
NOT_A_MODEL = "pick a folder written by finetune.train or a masked LM's folder (e.g. tiny-xlmr)"


@dataclass
class TriedModel:
    """A model loaded for the *Try a model* page (:func:`load_model`)."""

    folder: Path
    model: object  # finetune.model.MultiTaskModel in eval mode on `device` (no task for a plain masked LM)
    tokenizer: object
    device: object  # torch.device
    max_length: int  # tokens per sentence for the heads: the model's training max_length
    scorer: object | None  # probing.engine.MaskedLMScorer on the model's LM head; None without a mask token
    manifest: dict  # the folder's manifest.json ({} without one)


def model_folders(root: str | Path) -> dict[str, Path]:
    """The model folders (those holding a ``config.json``) directly in ``root``, by name."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return {}
    return {path.name: path for path in sorted(root.iterdir()) if (path / "config.json").is_file()}


def load_model(folder: str | Path, device: str = "auto") -> TriedModel:
    """The model in ``folder`` as :func:`finetune.model.load_multitask` loads it (a folder without
    ``tasks.json`` is a plain masked LM: no head, completions only), on ``device`` (``auto``: CUDA when
    available). A folder that is not a loadable model is a :class:`UserError` saying which to pick."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; {NOT_A_MODEL}")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a model folder (no config.json); {NOT_A_MODEL}")
    import transformers

    from finetune.model import load_multitask
    from finetune.predict import trained_max_length
    from probing.engine import MaskedLMScorer, resolve_device

    transformers.logging.disable_progress_bar()
    device = resolve_device(device)
    try:
        model, tokenizer = load_multitask(folder)
        max_length = trained_max_length(folder)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as error:
        # transformers, safetensors and yaml report a folder that is not a model in many ways
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{folder} cannot be loaded as a model ({reason}); {NOT_A_MODEL}") from None
    model.to(device)
    scorer = None
    if tokenizer.mask_token is not None:
        # One sentence at a time: the scorer's CPU speed-ups (oneDNN, packed weights, last layer at the
        # mask) would cost memory and start-up for nothing, and without them its log-probabilities are
        # the plain LM head's log-softmax.
        scorer = MaskedLMScorer(model.lm, tokenizer, device=device, batch_size=1, progress=False,
                                cpu_fast_path=False, last_layer_at_mask=False)
    manifest = {}
    if (folder / "manifest.json").is_file():
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
    return TriedModel(folder, model, tokenizer, device, max_length, scorer,
                      manifest if isinstance(manifest, dict) else {})


def head_predictions(tried: TriedModel, sentence: str) -> dict:
    """:func:`finetune.predict.predict`'s row for ``sentence`` (split into words on white space when
    the model has a token task, as predict does)."""
    from finetune.predict import predict

    return predict(tried.model, tried.tokenizer, [sentence], max_length=tried.max_length, batch_size=1,
                   device=tried.device)[0]


def task_table(task, row: dict, sentence: str) -> pd.DataFrame:
    """One head's prediction for ``sentence`` (``row``: :func:`head_predictions`) as a table.

    multiclass: ``label, probability`` (softmax), most probable first; binary: ``label, probability``
    with P(positive label) and 1 - P for the other; multilabel: ``label, score, predicted`` (sigmoid
    score, predicted when >= 0.5), highest first; token: ``word, tag`` for each white-space word (a
    word beyond ``max_length`` tokens has no tag: ``""``).
    """
    name = task.name
    if task.type == "multiclass":
        table = pd.DataFrame({"label": task.labels, "probability": [row[f"{name}_p_{label}"] for label in task.labels]})
        return table.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)
    if task.type == "binary":
        p = row[f"{name}_p"]
        return pd.DataFrame({"label": [task.labels[1], task.labels[0]], "probability": [p, 1 - p]})
    if task.type == "multilabel":
        scores = [row[f"{name}_p_{label}"] for label in task.labels]
        table = pd.DataFrame({"label": task.labels, "score": scores, "predicted": [s >= 0.5 for s in scores]})
        return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    words, tags = sentence.split(), list(row[f"{name}_prediction"])
    return pd.DataFrame({"word": words, "tag": tags + [""] * (len(words) - len(tags))})


def entity_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """``(first word, last word + 1, type)`` of each entity in BIO (or IO) tags: an entity starts at
    ``B-X``, or at ``I-X`` or ``X`` that does not continue an entity of type X; ``O`` and ``""``
    (untagged) are outside.

    >>> entity_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "LOC", "", "ORG"])
    [(0, 2, 'PER'), (3, 4, 'LOC'), (4, 6, 'LOC'), (7, 8, 'ORG')]
    """
    spans, kind = [], None
    for i, tag in enumerate(tags):
        if tag in ("O", ""):
            kind = None
            continue
        this = tag[2:] if tag[:2] in ("B-", "I-") else tag
        if tag.startswith("B-") or this != kind:
            spans.append([i, i + 1, this])
            kind = this
        else:
            spans[-1][1] = i + 1
    return [tuple(span) for span in spans]


def marked_text(words: list[str], tags: list[str]) -> str:
    """The words as HTML, each entity (:func:`entity_spans`) in a ``<mark>`` with its type after it.

    >>> marked_text(["Anna", "Smith", "likes", "<b>", "Paris"], ["B-PER", "I-PER", "O", "O", "B-LOC"])
    '<mark>Anna Smith <small>PER</small></mark> likes &lt;b&gt; <mark>Paris <small>LOC</small></mark>'
    """
    starts = {start: (end, kind) for start, end, kind in entity_spans(tags)}
    parts, i = [], 0
    while i < len(words):
        if i in starts:
            end, kind = starts[i]
            parts.append(f"<mark>{html.escape(' '.join(words[i:end]))} <small>{html.escape(kind)}</small></mark>")
            i = end
        else:
            parts.append(html.escape(words[i]))
            i += 1
    return " ".join(parts)


def mask_completions(tried: TriedModel, sentence: str, k: int = MASK_TOP_K) -> pd.DataFrame:
    """The ``k`` most probable tokens at the sentence's first mask token: ``rank, token, word,
    probability``, with ``probability = exp(log p(token | sentence))`` from
    :meth:`probing.engine.MaskedLMScorer.top_k` (raw scoring: the softmax of the LM head's logits
    over the full vocabulary) and ``word`` the token as text."""
    top = tried.scorer.top_k([sentence], k=k)[0]
    tokens = tried.tokenizer.convert_ids_to_tokens(top.token_ids.tolist())
    return pd.DataFrame({"rank": range(1, len(tokens) + 1), "token": tokens,
                         "word": [tried.tokenizer.convert_tokens_to_string([t]).strip() for t in tokens],
                         "probability": np.exp(top.log_probs.astype(np.float64))})


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

class _AppArgumentParser(argparse.ArgumentParser):
    """The command line's parser as the app reads it: an error is a :class:`UserError` shown on the page."""

    def error(self, message: str):  # noqa: D102 - argparse's own hook
        raise UserError(f"{message}; start the explorer with python -m analysis.explore RUN_DIR... [--models DIR]")


def build_parser(parser_class: type[argparse.ArgumentParser] = OneLineArgumentParser) -> argparse.ArgumentParser:
    parser = parser_class(
        prog="python -m analysis.explore",
        description="Explore saved results in the browser (a Streamlit app): profiles, their completions, "
                    "correlations and recall, from the folders probing.run, analysis.correlate and analysis.recall "
                    "write (their saved tables only), and a page to try a model on a typed sentence.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR",
                        help="result folders (probing runs and analysis runs); none: the Try a model page only")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="the folder of models the Try a model page lists (default: results/models/, or "
                             "$STEREOPROBE_MODELS_DIR); a model folder elsewhere can be typed on the page")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default: {DEFAULT_PORT})")
    parser.add_argument("--address", default=DEFAULT_ADDRESS,
                        help=f"address to listen on (default: {DEFAULT_ADDRESS}, this machine only; reach it from "
                             f"another one with ssh -L, or pass 0.0.0.0 on a trusted network)")
    return parser


def streamlit_command(runs: list[str | Path], port: int, address: str, models: str | Path | None = None) -> list[str]:
    """The ``streamlit run`` command line that serves the app on ``runs`` (and ``--models``)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer",
            "--", *[str(Path(run).resolve()) for run in runs],
            *(["--models", str(Path(models).expanduser().resolve())] if models is not None else [])]


def models_root(models: str | Path | None) -> Path:
    """The folder of models the Try a model page lists: ``--models``, else :func:`probing.models.models_dir`."""
    return Path(models).expanduser() if models is not None else model_files.models_dir()


def check_models_option(models: str | Path | None) -> None:
    if models is not None and not Path(models).expanduser().is_dir():
        raise UserError(f"--models {models} is not a folder; pass the folder that holds your model folders "
                        f"(e.g. results/models)")


def app_arguments(argv: list[str]) -> argparse.Namespace:
    """The app's command line (the one :func:`build_parser` defines, run folders and options in any
    order); a bad one is a :class:`UserError`."""
    args = build_parser(_AppArgumentParser).parse_intermixed_args(argv)
    check_models_option(args.models)
    return args


def check_port_free(address: str, port: int) -> None:
    """Refuse ``--port`` when something already listens on ``address:port`` (or ``address`` cannot be
    listened on): binding a socket there is what the server would do, so its URL would be another
    program's. The socket is closed at once, before the server binds the port itself."""
    try:
        family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)[0]
    except (OSError, UnicodeError) as error:
        raise UserError(f"--address {address} cannot be listened on ({error}); pass an address of this machine, "
                        f"e.g. {DEFAULT_ADDRESS}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does (tornado)
        try:
            probe.bind(where)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {address} is already in use by another program; pass a free "
                                f"--port (e.g. --port {port + 1 if port < 65535 else DEFAULT_PORT})") from None
            raise UserError(f"cannot listen on {address}:{port} ({error.strerror or error}); pass another --port "
                            f"(1024 or more) or --address") from None


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    check_models_option(args.models)
    if args.runs:
        load_runs(args.runs)  # every folder is checked before a server starts
    check_port_free(args.address, args.port)
    print(f"explorer on http://{'localhost' if args.address in ('127.0.0.1', 'localhost') else args.address}:"
          f"{args.port} (Ctrl-C stops it)", flush=True)
    command = streamlit_command(args.runs, args.port, args.address, args.models)
    os.execv(command[0], command)  # the server replaces this process: signals reach it, nothing is left behind
    return 0  # reached only where execv is replaced (tests)


if __name__ == "__main__":
    sys.exit(main())
