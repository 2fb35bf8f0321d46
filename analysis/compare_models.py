"""Extrinsic evaluation of several multi-task models on the same rows, with paired bootstrap differences.

    python -m analysis.compare_models --models single multi --split validation
    python -m analysis.compare_models --models single multi --input finetune/demo_data/multitask.csv

Every model (a name in ``results/models/`` or a folder written by ``finetune.train``) labels every
row once (:func:`finetune.predict.predict`); per task the models share, per language and over all
languages (``all``), each model gets the metrics of :func:`finetune.metrics.task_metrics` (accuracy,
macro-F1, ROC-AUC; token tasks accuracy and entity-F1) with a percentile bootstrap interval over
rows, and each model its paired difference from the reference model ``value_m - value_ref`` with a
paired bootstrap interval: each replicate resamples the rows (within each language) once and scores
every model on the same resampled rows, so what the models share (hard rows, easy rows) cancels out
of the difference.

The rows are a labelled file (``--input``; each task's labels in the column its model was trained on,
or ``--label_column task=column``) or ``--split validation``: the held-out rows ``finetune.train``
derived from each model's saved config (:func:`finetune.data.load_splits`), refused unless every model
held out the same rows of the same, unchanged data.

Replicates are computed from per-row counts: a replicate drawing row ``i`` ``c_i`` times scores like the
rows repeated ``c_i`` times, and every metric here is a function of count-weighted sums (confusion
counts; for ROC-AUC, pair counts ``sum_{i pos, j neg} c_i c_j (1[s_i > s_j] + 1/2 1[s_i = s_j])``), so
all replicates are one matrix product (:func:`replicate_metrics`, checked equal to ``task_metrics`` on
the resampled rows in ``tests/test_analysis_compare_models.py``).

Writes ``comparison.csv``, ``predictions.parquet`` and ``manifest.json`` (``analysis/README.md``,
*Extrinsic comparison of models*).
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._common import (check_bootstrap_options, command_line, input_record, output_folder, rng_for,
                              save_run)
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import add_overwrite_option, sha256_file

ALL = "all"  # the language of the rows pooling every language (resampled within each language)
COMPARISON_COLUMNS = ["language", "task", "metric", "model", "value", "ci_low", "ci_high", "n", "reference",
                      "difference", "diff_ci_low", "diff_ci_high", "n_bootstrap", "note"]
PREDICTION_COLUMNS = ["source", "row", "language", "task", "model", "truth", "prediction", "score"]
CHUNK = 250  # replicates drawn and scored at a time (bounds memory: CHUNK x rows counts)

EXAMPLES = """examples:
  python -m analysis.compare_models --models tiny-single tiny-multi --split validation
  python -m analysis.compare_models --models tiny-single tiny-multi --input finetune/demo_data/multitask.csv \\
      --reference tiny-single --bootstrap 2000
  python -m analysis.compare_models --models a b c --input labelled.jsonl --label_column toxicity=is_toxic
