"""Task metrics, their aggregate over tasks, and per-language breakdowns, via scikit-learn and seqeval.

Each task has a *primary score*: macro-F1 for multiclass, binary and multilabel tasks,
entity-level F1 for token tasks with BIO tags (word-level macro-F1 for other tag sets). The
aggregate is the mean and the (population, ``ddof=0``) standard deviation of the primary scores
across tasks; early stopping and learning-rate reduction follow that mean.

Every labelled validation row is scored with the same weight, whatever its sample weight; with
``sample_weight`` the task also gets ``weighted_<metric>`` (each row counts its weight; token
tasks weight each word by its row's weight; seqeval has no sample weights, so there is no
weighted entity F1).

A metric that is undefined is ``nan`` with scikit-learn's :class:`UndefinedMetricWarning`, as
scikit-learn does, never a silent 0 or 0.5: ROC-AUC when a class (one-vs-rest) or label is on
none or all of the rows, F1 with no class or no entity anywhere. :func:`task_metrics` then says
why in the task's ``notes``.
"""

from __future__ import annotations

import warnings

import numpy as np
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics.sequence_labeling import get_entities
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

__all__ = ["UndefinedMetricWarning", "accuracy", "macro_f1", "roc_auc", "one_sided_columns", "entity_f1",
           "is_bio", "task_metrics", "aggregate"]

WEIGHTED_PREFIX = "weighted_"
AGGREGATED = ("accuracy", "macro_f1", "roc_auc", "entity_f1")


def _undefined(message: str) -> float:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
    return float("nan")


def _no_weight(sample_weight) -> bool:
    return sample_weight is not None and not np.sum(sample_weight) > 0


def accuracy(y_true, y_pred, *, sample_weight=None) -> float:
    """Share of exact matches, ``sum_i w_i 1[y_i = yhat_i] / sum_i w_i`` (``w_i = 1`` by default).

    scikit-learn's ``accuracy_score``; for 2-D multi-hot rows all labels must match (subset
    accuracy). ``nan`` for no rows or weights that sum to 0.

    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2])
    0.75
    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2], sample_weight=[1, 3, 0, 0])
    0.25
    """
    if len(y_true) == 0 or _no_weight(sample_weight):
        return _undefined("accuracy is undefined: no rows (or their weights sum to 0)")
    return float(skm.accuracy_score(y_true, y_pred, sample_weight=sample_weight))


