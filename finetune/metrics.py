"""Task metrics, their aggregate over tasks, and per-language breakdowns (plain numpy functions).

Each task has a *primary score*: macro-F1 for multiclass, binary and multilabel tasks,
entity-level F1 for token tasks with BIO tags (word-level macro-F1 for other tag sets). The
aggregate is the mean and the (population, ``ddof=0``) standard deviation of the primary scores
across tasks; early stopping and learning-rate reduction follow that mean. A metric that is
undefined (ROC-AUC with one class present, F1 with no entity anywhere) is ``nan`` with an
:class:`UndefinedMetricWarning`, never a silent 0 or 0.5.
"""

from __future__ import annotations

import warnings

import numpy as np


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for this data (e.g. ROC-AUC with a single class); it is ``nan``."""


def accuracy(y_true, y_pred) -> float:
    """Share of exact matches: ``mean(y_true == y_pred)``; for 2-D (multilabel) rows, all labels must match.

    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2])
    0.75
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan")
    equal = y_true == y_pred
    if equal.ndim == 2:
        equal = equal.all(axis=1)
    return float(equal.mean())


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn)


def macro_f1(y_true, y_pred) -> float:
    """Unweighted mean over classes of ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``.

    The classes are those in ``y_true`` or ``y_pred`` (a class absent from both has no F1).
    For multi-hot 2-D arrays, ``c`` runs over label columns that are positive somewhere.

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1]), 4)   # F1_0 = 2/3, F1_1 = 4/5
    0.7333
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == 2:
        scores = []
        for k in range(y_true.shape[1]):
            t, p = y_true[:, k] == 1, y_pred[:, k] == 1
            tp, fp, fn = np.sum(t & p), np.sum(~t & p), np.sum(t & ~p)
            if tp + fp + fn > 0:
                scores.append(_f1(tp, fp, fn))
    else:
        scores = []
        for c in np.union1d(y_true, y_pred):
            t, p = y_true == c, y_pred == c
            scores.append(_f1(np.sum(t & p), np.sum(~t & p), np.sum(t & ~p)))
    if not scores:
        warnings.warn("macro-F1 is undefined: no class occurs", UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    return float(np.mean(scores))


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative.

    ``AUC = (1 / (n_pos n_neg)) sum_{i pos, j neg} (1[s_i > s_j] + 1/2 1[s_i = s_j])``. For
    multi-hot 2-D input, the unweighted mean over labels whose AUC is defined (macro). ``nan``
    (with a warning) when no label has both classes.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    if y_true.ndim == 2:
        values = [_binary_auc(y_true[:, k], scores[:, k]) for k in range(y_true.shape[1])]
        values = [v for v in values if v is not None]
    else:
        value = _binary_auc(y_true, scores)
        values = [] if value is None else [value]
    if not values:
        warnings.warn("ROC-AUC is undefined: only one class is present", UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    return float(np.mean(values))


def _binary_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    positive = y_true == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    # Mann-Whitney U from mid-ranks (ties get the average rank).
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def bio_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """Entities ``(type, start, end)`` (end exclusive) in a BIO tag sequence, as conlleval reads them.

    An entity starts at ``B-X``, or at ``I-X`` after ``O`` or after another type; it ends before
    ``O``, ``B-*`` or an ``I-`` of another type.

    >>> sorted(bio_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]))
    [('LOC', 3, 4), ('LOC', 4, 5), ('ORG', 5, 6), ('PER', 0, 2)]
    """
    spans, kind, start = set(), None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-") if "-" in tag else ("O", "", "")
        if kind is not None and (prefix not in ("I",) or name != kind):
            spans.add((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            kind, start = name, i
    return spans


def is_bio(labels: list[str]) -> bool:
    return any(label.startswith(("B-", "I-")) for label in labels)


def entity_f1(true_sequences: list[list[str]], pred_sequences: list[list[str]]) -> float:
    """Entity-level micro F1: ``2 P R / (P + R)`` with ``P = TP / #predicted``, ``R = TP / #true``.

    An entity counts as found only if its type, start and end all match (conlleval).

    >>> entity_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])  # P = 1, R = 1/2
    0.6666666666666666
    """
    tp = n_true = n_pred = 0
    for truth, pred in zip(true_sequences, pred_sequences):
        t, p = bio_spans(truth), bio_spans(pred)
        tp, n_true, n_pred = tp + len(t & p), n_true + len(t), n_pred + len(p)
    if n_true == 0 and n_pred == 0:
        warnings.warn("entity F1 is undefined: no entity in the references or predictions",
                      UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    if tp == 0:
        return 0.0
    precision, recall = tp / n_pred, tp / n_true
    return 2 * precision * recall / (precision + recall)


def task_metrics(kind: str, labels: list[str], y_true, scores) -> dict:
    """Metrics of one task; ``primary`` names the score that enters the aggregate.

    Parameters
    ----------
    kind : {'multiclass', 'binary', 'multilabel', 'token'}
    labels : the task's label names
    y_true : class indices (n,), 0/1 (n,), multi-hot (n, K), or for token tasks a list of per-word
        tag-index sequences
    scores : probabilities (n, K), P(positive) (n,), per-label probabilities (n, K), or for token
        tasks the predicted tag-index sequences. Predictions: argmax, or ``score >= 0.5``.
    """
    if kind == "token":
        truth = [[labels[i] for i in seq] for seq in y_true]
        pred = [[labels[i] for i in seq] for seq in scores]
        flat_true = np.concatenate([np.asarray(s, dtype=int) for s in y_true]) if y_true else np.empty(0, int)
        flat_pred = np.concatenate([np.asarray(s, dtype=int) for s in scores]) if scores else np.empty(0, int)
        out = {"n": len(y_true), "accuracy": accuracy(flat_true, flat_pred)}
        if is_bio(labels):
            out["entity_f1"] = entity_f1(truth, pred)
            out["primary"] = "entity_f1"
        else:
            out["macro_f1"] = macro_f1(flat_true, flat_pred)
            out["primary"] = "macro_f1"
        return out
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    if kind == "multiclass":
        pred = scores.argmax(axis=1)
        return {"n": len(y_true), "accuracy": accuracy(y_true, pred), "macro_f1": macro_f1(y_true, pred),
                "primary": "macro_f1"}
    pred = (scores >= 0.5).astype(int)
    truth = y_true.astype(int)
    return {"n": len(y_true), "accuracy": accuracy(truth, pred), "macro_f1": macro_f1(truth, pred),
            "roc_auc": roc_auc(truth, scores), "primary": "macro_f1"}


def aggregate(per_task: dict[str, dict]) -> dict:
    """Mean and standard deviation (``ddof=0``) across tasks of each task's primary score.

    Also the mean of each metric over the tasks that report it. ``nan`` scores are left out.

    >>> a = aggregate({"a": {"macro_f1": 0.5, "primary": "macro_f1"}, "b": {"entity_f1": 0.9, "primary": "entity_f1"}})
    >>> round(a["mean_score"], 3), round(a["std_score"], 3), a["n_tasks"]
    (0.7, 0.2, 2)
    """
    primaries = np.array([m[m["primary"]] for m in per_task.values()], dtype=float)
    defined = primaries[~np.isnan(primaries)]
    out = {"n_tasks": len(per_task),
           "mean_score": float(defined.mean()) if len(defined) else float("nan"),
           "std_score": float(defined.std()) if len(defined) else float("nan")}
    for name in ("accuracy", "macro_f1", "roc_auc", "entity_f1"):
        values = np.array([m[name] for m in per_task.values() if name in m], dtype=float)
        values = values[~np.isnan(values)]
        if len(values):
            out[f"mean_{name}"] = float(values.mean())
    return out