"""


# ---------------------------------------------------------------------------------------------
# Statistics (pure: arrays in, arrays out)
# ---------------------------------------------------------------------------------------------

def resample_counts(strata: list[np.ndarray], n: int, n_bootstrap: int, rng: np.random.Generator,
                    chunk: int = CHUNK):
    """Yield ``(B_chunk, n)`` arrays: how often each of the ``n`` rows is drawn in each replicate.

    A replicate draws, for each stratum (a language's row indices) in turn, ``len(stratum)`` rows of
    that stratum with replacement: ``stratum[rng.integers(0, len(stratum), size=(B_chunk, len(stratum)))]``,
    chunk after chunk of ``chunk`` replicates; rows in no stratum are never drawn. Every model of a
    comparison is scored on the same counts (the paired bootstrap).

    >>> np.random.default_rng(0).integers(0, 2, size=(2, 2)).tolist()  # the draws: rows 1, 1, then rows 1, 0
    [[1, 1], [1, 0]]
    >>> [c.tolist() for c in resample_counts([np.array([0, 1])], 2, 2, np.random.default_rng(0))]
    [[[0.0, 2.0], [1.0, 1.0]]]
    """
    done = 0
    while done < n_bootstrap:
        size = min(chunk, n_bootstrap - done)
        counts = np.zeros((size, n))
        for stratum in strata:
            drawn = stratum[rng.integers(0, len(stratum), size=(size, len(stratum)))]
            np.add.at(counts, (np.repeat(np.arange(size), len(stratum)), drawn.ravel()), 1.0)
        yield counts
        done += size


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def _macro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Mean over the classes (columns) with ``2 TP + FP + FN > 0`` of ``2 TP / (2 TP + FP + FN)``; these are the
    classes in the truth or the predictions, as scikit-learn's ``f1_score(average='macro', zero_division=nan)``."""
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    defined = np.isfinite(f1)
    total = np.where(defined, f1, 0.0).sum(axis=-1)
    return _ratio(total, defined.sum(axis=-1).astype(float))


def weighted_auc(positive: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC-AUC of each replicate (row of ``counts``): ``sum_{i pos, j neg} c_i c_j (1[s_i > s_j] + 1/2 1[s_i = s_j])
    / (sum_pos c_i * sum_neg c_j)``, ``nan`` where a class is not drawn.

    Scores are sorted once; within a run of tied scores the pairs count 1/2 (Mann-Whitney U / (n_pos n_neg),
    which equals scikit-learn's trapezoidal ``roc_auc_score``).

    >>> weighted_auc(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.4, 0.35, 0.8]), np.ones((1, 4))).tolist()
    [0.75]
    """
    order = np.argsort(score, kind="stable")
    ordered = score[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    drawn, is_positive = counts[:, order], positive[order]
    pos = np.add.reduceat(drawn * is_positive, starts, axis=1)
    neg = np.add.reduceat(drawn * ~is_positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    return _ratio((pos * (below + 0.5 * neg)).sum(axis=1), pos.sum(axis=1) * neg.sum(axis=1))


def _one_vs_rest_auc(truth: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Macro mean over the columns of ``truth`` (n, K) of each column's AUC; ``nan`` if any is undefined."""
    aucs = np.stack([weighted_auc(truth[:, k].astype(bool), scores[:, k], counts) for k in range(truth.shape[1])])
    return aucs.mean(axis=0)  # a nan column makes the mean nan, as finetune.metrics.roc_auc


def _class_counts(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """Per-row indicator matrices (n, K) of true positives, false positives and false negatives of each class."""
    classes = np.arange(n_classes)
    is_true, is_pred = truth[:, None] == classes, pred[:, None] == classes
    return ((is_true & is_pred).astype(float), (~is_true & is_pred).astype(float), (is_true & ~is_pred).astype(float))


def _token_counts(kind_labels: list[str], truth: list, pred: list) -> dict[str, np.ndarray]:
    """Per sentence: words, correct words, and (BIO) entities found, predicted and true, or (other tag sets)
    per-tag true positives, false positives and false negatives."""
    from seqeval.metrics.sequence_labeling import get_entities

    from finetune.metrics import is_bio

    out = {"words": np.array([len(t) for t in truth], float),
           "correct": np.array([sum(a == b for a, b in zip(t, p)) for t, p in zip(truth, pred)], float)}
    if is_bio(kind_labels):
        true_sets = [set(get_entities([kind_labels[i] for i in t])) for t in truth]
        pred_sets = [set(get_entities([kind_labels[i] for i in p])) for p in pred]
        out["found"] = np.array([len(a & b) for a, b in zip(true_sets, pred_sets)], float)
        out["true"] = np.array([len(a) for a in true_sets], float)
        out["predicted"] = np.array([len(b) for b in pred_sets], float)
    else:
        k = len(kind_labels)
        per = [_class_counts(np.asarray(t, int), np.asarray(p, int), k) for t, p in zip(truth, pred)]
        for j, name in enumerate(("tp", "fp", "fn")):
            out[name] = np.array([c[j].sum(axis=0) for c in per]).reshape(len(truth), k)
    return out


def replicate_metrics(kind: str, labels: list[str], y_true, scores, counts: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics of :func:`finetune.metrics.task_metrics` for every replicate at once.

    ``counts`` (B, n): how often each row is drawn (:func:`resample_counts`); ``y_true`` and ``scores`` as
    ``task_metrics`` takes them. Returns ``{metric: array (B,)}``, ``nan`` where undefined; equal to
    ``task_metrics(kind, labels, y_true[rows], scores[rows])`` on each replicate's rows.
    """
    if kind == "token":
        c = _token_counts(labels, list(y_true), list(scores))
        out = {"accuracy": _ratio(counts @ c["correct"], counts @ c["words"])}
        if "found" in c:
            found, true, predicted = counts @ c["found"], counts @ c["true"], counts @ c["predicted"]
            out["entity_f1"] = _ratio(2 * found, true + predicted)
        else:
            out["macro_f1"] = _macro_f1(counts @ c["tp"], counts @ c["fp"], counts @ c["fn"])
        return out
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    total = counts.sum(axis=1)
    if kind == "multilabel":
        truth, pred = y_true.astype(int), (scores >= 0.5).astype(int)
        out = {"accuracy": _ratio(counts @ (truth == pred).all(axis=1).astype(float), total)}
        tp, fp, fn = ((truth == 1) & (pred == 1)), ((truth == 0) & (pred == 1)), ((truth == 1) & (pred == 0))
        out["macro_f1"] = _macro_f1(counts @ tp.astype(float), counts @ fp.astype(float), counts @ fn.astype(float))
        out["roc_auc"] = _one_vs_rest_auc(truth, scores, counts)
        return out
    if kind == "multiclass":
        truth, pred, n_classes = y_true.astype(int), scores.argmax(axis=1), scores.shape[1]
    else:  # binary
        truth, pred, n_classes = y_true.astype(int), (scores >= 0.5).astype(int), 2
    tp, fp, fn = _class_counts(truth, pred, n_classes)
    out = {"accuracy": _ratio(counts @ (truth == pred).astype(float), total),
           "macro_f1": _macro_f1(counts @ tp, counts @ fp, counts @ fn)}
    if kind == "binary":
        out["roc_auc"] = weighted_auc(truth == 1, scores, counts)
    else:
        normalised = scores / scores.sum(axis=1, keepdims=True)  # as finetune.metrics.roc_auc
        if n_classes == 2:
            out["roc_auc"] = weighted_auc(truth == 1, normalised[:, 1], counts)
        else:
            out["roc_auc"] = _one_vs_rest_auc(truth[:, None] == np.arange(n_classes), normalised, counts)
    return out


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """``(low, high, defined)``: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the
    defined (finite) replicates (numpy's linear interpolation), and how many there were; ``nan`` without any.

    >>> percentile_interval(np.array([0.1, 0.2, 0.3, np.nan, 0.4, 0.5]), 0.5)
    (0.2, 0.4, 5)
    """
    defined = replicates[np.isfinite(replicates)]
    if defined.size == 0:
        return float("nan"), float("nan"), 0
    alpha = (1 - confidence) / 2
    low, high = np.percentile(defined, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high), int(defined.size)


@dataclass
class TaskData:
    """One task's labelled rows: the truth, each model's scores (as ``task_metrics`` takes them), the languages."""

    name: str
    kind: str
    labels: list[str]
    truth: list
    scores: dict[str, list]  # model -> per row
    languages: list
    ids: list[tuple[str, int]] = field(default_factory=list)  # (source, 1-based row), for predictions.parquet

    def take(self, values, rows: np.ndarray):
        if self.kind == "token":
            return [values[i] for i in rows]
        return np.asarray(values)[rows] if len(rows) else np.asarray(values)[:0]


def compare_task(task: TaskData, models: list[str], reference: str, *, n_bootstrap: int, confidence: float,
                 seed: int) -> list[dict]:
    """The comparison rows of one task: per language (sorted, then ``all``), metric and model, the value
    (``task_metrics``), its percentile interval, and the paired difference from ``reference`` with its interval.

    The replicates of language ``L`` come from ``rng_for(seed, "compare_models", task, L)``: the rows of
    ``L`` resampled with replacement; ``all`` resamples each language's rows within that language.
    """
    from finetune.metrics import UndefinedMetricWarning, task_metrics

    languages = np.array(["" if lang is None else str(lang) for lang in task.languages], dtype=object)
    named = sorted(set(languages) - {""})
    rows = []
    for language in [*named, ALL]:
        if language == ALL:
            local = np.arange(len(languages))
            strata = [np.flatnonzero(languages == lang) for lang in sorted(set(languages))]
        else:
            local = np.flatnonzero(languages == language)
            strata = [np.arange(len(local))]
        truth = task.take(task.truth, local)
        points, notes = {}, {}
        with warnings.catch_warnings():  # one class in a language: nan, explained in note
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            for model in models:
                result = task_metrics(task.kind, task.labels, truth, task.take(task.scores[model], local))
                points[model] = {k: float(v) for k, v in result.items()
                                 if k not in ("n", "primary", "notes") and not k.startswith("weighted_")}
                notes[model] = "; ".join(result.get("notes", []))
        metrics = list(points[models[0]])
        replicates = {m: {k: [] for k in metrics} for m in models}
        if n_bootstrap:
            rng = rng_for(seed, "compare_models", task.name, language)
            for counts in resample_counts(strata, len(local), n_bootstrap, rng):
                for model in models:
                    values = replicate_metrics(task.kind, task.labels, truth, task.take(task.scores[model], local),
                                               counts)
                    for k in metrics:
                        replicates[model][k].append(values[k])
        for metric in metrics:
            for model in models:
                value = points[model][metric]
                row = {"language": language, "task": task.name, "metric": metric, "model": model, "value": value,
                       "ci_low": np.nan, "ci_high": np.nan, "n": len(local), "reference": reference,
                       "difference": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan, "n_bootstrap": 0,
                       "note": notes[model] if np.isnan(value) else ""}
                if model != reference:
                    row["difference"] = value - points[reference][metric]
                if n_bootstrap:
                    own = np.concatenate(replicates[model][metric])
                    row["ci_low"], row["ci_high"], row["n_bootstrap"] = percentile_interval(own, confidence)
                    if model != reference:
                        paired = own - np.concatenate(replicates[reference][metric])
                        row["diff_ci_low"], row["diff_ci_high"], _ = percentile_interval(paired, confidence)
                    if 0 < row["n_bootstrap"] < n_bootstrap:
                        row["note"] = "; ".join(filter(None, [row["note"], (
                            f"interval over the {row['n_bootstrap']} of {n_bootstrap} resamples where it is defined "
                            f"(the others lack a class)")]))
                rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Models and rows
# ---------------------------------------------------------------------------------------------

@dataclass
class Model:
    label: str
    folder: Path
    tasks: dict  # name -> finetune.model.TaskSpec
    config: object  # finetune.config.TrainConfig from train_config.yaml
    manifest: dict

    def record(self) -> dict:
        base = self.manifest.get("base_model") or {}
        return {"name": self.label, "folder": str(self.folder.resolve()), "base_model": base.get("name"),
                "base_source": base.get("source"), "revision": base.get("revision"),
                "random_weights": self.manifest.get("random_weights", base.get("random_weights")),
                "config_sha256": sha256_file(self.folder / "train_config.yaml"),
                "manifest_sha256": sha256_file(self.folder / "manifest.json")
                if (self.folder / "manifest.json").is_file() else None,
                "tasks": sorted(self.tasks), "max_length": self.config.max_length}


def load_model_info(name: str) -> Model:
    """A model folder's task heads (``tasks.json``), saved config and manifest; nothing heavy is loaded."""
    import json

    from finetune.config import load_config
    from finetune.model import read_task_specs
    from finetune.predict import model_folder

    folder = model_folder(name)
    config_file = folder / "train_config.yaml"
    if not config_file.is_file():
        raise UserError(f"{folder} has no train_config.yaml; compare models written by python -m finetune.train")
    specs = read_task_specs(folder)
    manifest_file = folder / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8")) if manifest_file.is_file() else {}
    return Model(Path(name).name, folder, {t.name: t for t in specs["tasks"]}, load_config(config_file), manifest)


def shared_tasks(models: list[Model], wanted: list[str] | None) -> list[str]:
    """The tasks every model has (in the reference's order), or ``wanted``; refused when their types or label
    sets differ between models (their predictions would not mean the same thing)."""
    first = models[0]
    common = [t for t in first.tasks if all(t in m.tasks for m in models[1:])]
    if wanted:
        for task in wanted:
            lacking = [m.label for m in models if task not in m.tasks]
            if lacking:
                raise UserError(f"--tasks: {', '.join(lacking)} has no task {task!r}; the tasks all models share: "
                                f"{', '.join(common) or 'none'}")
        common = list(dict.fromkeys(wanted))
    if not common:
        raise UserError("the models share no task: " + "; ".join(f"{m.label} has {', '.join(m.tasks)}" for m in models)
                        + "; compare models trained on the same task(s)")
    for name in common:
        for other in models[1:]:
            a, b = first.tasks[name], other.tasks[name]
            if (a.type, list(a.labels)) != (b.type, list(b.labels)):
                rest = [t for t in common if t != name]
                fix = (f"leave it out with --tasks {' '.join(rest)}" if rest
                       else "compare models trained on the same labels")
                raise UserError(f"task {name!r} differs between models: {first.label} predicts {a.type} "
                                f"{list(a.labels)}, {other.label} predicts {b.type} {list(b.labels)}; {fix}")
    return common


@dataclass
class Source:
    """Rows to label: texts (or word lists), their languages, and the task label cells to read."""

    name: str
    origin: str
    frame: pd.DataFrame
    positions: list[int]  # row positions in frame
    inputs: list
    languages: list
    columns: dict  # task name -> finetune.config.TaskConfig whose label_column (and label_index) to read


def task_config(model: Model, name: str):
    return next(t for t in model.config.tasks if t.name == name)


def parse_column_map(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        task, eq, column = item.partition("=")
        if not eq or not task or not column:
            raise UserError(f"--label_column takes task=column, got {item!r}")
        out[task] = column
    return out


def file_source(args, reference: Model, tasks: list[str]) -> Source:
    """``--input``: every row of the file, the labels of each task in its training label column (or the
    ``--label_column`` mapping), checked before any model is loaded."""
    import dataclasses

    from finetune.predict import read_input

    frame, inputs = read_input(args)  # refuses a missing file, text column or empty text
    path = Path(args.input).expanduser()
    mapping = parse_column_map(args.label_column)
    unknown = sorted(set(mapping) - set(tasks))
    if unknown:
        raise UserError(f"--label_column names task(s) {', '.join(unknown)} not compared; compared: {', '.join(tasks)}")
    columns = {}
    for name in tasks:
        config = task_config(reference, name)
        if name in mapping:
            config = dataclasses.replace(config, label_column=mapping[name])
        if config.type == "token" and not args.tokens_column:
            raise UserError(f"task {name!r} tags words: pass --tokens_column (the column with each row's words), or "
                            f"leave the task out with --tasks")
        if config.label_column not in frame.columns:
            raise UserError(f"{path} has no column {config.label_column!r} with the labels of task {name!r}; add it, "
                            f"name the column with --label_column {name}=COLUMN, or leave the task out with --tasks "
                            f"(columns are: {', '.join(map(str, frame.columns))})")
        columns[name] = config
    if args.language is not None:
        languages = [args.language] * len(frame)
    elif args.language_column in frame.columns:
        from finetune.data import is_missing

        languages = [None if is_missing(v) else str(v) for v in frame[args.language_column]]
    else:
        raise UserError(f"{path} has no language column {args.language_column!r}; name it with --language_column, or "
                        f"give every row's language with --language CODE")
    return Source("input", str(path), frame, list(range(len(frame))), inputs, languages, columns)


def _held_out(model: Model, tasks: list[str]) -> tuple[dict, dict]:
    """(per task, what identifies its held-out rows; per data set, its validation Split and config) of a model."""
    from finetune.data import load_splits

    _, eval_splits, provenance = load_splits(model.config)
    recorded = ((model.manifest.get("data") or {}).get("datasets")) or {}
    splits = {split.dataset: split for split in eval_splits}
    identity = {}
    for name in tasks:
        keys = []
        for dataset in task_config(model, name).dataset_names:
            now, then = provenance[dataset], recorded.get(dataset) or {}
            for part in ("train", "validation"):
                digest, before = (now.get(part) or {}).get("sha256"), (then.get(part) or {}).get("sha256")
                if digest and before and digest != before:
                    raise UserError(f"data set {dataset!r} of model {model.label} changed since training "
                                    f"({now[part]['path']}); its held-out rows cannot be recovered: compare on a "
                                    f"labelled file with --input")
            source = now.get("validation") or {}
            keys.append((dataset, now["train"].get("sha256") or now["train"].get("fingerprint"),
                         source.get("sha256") or source.get("fingerprint"),
                         tuple(int(r) for r in splits[dataset].rows)))
        identity[name] = tuple(keys)
    return identity, splits


def split_sources(models: list[Model], tasks: list[str]) -> list[Source]:
    """``--split validation``: the held-out rows of the reference model's data sets, refused unless every model
    held out the same rows (same data set, same file checksum, same row positions) for every compared task."""
    from finetune.data import _texts, is_missing

    reference_identity, splits = _held_out(models[0], tasks)
    for other in models[1:]:
        identity, _ = _held_out(other, tasks)
        for name in tasks:
            if identity[name] != reference_identity[name]:
                mine = ", ".join(f"{d}: {len(r)} rows" for d, *_, r in reference_identity[name])
                theirs = ", ".join(f"{d}: {len(r)} rows" for d, *_, r in identity[name])
                raise UserError(f"models {models[0].label} and {other.label} held out different validation rows for "
                                f"task {name!r} ({mine} vs {theirs}); compare them on one labelled file with --input")
    sources = []
    config = models[0].config
    for dataset, split in splits.items():
        compared = {name: task_config(models[0], name) for name in tasks
                    if dataset in task_config(models[0], name).dataset_names}
        if not compared:
            continue
        spec = config.datasets[dataset]
        texts, kept = _texts(split, spec)
        if spec.language_column is not None:
            languages = [None if is_missing(v) else str(v) for v in split.table.frame[spec.language_column].iloc[kept]]
        else:
            languages = [spec.language] * len(kept)
        sources.append(Source(dataset, split.table.origin, split.table.frame, kept, texts, languages, compared))
    return sources


def read_truth(source: Source, name: str) -> tuple[list[int], list]:
    """(indices into ``source.inputs`` with a label for task ``name``, the parsed labels)."""
    from finetune.data import parse_label

    config = source.columns[name]
    found, labels = [], []
    for k, position in enumerate(source.positions):
        cell = source.frame[config.label_column].iat[position]
        try:
            label = parse_label(cell, config)
        except ValueError as error:
            raise UserError(f"{source.origin}: row {position + 1}: column {config.label_column!r} (task {name!r}): "
                            f"{error}") from None
        if label is None:
            continue
        if config.type == "token" and len(label) != len(source.inputs[k]):
            raise UserError(f"{source.origin}: row {position + 1}: column {config.label_column!r} (task {name!r}): "
                            f"{len(label)} tags for {len(source.inputs[k])} words")
        found.append(k)
        labels.append(label)
    return found, labels


def scores_of(spec, prediction: dict):
    """One predicted row (:func:`finetune.predict.predict`) as ``task_metrics`` takes its scores."""
    if spec.type == "binary":
        return float(prediction[f"{spec.name}_p"])
    if spec.type in ("multiclass", "multilabel"):
        return [float(prediction[f"{spec.name}_p_{label}"]) for label in spec.labels]
    return [spec.labels.index(tag) for tag in prediction[f"{spec.name}_prediction"]]


def _shown(kind: str, labels: list[str], value) -> str:
    """A truth label as text: the label name, ``a|b`` for multi-label (``none``), tags joined by spaces."""
    if kind in ("binary", "multiclass"):
        return labels[int(value)]
    if kind == "multilabel":
        return "|".join(label for label, hot in zip(labels, value) if hot) or "none"
    return " ".join(labels[i] for i in value)


def _score_and_label(kind: str, labels: list[str], scores) -> tuple[float, str]:
    """(score, predicted label as text) of one row's scores: P(positive) for binary tasks, the predicted class's
    probability for multi-class ones, ``nan`` otherwise."""
    if kind == "binary":
        return float(scores), labels[int(scores >= 0.5)]
    if kind == "multiclass":
        return float(max(scores)), labels[int(np.argmax(scores))]
    if kind == "multilabel":
        return float("nan"), "|".join(label for label, p in zip(labels, scores) if p >= 0.5) or "none"
    return float("nan"), " ".join(labels[i] for i in scores)


def collect(sources: list[Source], models: list[Model], tasks: list[str], predictions: dict) -> list[TaskData]:
    """Per task, the labelled rows of every source with each model's scores (token tasks: the words both the
    truth tags and the prediction cover; a word cut off by max_length or without a tag is left out)."""
    out = []
    for name in tasks:
        spec = models[0].tasks[name]
        data = TaskData(name, spec.type, list(spec.labels), [], {m.label: [] for m in models}, [])
        for source in sources:
            if name not in source.columns:
                continue
            found, labels = read_truth(source, name)
            for k, label in zip(found, labels):
                per_model = {m.label: scores_of(spec, predictions[source.name][m.label][k]) for m in models}
                if spec.type == "token":
                    width = min(len(p) for p in per_model.values())
                    keep = [j for j in range(min(width, len(label))) if label[j] is not None]
                    if not keep:
                        continue
                    label = [label[j] for j in keep]
                    per_model = {m: [p[j] for j in keep] for m, p in per_model.items()}
                data.truth.append(label)
                for model, value in per_model.items():
                    data.scores[model].append(value)
                data.languages.append(source.languages[k])
                data.ids.append((source.name, source.positions[k] + 1))
        if not data.truth:
            raise UserError(f"no row has a label for task {name!r}; check the label column "
                            f"{sources[0].columns[name].label_column!r}, or leave the task out with --tasks")
        out.append(data)
    return out


def prediction_rows(tasks: list[TaskData], models: list[str]) -> pd.DataFrame:
    records = []
    for data in tasks:
        for i, (source, row) in enumerate(data.ids):
            truth = _shown(data.kind, data.labels, data.truth[i])
            for model in models:
                score, label = _score_and_label(data.kind, data.labels, data.scores[model][i])
                records.append({"source": source, "row": row, "language": data.languages[i] or "", "task": data.name,
                                "model": model, "truth": truth, "prediction": label, "score": score})
    return pd.DataFrame(records, columns=PREDICTION_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m analysis.compare_models",
        description="Evaluate several multi-task models on the same labelled rows: per language and task, each "
                    "model's metrics with bootstrap intervals and its paired difference from a reference model.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
    )
    add = parser.add_argument
    add("--models", nargs="+", required=True, metavar="MODEL",
        help="names in results/models/ or folders written by finetune.train (two or more)")
    rows = parser.add_mutually_exclusive_group(required=True)
    rows.add_argument("--input", default=None, help="a labelled .csv/.tsv/.jsonl/.parquet file")
    rows.add_argument("--split", choices=["validation"], default=None,
                      help="the held-out rows every model's training config derives (refused if they differ)")
    add("--reference", default=None, help="the model the others are compared with (default: the first)")
    add("--tasks", nargs="+", default=None, help="compare only these tasks (default: every task the models share)")
    add("--label_column", nargs="+", default=None, metavar="TASK=COLUMN",
        help="--input: the column holding a task's labels (default: the column the model was trained on)")
    add("--text_column", default="text", help="--input: column with the text (default: text)")
    add("--tokens_column", default=None, help="--input: column with each row's words (needed by token tasks)")
    add("--language_column", default="language", help="--input: column with the language (default: language)")
    add("--language", default=None, help="--input: the language of every row, for a file without a language column")
    add("--format", default=None, choices=["csv", "tsv", "jsonl", "txt", "parquet"],
        help="--input format when the extension does not say")
    add("--max_length", type=int, default=None, help="tokens per text (default: each model's training max_length)")
    add("--batch_size", type=int, default=32, help="texts per forward pass (default: 32)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    add("--bootstrap", type=int, default=1000, help="bootstrap resamples; 0 skips intervals (default: 1000)")
    add("--confidence", type=float, default=0.95, help="confidence level of the intervals (default: 0.95)")
    add("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    add("--output_dir", default=None, help="result folder (default: results/analysis/<run_name>)")
    add("--run_name", default=None, help="default: compare_<models>_<input stem or validation>")
    add_overwrite_option(parser)
    return parser


def _parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_bootstrap_options(args)
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.max_length is not None and args.max_length < 2:
        raise UserError(f"--max_length must be at least 2, got {args.max_length}")
    if args.split and (args.label_column or args.tokens_column or args.language):
        raise UserError("--label_column, --tokens_column and --language are for --input; --split validation reads "
                        "the columns of each model's training config")
    if len(args.models) < 2:
        raise UserError("--models needs two or more models to compare")
    models = [load_model_info(name) for name in args.models]
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise UserError(f"two models have the same name ({', '.join(labels)}); give folders with distinct names")
    reference = args.reference or labels[0]
    if reference not in labels:
        raise UserError(f"--reference {reference!r} is not one of --models ({', '.join(labels)})")
    models.sort(key=lambda m: m.label != reference)  # the reference first: its configs name the label columns
    tasks = shared_tasks(models, args.tasks)
    sources = split_sources(models, tasks) if args.split else [file_source(args, models[0], tasks)]
    for source in sources:
        for name in source.columns:
            read_truth(source, name)  # every label cell checked before any model is loaded
    stem = "validation" if args.split else Path(args.input).stem
    target = output_folder(args, "analysis.compare_models", f"compare_{'_'.join(labels)}_{stem}"[:100])

    import transformers

    from finetune.model import load_multitask
    from finetune.predict import predict
    from probing.engine import resolve_device

    transformers.logging.disable_progress_bar()
    device = resolve_device(args.device)
    predictions = {source.name: {} for source in sources}
    for model in models:
        network, tokenizer = load_multitask(model.folder)
        network.to(device)
        for source in sources:
            predictions[source.name][model.label] = predict(
                network, tokenizer, source.inputs, max_length=args.max_length or model.config.max_length,
                batch_size=args.batch_size, device=device)
        del network
    data = collect(sources, models, tasks, predictions)
    order = [m.label for m in models]
    rows = []
    for task in data:
        rows += compare_task(task, order, reference, n_bootstrap=args.bootstrap, confidence=args.confidence,
                             seed=args.seed)
    comparison = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    per_row = prediction_rows(data, order)
    if args.split:
        inputs = [{**input_record(Path(s.origin), len(s.positions)), "data_set": s.name, "split": "validation",
                   "tasks": sorted(s.columns)} if Path(s.origin).is_file()
                  else {"path": s.origin, "rows": len(s.positions), "data_set": s.name, "split": "validation"}
                  for s in sources]
    else:
        inputs = [input_record(Path(args.input).expanduser(), len(sources[0].positions),
                               label_columns={n: c.label_column for n, c in sources[0].columns.items()})]
    manifest = {
        "command": command_line("analysis.compare_models", argv),
        "parameters": vars(args),
        "seed": args.seed,
        "bootstrap": args.bootstrap,
        "reference": reference,
        "models": [m.record() for m in models],
        "tasks": {t.name: {"type": t.kind, "labels": t.labels, "rows": len(t.truth)} for t in data},
        "inputs": inputs,
        "definitions": {
            "value": "finetune.metrics.task_metrics on the rows of the language (all: every row)",
            "interval": f"percentile bootstrap, {args.bootstrap} resamples of the rows within each language",
            "difference": "value(model) - value(reference); its interval: the same resamples for both models"},
    }
    save_run(target, {"comparison.csv": comparison}, manifest,
             files={"predictions.parquet": _parquet_bytes(per_row)}, overwrite=args.overwrite)
    undefined = int(comparison["value"].isna().sum())
    if undefined:
        print(f"note: {undefined} metric value(s) are undefined (a class missing from the rows) and left empty, "
              f"with a note in comparison.csv", file=sys.stderr)
    print(f"compared {len(models)} models on {len(data)} task(s) ({', '.join(tasks)}) and "
          f"{comparison['language'].nunique() - 1} language(s); wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