def macro_f1(y_true, y_pred, *, sample_weight=None) -> float:
    """Unweighted mean over classes of ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``.

    scikit-learn's ``f1_score(average='macro', zero_division=nan)``: the classes are those in
    ``y_true`` or ``y_pred``; for multi-hot 2-D arrays, the label columns positive somewhere (a
    column positive nowhere has no F1 and is left out). ``TP_c`` etc. count ``w_i`` with
    ``sample_weight``.

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1]), 4)   # F1_0 = 2/3, F1_1 = 4/5
    0.7333
    """
    if len(y_true) == 0 or _no_weight(sample_weight):
        return _undefined("macro-F1 is undefined: no rows (or their weights sum to 0)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # columns positive nowhere: left out, by design
        value = float(skm.f1_score(y_true, y_pred, average="macro", zero_division=np.nan,
                                   sample_weight=sample_weight))
    return value if not np.isnan(value) else _undefined("macro-F1 is undefined: no class occurs")


def one_sided_columns(y_true, n_classes: int | None = None, sample_weight=None) -> list[int]:
    """Columns of the one-vs-rest (or multi-hot) truth whose ROC-AUC is undefined: on none or all rows.

    ``y_true``: 0/1 of shape (n,) (one column), class indices (n,) with ``n_classes``, or
    multi-hot (n, K). Rows with weight 0 do not count.

    >>> one_sided_columns([0, 2, 2], n_classes=3), one_sided_columns([[1, 0], [1, 1]])
    ([1], [0])
    """
    y = np.asarray(y_true)
    if n_classes is not None:
        y = (y[:, None] == np.arange(n_classes)[None, :]).astype(int)
    elif y.ndim == 1:
        y = y[:, None]
    if sample_weight is not None:
        y = y[np.asarray(sample_weight) > 0]
    if len(y) == 0:
        return list(range(y.shape[1]))
    return [k for k in range(y.shape[1]) if y[:, k].min() == y[:, k].max()]


def roc_auc(y_true, scores, *, sample_weight=None) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative.

    ``AUC = (1 / (n_pos n_neg)) sum_{i pos, j neg} (1[s_i > s_j] + 1/2 1[s_i = s_j])`` (pairs
    weighted ``w_i w_j`` with ``sample_weight``), by scikit-learn's ``roc_auc_score``:

    * binary: ``y_true`` 0/1 of shape (n,), ``scores`` P(positive) of shape (n,);
    * multiclass: class indices (n,) and probabilities (n, K): one-vs-rest, macro (the unweighted
      mean over the K classes of class k against the rest; ``multi_class='ovr'``); with K = 2 the
      binary AUC of class 1 against class 0 on ``scores[:, 1]`` (P(class 1)), which equals that mean:
      class 0's AUC on ``scores[:, 0] = 1 - scores[:, 1]`` is the same number;
    * multilabel: multi-hot (n, K) and per-label probabilities (n, K): macro over the K labels.

    ``nan`` (with an :class:`UndefinedMetricWarning`, like scikit-learn) when any class or label is
    on none or all of the rows: its AUC, and so the macro mean, is undefined.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([0, 1, 2], [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    1.0
    >>> roc_auc([0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])  # two classes
    0.75
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    multiclass = y_true.ndim == 1 and scores.ndim == 2
    n_classes = scores.shape[1] if multiclass else None
    if len(y_true) == 0 or _no_weight(sample_weight) or one_sided_columns(y_true, n_classes, sample_weight):
        return _undefined("ROC-AUC is undefined: a class is on none or all of the rows")
    if multiclass:  # sklearn wants rows summing to 1 within 1e-8; float32 softmax drifts
        scores = scores / scores.sum(axis=1, keepdims=True)
        if n_classes == 2:  # sklearn reads two classes as binary and wants P(class 1) alone
            return float(skm.roc_auc_score(y_true, scores[:, 1], labels=[0, 1], sample_weight=sample_weight))
        return float(skm.roc_auc_score(y_true, scores, multi_class="ovr", average="macro",
                                       labels=np.arange(n_classes), sample_weight=sample_weight))
    return float(skm.roc_auc_score(y_true, scores, average="macro", sample_weight=sample_weight))


def is_bio(labels: list[str]) -> bool:
    return any(label.startswith(("B-", "I-")) for label in labels)


def entity_f1(true_sequences: list[list[str]], pred_sequences: list[list[str]]) -> float:
    """Entity-level micro F1, ``2 P R / (P + R)`` with ``P = TP / #predicted``, ``R = TP / #true``.

    seqeval's ``f1_score`` in its default (conlleval) mode: an entity starts at ``B-X`` or at an
    ``I-X`` that follows ``O`` or another type, and counts as found only if its type, start and
    end all match. ``nan`` (with a warning) when there is no entity in the references or the
    predictions; 0 when there are entities but none is found.

    >>> entity_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])  # P = 1, R = 1/2
    0.6666666666666666
    """
    if not get_entities(list(true_sequences)) and not get_entities(list(pred_sequences)):
        return _undefined("entity F1 is undefined: no entity in the references or predictions")
    return float(seqeval_f1(list(true_sequences), list(pred_sequences), zero_division=0))


def task_metrics(kind: str, labels: list[str], y_true, scores, *, sample_weight=None) -> dict:
    """Metrics of one task; ``primary`` names the score that enters the aggregate.

    Parameters
    ----------
    kind : {'multiclass', 'binary', 'multilabel', 'token'}
    labels : the task's label names
    y_true : class indices (n,), 0/1 (n,), multi-hot (n, K), or for token tasks a list of per-word
        tag-index sequences
    scores : probabilities (n, K), P(positive) (n,), per-label probabilities (n, K), or for token
        tasks the predicted tag-index sequences. Predictions: argmax, or ``score >= 0.5``.
    sample_weight : array-like of shape (n,), optional
        Each row's weight; adds the ``weighted_<metric>`` keys.

    Returns
    -------
    dict with ``n`` (rows scored), ``accuracy``, ``macro_f1``, ``roc_auc`` (sequence tasks) or
    ``entity_f1`` (BIO token tasks), ``primary``, and ``notes`` (why a metric is ``nan``) when any.
    """
    weighted = {}
    if kind == "token":
        truth = [[labels[i] for i in seq] for seq in y_true]
        pred = [[labels[i] for i in seq] for seq in scores]
        flat_true = np.concatenate([np.asarray(s, dtype=int) for s in y_true]) if y_true else np.empty(0, int)
        flat_pred = np.concatenate([np.asarray(s, dtype=int) for s in scores]) if scores else np.empty(0, int)
        out = {"n": len(y_true), "accuracy": accuracy(flat_true, flat_pred)}
        word_weight = (np.repeat(np.asarray(sample_weight, dtype=float), [len(s) for s in y_true])
                       if sample_weight is not None else None)
        if word_weight is not None:
            weighted["accuracy"] = accuracy(flat_true, flat_pred, sample_weight=word_weight)
        if is_bio(labels):
            out["entity_f1"] = entity_f1(truth, pred)
            out["primary"] = "entity_f1"
        else:
            out["macro_f1"] = macro_f1(flat_true, flat_pred)
            out["primary"] = "macro_f1"
            if word_weight is not None:
                weighted["macro_f1"] = macro_f1(flat_true, flat_pred, sample_weight=word_weight)
        notes = [f"{name} is nan: no entity in the references or predictions"
                 for name in ("entity_f1",) if name in out and np.isnan(out[name])]
    else:
        y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
        pred = scores.argmax(axis=1) if kind == "multiclass" else (scores >= 0.5).astype(int)
        truth = y_true if kind == "multiclass" else y_true.astype(int)
        out = {"n": len(y_true)}
        for weight, target in ((None, out), (sample_weight, weighted)):
            if target is weighted and weight is None:
                continue
            target["accuracy"] = accuracy(truth, pred, sample_weight=weight)
            target["macro_f1"] = macro_f1(truth, pred, sample_weight=weight)
            target["roc_auc"] = roc_auc(truth, scores, sample_weight=weight)
        out["primary"] = "macro_f1"
        notes = _roc_auc_notes(kind, labels, truth, out["roc_auc"])
    out.update({WEIGHTED_PREFIX + k: v for k, v in weighted.items()})
    if notes:
        out["notes"] = notes
    return out


def _roc_auc_notes(kind: str, labels: list[str], truth: np.ndarray, value: float) -> list[str]:
    if not np.isnan(value) or len(truth) == 0:
        return []
    if kind == "binary":
        return [f"roc_auc is nan (undefined): all {len(truth)} scored rows are {labels[int(truth[0])]!r}"]
    columns = one_sided_columns(truth, len(labels) if kind == "multiclass" else None)
    names = ", ".join(repr(labels[k]) for k in columns)
    what = "class(es)" if kind == "multiclass" else "label(s)"
    return [f"roc_auc is nan (undefined, one-vs-rest macro): {what} {names} on none or all of the "
            f"{len(truth)} scored rows"]


def aggregate(per_task: dict[str, dict]) -> dict:
    """Mean and standard deviation (``ddof=0``) across tasks of each task's primary score.

    Also the mean of each metric (and of its weighted form) over the tasks that report it. ``nan``
    scores are left out.

    >>> a = aggregate({"a": {"macro_f1": 0.5, "primary": "macro_f1"}, "b": {"entity_f1": 0.9, "primary": "entity_f1"}})
    >>> round(a["mean_score"], 3), round(a["std_score"], 3), a["n_tasks"]
    (0.7, 0.2, 2)
    """
    primaries = np.array([m[m["primary"]] for m in per_task.values()], dtype=float)
    defined = primaries[~np.isnan(primaries)]
    out = {"n_tasks": len(per_task),
           "mean_score": float(defined.mean()) if len(defined) else float("nan"),
           "std_score": float(defined.std()) if len(defined) else float("nan")}
    for name in (*AGGREGATED, *(WEIGHTED_PREFIX + n for n in AGGREGATED)):
        values = np.array([m[name] for m in per_task.values() if name in m], dtype=float)
        values = values[~np.isnan(values)]
        if len(values):
            out[f"mean_{name}"] = float(values.mean())
    return out
