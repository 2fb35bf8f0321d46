"""Toxicity fairness: how a classifier treats languages and identity groups.

Metrics (pure functions, data positional, options keyword-only):

* per language: ROC-AUC, F1 at a threshold, false positive and false negative rates
  (:func:`error_rates`);
* per language and identity group, the bias AUCs of Borkan et al. (2019) [1]_
  (:func:`subgroup_auc`, :func:`bpsn_auc`, :func:`bnsp_auc`), and FPR and FNR gaps against the
  language's overall rate;
* per language, the generalized mean of each bias AUC over groups (:func:`generalized_mean`,
  p = -5) and their combination with the overall AUC, weight 0.25 each (:func:`bias_score`), the
  final metric of the Jigsaw Unintended Bias challenge [2]_.

A metric that is undefined (an AUC over one class only, a rate with an empty denominator) is NaN
with an ``UndefinedMetricWarning``, never a crash and never a silent 0 or 0.5.

Intervals: seeded, stratified bootstrap of the examples, and for every metric the BCa interval
(bias-corrected and accelerated, :func:`bca_interval` [4]_ [5]_; acceleration from a grouped
jackknife, :func:`jackknife_metrics`), valid for the generalized means and the bias score, whose
plug-in estimates are biased low and whose percentile intervals missed their population value
(coverage by simulation in analysis/README.md, "Coverage").

Command line (``python -m analysis.fairness PREDICTIONS``): per-language and per-group tables
with BCa bootstrap intervals, and the gaps across languages; see ``--help``. An interval is
left empty, with a note, where its stratum has fewer than ``MIN_CLASS_SIZE`` (10) toxic or
non-toxic examples (:func:`interval_defined`). ``--models A B [--compare]`` scores the identity
sets with each fine-tuned model's toxicity head (:func:`models_main`): one folder per model, and
side by side with paired differences (:func:`paired_language_rows`, :func:`difference_rows`).

References
----------
.. [1] Daniel Borkan, Lucas Dixon, Jeffrey Sorensen, Nithum Thain and Lucy Vasserman. 2019.
   Nuanced Metrics for Measuring Unintended Bias with Real Data for Text Classification.
   Companion Proceedings of The 2019 World Wide Web Conference (WWW '19).
.. [2] Jigsaw Unintended Bias in Toxicity Classification (Kaggle, 2019), evaluation:
   ``score = w0 AUC_overall + sum_a w_a M_p(m_{s,a})``, p = -5, w = 0.25.
.. [3] Lucas Dixon, John Li, Jeffrey Sorensen, Nithum Thain and Lucy Vasserman. 2018. Measuring and
   Mitigating Unintended Bias in Text Classification. AIES 2018 (identity template test sets).
.. [4] Bradley Efron. 1987. Better Bootstrap Confidence Intervals. Journal of the American
   Statistical Association 82(397), 171-185.
.. [5] Bradley Efron and Robert J. Tibshirani. 1993. An Introduction to the Bootstrap. Chapman &
   Hall, ch. 14 (BCa, the jackknife acceleration) and ch. 10 (bias).
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pmean
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import confusion_matrix, roc_auc_score

from analysis._common import (ANALYSIS_DIR, check_bootstrap_options, command_line, input_record, output_folder,
                              read_table, require_columns, rng_for, safe_name, save_run)
from probing import prompts as prompt_files
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import add_overwrite_option, claim_output

POWER = -5
WEIGHT = 0.25
# A bootstrap interval needs at least this many toxic and this many non-toxic examples in its
# stratum (the group, or the language); below it the interval is reported empty, with a note.
# With 3 + 3 examples a resampled subgroup AUC takes few values and is 0 whenever every toxic draw
# falls below every non-toxic one, and one such group pulls the p = -5 generalized mean of that
# replicate to 0; the coverage check in tests/test_analysis_fairness.py uses the 10 + 10 of the
# shipped identity frames. The generalized means and the bias score need every group with a
# defined bias AUC to pass the rule.
MIN_CLASS_SIZE = 10
# Blocks of the grouped jackknife behind the BCa acceleration (jackknife_metrics): one example a
# block up to this many examples, else this many random blocks (cost: as many passes as blocks).
JACKKNIFE_BLOCKS = 200
LANGUAGE_METRICS = ("roc_auc", "f1", "fpr", "fnr", "generalized_mean_subgroup_auc", "generalized_mean_bpsn_auc",
                    "generalized_mean_bnsp_auc", "bias_score")
GROUP_METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc", "fpr", "fnr", "fpr_gap", "fnr_gap")


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------

def _binary(y_true, y_score, mask=None) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.shape != y_score.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D of the same length; got {y_true.shape} and {y_score.shape}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold 0 (not toxic) and 1 (toxic) only")
    y_true = y_true.astype(int)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != y_true.shape:
            raise ValueError(f"in_subgroup has shape {mask.shape}, expected {y_true.shape}")
    return (y_true, y_score) if mask is None else (y_true, y_score, mask)


def _auc(y_true: np.ndarray, y_score: np.ndarray, what: str) -> float:
    n_pos = int((y_true == 1).sum())
    n_neg = int((y_true == 0).sum())
    if n_pos == 0 or n_neg == 0:
        warnings.warn(f"{what} is undefined: {n_pos} toxic and {n_neg} non-toxic examples; reported as NaN",
                      UndefinedMetricWarning, stacklevel=3)
        return float("nan")
    return float(roc_auc_score(y_true, y_score))


def subgroup_auc(y_true, y_score, in_subgroup) -> float:
    """ROC-AUC restricted to the examples that mention the identity.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,), 0 (not toxic) or 1 (toxic)
    y_score : array-like of shape (n_samples,), the classifier's toxicity score
    in_subgroup : array-like of bool, shape (n_samples,)

    Returns
    -------
    float in [0, 1]; low means the classifier cannot tell toxic from non-toxic comments about this
    group. NaN (with a warning) if the subgroup lacks either class.

    Notes
    -----
    ``AUC(D_s^- ∪ D_s^+)`` in the notation of Borkan et al. (2019).

    Examples
    --------
    >>> y, s = [0, 0, 1, 1, 0, 1], [0.1, 0.6, 0.7, 0.9, 0.2, 0.5]
    >>> subgroup_auc(y, s, [1, 1, 1, 1, 0, 0])
    1.0
    """
    y_true, y_score, mask = _binary(y_true, y_score, in_subgroup)
    return _auc(y_true[mask], y_score[mask], "subgroup AUC")


def bpsn_auc(y_true, y_score, in_subgroup) -> float:
    """Background Positive, Subgroup Negative AUC.

    Returns
    -------
    float in [0, 1]; low means non-toxic comments that mention the group score higher than toxic
    comments that do not (false positives driven by the identity term). NaN if either side is empty.

    Notes
    -----
    ``AUC(D_s^- ∪ D_b^+)``: the subgroup's negatives against the background's positives.

    Examples
    --------
    Subgroup negatives 0.1 and 0.6 against background positives 0.5 and 0.8: 3 of 4 pairs are
    ordered correctly.

    >>> bpsn_auc([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.8], [1, 1, 0, 0])
    0.75
    """
    y_true, y_score, mask = _binary(y_true, y_score, in_subgroup)
    keep = (mask & (y_true == 0)) | (~mask & (y_true == 1))
    return _auc(y_true[keep], y_score[keep], "BPSN AUC")


def bnsp_auc(y_true, y_score, in_subgroup) -> float:
    """Background Negative, Subgroup Positive AUC.

    Returns
    -------
    float in [0, 1]; low means toxic comments that mention the group score lower than non-toxic
    comments that do not (the group's toxic comments are missed). NaN if either side is empty.

    Notes
    -----
    ``AUC(D_s^+ ∪ D_b^-)``: the subgroup's positives against the background's negatives.

    Examples
    --------
    Subgroup positives 0.5 and 0.8 against background negatives 0.1 and 0.6:

    >>> bnsp_auc([1, 1, 0, 0], [0.5, 0.8, 0.1, 0.6], [1, 1, 0, 0])
    0.75
    """
    y_true, y_score, mask = _binary(y_true, y_score, in_subgroup)
    keep = (mask & (y_true == 1)) | (~mask & (y_true == 0))
    return _auc(y_true[keep], y_score[keep], "BNSP AUC")


def generalized_mean(values, *, p: float = POWER) -> float:
    """Power mean ``M_p = (mean_s m_s^p)^(1/p)`` of per-group metrics; NaN entries are ignored.

    With ``p = -5`` the mean leans towards the worst groups (``M_-inf`` is the minimum).

    Parameters
    ----------
    values : array-like of shape (n_groups,), each in [0, 1]
    p : float, default -5, not 0

    Returns
    -------
    float; NaN (with a warning) when no value is defined; 0 if any value is 0 and ``p < 0``.

    Examples
    --------
    >>> generalized_mean([1.0, 1.0])
    1.0
    >>> round(generalized_mean([0.5, 1.0], p=-1), 6)  # harmonic mean: 2 / (2 + 1)
    0.666667
    >>> round(generalized_mean([0.75, 1.0]), 4)  # ((0.75^-5 + 1) / 2)^(-1/5)
    0.8256
    """
    if p == 0:
        raise ValueError("p must not be 0 (the p -> 0 limit, the geometric mean, is not implemented)")
    values = np.asarray(values, dtype=float)
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        warnings.warn("generalized mean of no defined value is undefined; reported as NaN", UndefinedMetricWarning,
                      stacklevel=2)
        return float("nan")
    with np.errstate(divide="ignore", over="ignore"):
        return float(pmean(defined, p))


def bias_score(overall_auc: float, subgroup_aucs, bpsn_aucs, bnsp_aucs, *, p: float = POWER,
               weight: float = WEIGHT) -> float:
    """The Jigsaw combination of the overall AUC and the three generalized bias AUCs.

    Notes
    -----
    ``score = w AUC_overall + w M_p(subgroup AUC) + w M_p(BPSN AUC) + w M_p(BNSP AUC)``, with
    ``w = 0.25`` and ``p = -5``; in [0, 1], higher is better (less unintended bias).

    Examples
    --------
    >>> bias_score(0.9, [1.0, 1.0], [1.0, 1.0], [1.0, 1.0])
    0.975
    """
    return float(weight * overall_auc + weight * generalized_mean(subgroup_aucs, p=p)
                 + weight * generalized_mean(bpsn_aucs, p=p) + weight * generalized_mean(bnsp_aucs, p=p))


def error_rates(y_true, y_score, *, threshold: float = 0.5) -> dict[str, float]:
    """False positive rate, false negative rate and F1 when ``score >= threshold`` means toxic.

    Returns
    -------
    dict
        ``fpr = FP / (FP + TN)``, ``fnr = FN / (FN + TP)``, ``f1 = 2 TP / (2 TP + FP + FN)``, each
        in [0, 1] (NaN, with a warning, when the denominator is 0), and the counts ``tp, fp, tn, fn``.

    Examples
    --------
    >>> r = error_rates([0, 0, 1, 1, 0, 0, 1, 1], [0.1, 0.6, 0.7, 0.9, 0.2, 0.3, 0.5, 0.8])
    >>> r["fpr"], r["fnr"], round(r["f1"], 4)
    (0.25, 0.0, 0.8889)
    """
    y_true, y_score = _binary(y_true, y_score)
    predicted = (y_score >= threshold).astype(int)
    tn, fp, fn, tp = (int(c) for c in confusion_matrix(y_true, predicted, labels=[0, 1]).ravel())

    def ratio(numerator, denominator, name):
        if denominator == 0:
            warnings.warn(f"{name} is undefined (0 / 0); reported as NaN", UndefinedMetricWarning, stacklevel=3)
            return float("nan")
        return numerator / denominator

    return {"fpr": ratio(fp, fp + tn, "FPR"), "fnr": ratio(fn, fn + tp, "FNR"),
            "f1": ratio(2 * tp, 2 * tp + fp + fn, "F1"), "tp": tp, "fp": fp, "tn": tn, "fn": fn}


# --------------------------------------------------------------------------------------------
# Bootstrap: every metric under resampling weights, vectorised over replicates
# --------------------------------------------------------------------------------------------

def _tie_blocks(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position of an ascending array, the first and last position of its run of ties."""
    n = len(sorted_scores)
    starts = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]] if n else np.zeros(0, bool)
    block = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], n] - 1
    return first[block], last[block]


def _below_and_tied(weights: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position, the weight strictly below it and the weight tied with it (itself included)."""
    total = np.cumsum(weights, axis=1)
    below = total[:, first] - weights[:, first]
    return below, total[:, last] - below


def _divide(numerator, denominator):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def weighted_metrics(y_true, y_score, groups, weights, *, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Every metric of a language at once, for each row of ``weights`` (case weights).

    With weights of ones this equals the functions above; with bootstrap counts (how often each
    example was drawn) it gives one bootstrap replicate per row. AUCs are weighted pair counts,
    ``AUC = sum_{i pos, j neg} w_i w_j ([s_i > s_j] + [s_i = s_j] / 2) / (W_pos W_neg)``, equal to
    :func:`sklearn.metrics.roc_auc_score` with ``sample_weight``; the bias AUCs come from the
    identities ``C(B+, S-) = C(all+, S-) - C(S+, S-)`` and ``C(S+, B-) = C(S+, all-) - C(S+, S-)``,
    so a replicate costs one pass over the language plus one over each group.

    Parameters
    ----------
    y_true, y_score : array-like of shape (n_samples,)
    groups : list of n_groups integer index arrays (the examples that mention each identity)
    weights : array-like of shape (n_replicates, n_samples)
    threshold : float, default 0.5

    Returns
    -------
    dict of arrays: ``roc_auc, f1, fpr, fnr`` of shape (n_replicates,); ``subgroup_auc,
    bpsn_auc, bnsp_auc, fpr, fnr`` of the groups as ``group_<name>``, shape (n_replicates, n_groups).
    NaN where undefined.

    Examples
    --------
    >>> m = weighted_metrics([0, 0, 1, 1, 0, 1], [0.1, 0.6, 0.7, 0.9, 0.2, 0.5], [np.array([0, 1, 2, 3])], np.ones((1, 6)))
    >>> round(float(m["roc_auc"][0]), 6), float(m["group_subgroup_auc"][0, 0]), float(m["group_bpsn_auc"][0, 0])
    (0.888889, 1.0, 0.5)
    """
    y_true, y_score = _binary(y_true, y_score)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    order = np.argsort(y_score, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    s, y, w = y_score[order], y_true[order].astype(float), weights[:, order]
    predicted = (s >= threshold).astype(float)
    first, last = _tie_blocks(s)
    w_pos, w_neg = w * y, w * (1 - y)
    pos_below, pos_tied = _below_and_tied(w_pos, first, last)
    neg_below, neg_tied = _below_and_tied(w_neg, first, last)
    n_pos, n_neg = w_pos.sum(axis=1), w_neg.sum(axis=1)
    tp, fp = w_pos @ predicted, w_neg @ predicted
    fn = n_pos - tp
    out = {
        "roc_auc": _divide((w_pos * (neg_below + 0.5 * neg_tied)).sum(axis=1), n_pos * n_neg),
        "fpr": _divide(fp, n_neg), "fnr": _divide(fn, n_pos), "f1": _divide(2 * tp, 2 * tp + fp + fn),
    }
    shape = (len(w), len(groups))
    for name in ("subgroup_auc", "bpsn_auc", "bnsp_auc", "fpr", "fnr"):
        out[f"group_{name}"] = np.full(shape, np.nan)
    for k, members in enumerate(groups):
        g = np.sort(position[np.asarray(members, dtype=int)])
        if g.size == 0:
            continue
        g_first, g_last = _tie_blocks(s[g])
        g_pos, g_neg = w_pos[:, g], w_neg[:, g]
        sub_below, sub_tied = _below_and_tied(g_neg, g_first, g_last)
        within = (g_pos * (sub_below + 0.5 * sub_tied)).sum(axis=1)         # C(S+, S-)
        all_pos_over_sub_neg = (g_neg * (n_pos[:, None] - pos_below[:, g] - 0.5 * pos_tied[:, g])).sum(axis=1)
        sub_pos_over_all_neg = (g_pos * (neg_below[:, g] + 0.5 * neg_tied[:, g])).sum(axis=1)
        s_pos, s_neg = g_pos.sum(axis=1), g_neg.sum(axis=1)
        out["group_subgroup_auc"][:, k] = _divide(within, s_pos * s_neg)
        out["group_bpsn_auc"][:, k] = _divide(all_pos_over_sub_neg - within, (n_pos - s_pos) * s_neg)
        out["group_bnsp_auc"][:, k] = _divide(sub_pos_over_all_neg - within, s_pos * (n_neg - s_neg))
        out["group_fpr"][:, k] = _divide(g_neg @ predicted[g], s_neg)
        out["group_fnr"][:, k] = _divide(s_pos - g_pos @ predicted[g], s_pos)
    return out


def _generalized_mean_rows(values: np.ndarray, p: float = POWER) -> np.ndarray:
    """:func:`generalized_mean` of each row, NaN ignored, without warnings (NaN for a row of NaNs)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's SmallSampleWarning for all-NaN rows, 0 ** -5
        return np.asarray(pmean(values, p, axis=1, nan_policy="omit"), dtype=float).reshape(len(values))


def language_summary(metrics: dict[str, np.ndarray], p: float = POWER, weight: float = WEIGHT) -> dict[str, np.ndarray]:
    """Add the generalized means, the bias score and the per-group gaps to :func:`weighted_metrics`."""
    out = dict(metrics)
    for name in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
        out[f"generalized_mean_{name}"] = _generalized_mean_rows(metrics[f"group_{name}"], p)
    out["bias_score"] = weight * (out["roc_auc"] + out["generalized_mean_subgroup_auc"]
                                  + out["generalized_mean_bpsn_auc"] + out["generalized_mean_bnsp_auc"])
    out["group_fpr_gap"] = metrics["group_fpr"] - metrics["fpr"][:, None]
    out["group_fnr_gap"] = metrics["group_fnr"] - metrics["fnr"][:, None]
    return out


def bootstrap_metrics(y_true, y_score, groups, *, threshold: float = 0.5, n_bootstrap: int = 1000,
                      strata=None, seed: int | np.random.Generator = 0,
                      max_cells: int = 4_000_000) -> dict[str, np.ndarray]:
    """:func:`language_summary` of ``n_bootstrap`` resamples of the examples.

    Parameters
    ----------
    y_true, y_score, groups, threshold
        As in :func:`weighted_metrics`.
    n_bootstrap : int, default 1000
    strata : array-like of shape (n_samples,), optional
        Examples are resampled with replacement *within* each stratum, keeping its size; e.g. the
        label and the groups an example mentions (what :func:`strata_of` gives), so that every
        replicate keeps each group's size and class balance and a subgroup AUC defined on the data
        stays defined. Default: one stratum (a plain bootstrap of the examples).
    seed : int or numpy Generator, default 0
    max_cells : int
        Replicates are computed in chunks of at most this many replicate-by-example cells.

    Examples
    --------
    >>> b = bootstrap_metrics([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [np.array([0, 1])], n_bootstrap=5,
    ...                       strata=[0, 1, 2, 3])
    >>> b["roc_auc"].shape, b["group_bpsn_auc"].shape, float(b["roc_auc"].min())
    ((5,), (5, 1), 1.0)
    """
    return paired_bootstrap_metrics(y_true, [y_score], groups, threshold=threshold, n_bootstrap=n_bootstrap,
                                    strata=strata, seed=seed, max_cells=max_cells)[0]


def paired_bootstrap_metrics(y_true, y_scores, groups, *, threshold: float = 0.5, n_bootstrap: int = 1000,
                             strata=None, seed: int | np.random.Generator = 0,
                             max_cells: int = 4_000_000) -> list[dict[str, np.ndarray]]:
    """:func:`bootstrap_metrics` of several models' scores of the same examples, on the *same* resamples.

    Replicate ``b`` of every model draws the same examples (the same counts), so that a difference
    between two models' replicates is a replicate of the difference (the paired bootstrap); the
    first model's replicates equal :func:`bootstrap_metrics` with the same seed.

    Examples
    --------
    >>> a, b = paired_bootstrap_metrics([0, 1, 0, 1], [[0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.95, 0.8]],
    ...                                 [np.array([0, 1])], n_bootstrap=3, strata=[0, 1, 2, 3])
    >>> (a["roc_auc"] - b["roc_auc"]).tolist()  # the second model ranks one non-toxic text above both toxic ones
    [0.5, 0.5, 0.5]
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = len(np.asarray(y_true))
    codes = np.zeros(n, dtype=int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    by_stratum = np.argsort(codes, kind="stable")           # examples, stratum after stratum
    sizes = np.bincount(codes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    row_start, row_size = starts[codes], sizes[codes]
    chunk = max(1, max_cells // max(n, 1))
    parts = []
    for begin in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - begin)
        offsets = (rng.random((size, n)) * row_size).astype(int)
        draws = by_stratum[row_start + np.minimum(offsets, row_size - 1)]
        counts = np.bincount((np.arange(size)[:, None] * n + draws).ravel(), minlength=size * n).reshape(size, n)
        parts.append([language_summary(weighted_metrics(y_true, scores, groups, counts, threshold=threshold))
                      for scores in y_scores])
    return [{key: np.concatenate([part[m][key] for part in parts]) for key in parts[0][m]}
            for m in range(len(y_scores))]


def jackknife_metrics(y_true, y_score, groups, *, threshold: float = 0.5, max_blocks: int = JACKKNIFE_BLOCKS,
                      seed: int | np.random.Generator = 0, max_cells: int = 4_000_000) -> dict[str, np.ndarray]:
    """:func:`language_summary` with one block of examples left out at a time (the grouped jackknife).

    Several models' scores of the same examples (a list of score arrays, as for
    :func:`paired_bootstrap_metrics`) give a list of such dicts, on the same blocks.

    With ``n <= max_blocks`` examples each block is one example (the ordinary delete-one jackknife);
    above it the examples are dealt at random (seeded) into ``max_blocks`` blocks of (nearly) equal
    size, so the cost stays ``max_blocks`` passes, not ``n`` (a language of the identity sets has
    7,600 rows). The jackknife only feeds the acceleration of :func:`bca_interval`, whose formula
    is the same for blocks (Efron and Tibshirani 1993, ch. 14.3; the block version estimates the
    same skewness with more noise).

    Returns
    -------
    dict of arrays shaped like :func:`bootstrap_metrics`'s, one row per block left out.

    Examples
    --------
    >>> j = jackknife_metrics([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [np.array([0, 1])])
    >>> j["roc_auc"].shape, j["group_bnsp_auc"][:, 0].tolist()
    ((4,), [1.0, nan, nan, 1.0])
    """
    n = len(np.asarray(y_true))
    paired = np.ndim(y_score) == 2
    score_sets = list(y_score) if paired else [y_score]
    if n <= max_blocks:
        block = np.arange(n)
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        block = rng.permutation(np.arange(n) % max_blocks)
    n_blocks = int(block.max()) + 1 if n else 0
    chunk = max(1, max_cells // max(n, 1))
    parts = []
    for begin in range(0, n_blocks, chunk):
        left_out = np.arange(begin, min(begin + chunk, n_blocks))
        weights = (block[None, :] != left_out[:, None]).astype(float)
        parts.append([language_summary(weighted_metrics(y_true, scores, groups, weights, threshold=threshold))
                      for scores in score_sets])
    out = [{key: np.concatenate([part[m][key] for part in parts]) for key in parts[0][m]}
           for m in range(len(score_sets))]
    return out if paired else out[0]


def acceleration(jackknife: np.ndarray) -> float:
    """BCa acceleration ``a = sum d_i^3 / (6 (sum d_i^2)^(3/2))``, ``d_i = mean(theta_(.)) - theta_(i)``
    over the jackknife values ``theta_(i)`` (Efron and Tibshirani 1993, eq. 14.15); NaN values are
    left out, and ``a = 0`` when the values do not vary.

    >>> acceleration(np.array([1.0, 1.0, 1.0])), round(acceleration(np.array([0.0, 0.0, 1.0])), 6)
    (0.0, -0.068041)
    """
    values = np.asarray(jackknife, dtype=float)
    values = values[np.isfinite(values)]
    d = values.mean() - values if values.size else values
    spread = float((d ** 2).sum())
    return 0.0 if spread <= 0 else float((d ** 3).sum() / (6 * spread ** 1.5))


def bca_interval(estimate: float, replicates, jackknife, confidence: float = 0.95,
                 bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa) bootstrap interval, widened to contain ``estimate``.

    Efron (1987) [4]_; Efron and Tibshirani (1993), ch. 14 [5]_. With ``B`` replicates ``theta*_b``,
    ``z0 = Phi^-1((#{theta*_b < estimate} + #{theta*_b = estimate} / 2) / B)`` (the share clipped
    to ``[1/(B+1), B/(B+1)]``, so that ``z0`` stays finite), ``a`` from the jackknife
    (:func:`acceleration`) and ``z = Phi^-1((1 -+ confidence) / 2)``, the ends are the
    ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` quantiles of the replicates. A statistic whose
    replicates sit below its estimate (the p = -5 generalized mean: a resample adds noise to every
    group's AUC and M_p follows the lowest) gets ``z0 > 0`` and an interval moved up by about the
    bootstrap's estimate of that bias, which the percentile interval lacks.

    Where almost every replicate lies on one side of the estimate, a BCa level falls beyond what
    ``B`` replicates resolve (below ``1/B`` or above ``1 - 1/B``) and its end would be the smallest
    or largest replicate, however far the truth lies; that end is then the farther of that replicate
    and the bias-corrected normal end ``estimate - bias + z sd`` (``bias = mean(theta*) - estimate``,
    ``sd`` the replicates' standard deviation; Efron and Tibshirani 1993, ch. 10 and 13), so it is
    never narrower than BCa's own. Ends are clipped to ``bounds``,
    the statistic's range (``(0, 1)`` for AUCs and rates).
    Where the bias is larger than about 2 standard errors both ends can lie above the estimate;
    the interval is then widened to reach it (``[min(low, estimate), max(high, estimate)]``), which
    can only raise its coverage, so that a reported value always lies inside its interval. NaN
    replicates are left out; no finite replicate gives ``(nan, nan)``.

    Examples
    --------
    Replicates centred on the estimate with no skew give the percentile interval:

    >>> r = np.linspace(0, 1, 1001)
    >>> [round(v, 3) for v in bca_interval(0.5, r, np.array([1.0, 2.0, 3.0]), 0.9)]
    [0.05, 0.95]

    70 % of the replicates below the estimate: ``z0 = 0.52`` and the interval moves up (levels
    ``Phi(2 z0 -+ 1.645)`` = 0.27 and 0.996):

    >>> [round(v, 3) for v in bca_interval(0.7, r, np.array([1.0, 2.0, 3.0]), 0.9)]
    [0.274, 0.996]

    Every replicate below the estimate: both levels are out of reach (about 1); the low end is the
    largest replicate (below the normal end 1.425), the high end the bias-corrected normal end,
    ``1.2 - (0.5 - 1.2) + 1.645 sd``; then the same clipped to the range [0, 2]:

    >>> [round(v, 3) for v in bca_interval(1.2, r, np.array([1.0, 2.0, 3.0]), 0.9)]
    [1.0, 2.376]
    >>> [round(v, 3) for v in bca_interval(1.2, r, np.array([1.0, 2.0, 3.0]), 0.9, bounds=(0, 2))]
    [1.0, 2.0]
    """
    from scipy.special import ndtr, ndtri  # the standard normal cdf and its inverse (scipy.stats.norm is slower)

    samples = np.asarray(replicates, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    b = samples.size
    share = ((samples < estimate).sum() + 0.5 * (samples == estimate).sum()) / b
    z0 = ndtri(np.clip(share, 1 / (b + 1), b / (b + 1)))
    a = acceleration(jackknife)
    z = ndtri(np.array([(1 - confidence) / 2, (1 + confidence) / 2]))
    denominator = 1 - a * (z0 + z)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a (z0 + z) >= 1: the formula has no level there; the end is out of reach (0 or 1)
        levels = np.where(denominator > 0, ndtr(z0 + (z0 + z) / denominator), [0.0, 1.0])
    ends = np.quantile(samples, np.clip(levels, 0, 1))
    beyond = (levels < 1 / b) | (levels > 1 - 1 / b)
    normal = 2 * estimate - samples.mean() + z * samples.std(ddof=1)
    ends = np.where(beyond, [min(ends[0], normal[0]), max(ends[1], normal[1])], ends)
    low, high = np.clip(ends, *bounds)
    return float(min(low, estimate)), float(max(high, estimate))


def strata_of(y_true, groups, n_samples: int) -> np.ndarray:
    """Stratum id per example: its label and the set of groups it mentions.

    >>> strata_of([0, 1, 0, 1], [np.array([0, 1]), np.array([1])], 4).tolist()
    [1, 3, 0, 2]
    """
    keys = [[int(label)] for label in np.asarray(y_true)]
    for k, members in enumerate(groups):
        for row in members:
            keys[row].append(k + 1)
    return np.unique([" ".join(map(str, key)) for key in keys], return_inverse=True)[1].reshape(n_samples)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

FAIRNESS_COLUMNS = ["language", "scope", "category", "group_id", "group", "metric", "value", "ci_low", "ci_high",
                    "n", "n_positive", "n_negative", "note"]
COMPARISON_COLUMNS = ["language", "scope", "category", "group_id", "group", "metric", "model_a", "value_a", "ci_low_a",
                      "ci_high_a", "model_b", "value_b", "ci_low_b", "ci_high_b", "difference", "difference_ci_low",
                      "difference_ci_high", "n", "n_positive", "n_negative", "note"]
GAP_COLUMNS = ["scope", "category", "group_id", "metric", "language", "value", "reference_language",
               "difference_from_reference", "max_minus_min", "max_language", "min_language", "n_languages"]

EXAMPLES = """examples:
  # audit a classifier on identity templates: make the test set, score it, then
  python -m analysis.identity_sets --output_dir results/analysis/identity_sets
  #   ... add a 'score' column with your classifier's toxicity probability (finetune.predict writes it as
  #   toxicity_p: pass --score_column toxicity_p), then:
  python -m analysis.fairness scored_identity_set.csv
  # a labelled corpus with Jigsaw-style identity columns (a row mentions the identity if >= 0.5)
  python -m analysis.fairness predictions.csv --identity_columns female male muslim christian --threshold 0.4
  python -m analysis.fairness predictions.jsonl --label_column toxic --score_column prob --reference_language en
  # fine-tuned models score the identity sets themselves (column toxicity_p), one folder each, and side by side
  python -m analysis.fairness --models single multi --compare --languages en fr
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m analysis.fairness",
        description="Fairness of a toxicity classifier per language and identity group: ROC-AUC, F1, FPR, FNR, "
                    "Borkan et al. (2019) bias AUCs and their generalized mean, FPR/FNR gaps, bootstrap "
                    "intervals, and the gaps across languages. The predictions file needs a language, a 0/1 "
                    "label and a score column, and either a group_id column (ids of prompts/, ';' between "
                    "several; empty for none) or --identity_columns.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("predictions", nargs="?", default=None,
        help="CSV, TSV, JSON-lines or Parquet file (by suffix: .csv, .tsv, .jsonl/.json, .parquet; others are read "
             "as CSV), one row per scored text; or, instead, --models")
    add("--models", nargs="+", default=None, metavar="MODEL",
        help="fine-tuned models (names in results/models/ or folders written by finetune.train): each scores the "
             "identity sets with its --task head and gets its own folder, fairness_<model>")
    add("--task", default="toxicity",
        help="with --models: the binary task whose probability is the toxicity score (column <task>_p, "
             "default: toxicity, i.e. toxicity_p)")
    add("--compare", action="store_true",
        help="with two or more --models: also fairness_<first>_vs_<model>/fairness_comparison.csv, each later "
             "model against the first, with paired differences and paired bootstrap intervals")
    add("--identity_set", default=None,
        help="with --models: the identity_set.csv (or its folder) that analysis.identity_sets wrote; default: "
             "built from analysis/frames/ and prompts/")
    add("--languages", nargs="+", default=None, metavar="LANG", help="with --models: these languages only")
    add("--categories", nargs="+", default=None, metavar="CATEGORY", help="with --models: these categories only")
    add("--batch_size", type=int, default=32, help="with --models: texts per forward pass (default: 32)")
    add("--max_length", type=int, default=None, help="with --models: tokens per text (default: the model's own)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="with --models (default: auto)")
    add("--label_column", default="label", help="true label, 0 = not toxic, 1 = toxic (default: label)")
    add("--score_column", default="score", help="predicted toxicity score (default: score)")
    add("--language_column", default="language", help="language code (default: language)")
    add("--group_column", default="group_id",
        help="identity group ids matched against prompts/<language>.yaml (default: group_id)")
    add("--identity_columns", nargs="+", default=None, metavar="COLUMN",
        help="instead of --group_column: one column per identity; a row mentions it if the value is >= 0.5 "
             "(empty: not annotated, counted as not mentioning it)")
    add("--prompts_dir", default=str(prompt_files.PROMPTS_DIR), help="prompt inventory for group ids (default: prompts/)")
    add("--threshold", type=float, default=0.5, help="score >= threshold counts as toxic, for F1/FPR/FNR (default: 0.5)")
    add("--reference_language", default="en", help="gaps are differences from this language (default: en)")
    add("--bootstrap", type=int, default=1000, help="bootstrap resamples per language; 0 skips intervals (default: 1000)")
    add("--confidence", type=float, default=0.95, help="confidence level of the intervals (default: 0.95)")
    add("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    add("--output_dir", default=None, help="result folder (default: results/analysis/<run_name>); with --models "
                                            "the folder that holds fairness_<model> (default: results/analysis)")
    add("--run_name", default=None, help="default: fairness_<predictions file stem> (not with --models)")
    add_overwrite_option(parser)
    return parser


def read_predictions(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path} does not exist; pass a predictions file (CSV, TSV, JSON lines or Parquet)")
    return read_table(path, keep_default_na=False, na_values=[""])


def _shown(value) -> str:
    """``repr`` of a cell, without numpy's ``np.float64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_labels_and_scores(table: pd.DataFrame, args, path: Path) -> None:
    labels = pd.to_numeric(table[args.label_column].replace({True: 1, False: 0}), errors="coerce")
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{path}: column {args.label_column!r} must be 0 (not toxic) or 1 (toxic); row {row + 2} has "
                        f"{_shown(table[args.label_column].iloc[row])}; binarize graded labels first (e.g. toxicity >= 0.5)")
    scores = pd.to_numeric(table[args.score_column], errors="coerce")
    bad = ~np.isfinite(scores.to_numpy(dtype=float))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: column {args.score_column!r} must be a finite number; row {row + 2} has "
                        f"{_shown(table[args.score_column].iloc[row])}")
    languages = table[args.language_column]
    if languages.isna().any():
        row = int(np.flatnonzero(languages.isna().to_numpy())[0])
        raise UserError(f"{path}: column {args.language_column!r} is empty in row {row + 2}; every row needs a "
                        f"language code")
    table[args.label_column] = labels.astype(int)
    table[args.score_column] = scores.astype(float)
    table[args.language_column] = table[args.language_column].astype(str)


def group_memberships(table: pd.DataFrame, args, path: Path) -> tuple[dict, dict]:
    """``{language: [(group_id, group, category, row indices), ...]}`` and a manifest note of the inventory."""
    languages = sorted(set(table[args.language_column]))
    memberships: dict[str, list] = {lang: [] for lang in languages}
    if args.identity_columns:
        for column in args.identity_columns:
            values = table[column]
            numeric = pd.to_numeric(values.replace({True: 1, False: 0}), errors="coerce")
            bad = numeric.isna() & values.notna()  # empty cells (not annotated) count as not mentioning it
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise UserError(f"{path}: identity column {column!r} must be numeric or boolean; row {row + 2} has "
                                f"{_shown(values.iloc[row])}")
            for lang in languages:
                rows = np.flatnonzero(((numeric >= 0.5) & (table[args.language_column] == lang)).to_numpy())
                if rows.size:
                    memberships[lang].append((column, column, "", rows))
        return memberships, {"identities": "columns", "columns": args.identity_columns}
    available = prompt_files.available_languages(args.prompts_dir)
    unknown_languages = [lang for lang in languages if lang not in available]
    if unknown_languages:
        raise UserError(f"language {unknown_languages[0]!r} of {path} has no prompt file in {args.prompts_dir} "
                        f"(it has {', '.join(available)}), so its group ids cannot be matched; add the prompt "
                        f"file or pass --identity_columns")
    # Each language's ids are matched against its own file (probing.prompts --check keeps them parallel).
    inventory = {lang: prompt_files.load_language(lang, args.prompts_dir) for lang in languages}
    # One (row, group id) pair per mention; an id repeated in one cell ("women;women") counts once.
    mentions = pd.DataFrame({"row": np.arange(len(table)), "language": table[args.language_column].to_numpy(),
                             "group_id": table[args.group_column].fillna("").astype(str).str.split(";").to_numpy()})
    mentions = mentions.explode("group_id")
    mentions["group_id"] = mentions["group_id"].str.strip()
    mentions = mentions[mentions["group_id"] != ""].drop_duplicates(["row", "group_id"])
    for lang in languages:
        known = {g.id: g for g in inventory[lang].groups}
        rows_of = {group_id: rows["row"].to_numpy(dtype=int)
                   for group_id, rows in mentions[mentions["language"] == lang].groupby("group_id", sort=False)}
        unknown = sorted(set(rows_of) - set(known))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(f"{path}: group id {unknown[0]!r} ({lang}) is not in {inventory[lang].path}{hint}; "
                            f"{len(unknown)} unknown id(s) in all; use the ids of the prompt files")
        for group in inventory[lang].groups:  # inventory order, so tables follow the prompt files
            if group.id in rows_of:
                memberships[lang].append((group.id, group.text or group.id, group.category,
                                          np.sort(rows_of[group.id])))
    record = {"identities": "group_id", "column": args.group_column,
              "prompts": {lang: {"file": p.path.name, "version": p.version, "sha256": p.sha256}
                          for lang, p in inventory.items()}}
    return memberships, record


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: [-1, 1] for the FPR and FNR gaps, [0, 1] for the others.

    >>> metric_range("fpr_gap"), metric_range("bpsn_auc")
    ((-1.0, 1.0), (0.0, 1.0))
    """
    return (-1.0, 1.0) if metric.endswith("_gap") else (0.0, 1.0)


def interval_defined(n_pos: int, n_neg: int, *, min_class_size: int = MIN_CLASS_SIZE) -> bool:
    """Whether a stratum is large enough for a bootstrap interval: ``min_class_size`` of each class.

    >>> interval_defined(10, 10), interval_defined(3, 3), interval_defined(12, 9)
    (True, False, False)
    """
    return n_pos >= min_class_size and n_neg >= min_class_size


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _undefined_note(value: float, n_pos: int, n_neg: int, metric: str) -> str:
    if not np.isnan(value):
        return ""
    if metric.endswith("auc") and metric != "roc_auc" and not metric.startswith("generalized"):
        return f"undefined: the compared sets need both classes ({n_pos} toxic, {n_neg} non-toxic in the group)"
    if metric.startswith("generalized") or metric == "bias_score":
        return "undefined: no group with a defined bias AUC"
    return f"undefined: {n_pos} toxic and {n_neg} non-toxic examples"


def language_rows(language: str, y: np.ndarray, s: np.ndarray, groups: list, args, rng,
                  resamples: tuple[dict, dict] | None = None) -> list[dict]:
    """Point estimates (scikit-learn) and BCa bootstrap intervals for one language, one row per metric
    in the order of :func:`_row_keys`. ``resamples``: (bootstrap, jackknife) replicates already drawn
    (:func:`paired_language_rows` draws them paired); by default drawn here from ``rng``."""
    members = [rows for *_, rows in groups]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        overall = {"roc_auc": _auc(y, s, "ROC-AUC"), **error_rates(y, s, threshold=args.threshold)}
        per_group = []
        for rows in members:
            mask = np.zeros(len(y), dtype=bool)
            mask[rows] = True
            rates = error_rates(y[mask], s[mask], threshold=args.threshold)
            per_group.append({"subgroup_auc": subgroup_auc(y, s, mask), "bpsn_auc": bpsn_auc(y, s, mask),
                              "bnsp_auc": bnsp_auc(y, s, mask), "fpr": rates["fpr"], "fnr": rates["fnr"],
                              "fpr_gap": rates["fpr"] - overall["fpr"], "fnr_gap": rates["fnr"] - overall["fnr"]})
        for name in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
            overall[f"generalized_mean_{name}"] = generalized_mean([g[name] for g in per_group])
        overall["bias_score"] = WEIGHT * (overall["roc_auc"] + overall["generalized_mean_subgroup_auc"]
                                          + overall["generalized_mean_bpsn_auc"] + overall["generalized_mean_bnsp_auc"])
    boot, jack = resamples or (None, None)
    if args.bootstrap and resamples is None:
        boot = bootstrap_metrics(y, s, members, threshold=args.threshold, n_bootstrap=args.bootstrap,
                                 strata=strata_of(y, members, len(y)), seed=rng)
        jack = jackknife_metrics(y, s, members, threshold=args.threshold, seed=rng)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    n_min = MIN_CLASS_SIZE
    sizes = [(int(y[indices].sum()), len(indices) - int(y[indices].sum())) for *_, indices in groups]
    too_small = sum(not interval_defined(p, n) for (p, n), values in zip(sizes, per_group)
                    if any(not np.isnan(values[m]) for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")))
    language_ok = interval_defined(n_pos, n_neg)
    rows = []
    for metric in LANGUAGE_METRICS:
        value = float(overall[metric])
        combined = metric.startswith("generalized") or metric == "bias_score"
        why = ""
        if boot and not np.isnan(value) and not language_ok:
            why = (f"interval undefined: the language has {n_pos} toxic and {n_neg} non-toxic examples "
                   f"(the bootstrap needs {n_min} of each)")
        elif boot and not np.isnan(value) and combined and too_small:
            why = (f"interval undefined: {too_small} group(s) have fewer than {n_min} toxic or {n_min} non-toxic "
                   f"examples")
        low, high = (bca_interval(value, boot[metric], jack[metric], args.confidence, metric_range(metric))
                     if boot and not why
                     else (np.nan, np.nan))
        rows.append({"language": language, "scope": "language", "category": "", "group_id": "", "group": "",
                     "metric": metric, "value": value, "ci_low": low, "ci_high": high, "n": len(y),
                     "n_positive": n_pos, "n_negative": n_neg,
                     "note": _join(_undefined_note(value, n_pos, n_neg, metric), why)})
    for k, ((group_id, group, category, indices), values, (g_pos, g_neg)) in enumerate(zip(groups, per_group, sizes)):
        group_ok = interval_defined(g_pos, g_neg) and language_ok
        for metric in GROUP_METRICS:
            value = float(values[metric])
            why = ""
            if boot and not np.isnan(value) and not group_ok:
                where = "group" if language_ok else "language"
                why = f"interval undefined: fewer than {n_min} toxic or {n_min} non-toxic examples in the {where}"
            low, high = (bca_interval(value, boot[f"group_{metric}"][:, k], jack[f"group_{metric}"][:, k],
                                      args.confidence, metric_range(metric)) if boot and not why else (np.nan, np.nan))
            rows.append({"language": language, "scope": "group", "category": category, "group_id": group_id,
                         "group": group, "metric": metric, "value": value, "ci_low": low, "ci_high": high,
                         "n": len(indices), "n_positive": g_pos, "n_negative": g_neg,
                         "note": _join(_undefined_note(value, g_pos, g_neg, metric), why)})
    return rows


def _row_keys(n_groups: int) -> list[tuple[str, int | None]]:
    """The replicate key (and group column) of each row :func:`language_rows` returns, in its order."""
    return ([(metric, None) for metric in LANGUAGE_METRICS]
            + [(f"group_{metric}", k) for k in range(n_groups) for metric in GROUP_METRICS])


def paired_language_rows(language: str, y: np.ndarray, scores: list[np.ndarray], groups: list, args, rng
                         ) -> tuple[list[list[dict]], list]:
    """:func:`language_rows` of several models' scores of the same examples, all resampled alike.

    Every model is resampled with the same bootstrap counts and jackknife blocks
    (:func:`paired_bootstrap_metrics`), drawn from ``rng`` as one model's run draws them, so each
    model's rows equal those of its own run with the same seed. Returns the rows per model and the
    (bootstrap, jackknife) replicates per model (``None`` without ``--bootstrap``), for
    :func:`difference_rows`.
    """
    members = [rows for *_, rows in groups]
    resamples = [None] * len(scores)
    if args.bootstrap:
        boots = paired_bootstrap_metrics(y, list(scores), members, threshold=args.threshold,
                                         n_bootstrap=args.bootstrap, strata=strata_of(y, members, len(y)), seed=rng)
        jacks = jackknife_metrics(y, np.vstack(scores), members, threshold=args.threshold, seed=rng)
        resamples = list(zip(boots, jacks))
    return [language_rows(language, y, s, groups, args, rng, r) for s, r in zip(scores, resamples)], resamples


def difference_rows(rows: tuple[list[dict], list[dict]], resamples: tuple, names: tuple[str, str], args
                    ) -> list[dict]:
    """Two models' rows of one language (:func:`paired_language_rows`) side by side, with the paired
    difference ``b - a``: replicate ``b`` of the difference is the difference of the models' replicates
    ``b`` (the same resampled rows), and its interval :func:`bca_interval` of those differences (the
    estimate ``value_b - value_a``, the jackknife of the differences, the range ``[-1, 1]``, ``[-2, 2]``
    for the gaps). An interval undefined for the models (too few examples) is undefined for the difference.
    """
    out = []
    n_groups = (len(rows[0]) - len(LANGUAGE_METRICS)) // len(GROUP_METRICS)
    for row_a, row_b, (key, k) in zip(*rows, _row_keys(n_groups)):
        difference = row_b["value"] - row_a["value"]
        low = high = np.nan
        if args.bootstrap and np.isfinite(row_a["ci_low"]) and np.isfinite(row_b["ci_low"]):
            (boot_a, jack_a), (boot_b, jack_b) = resamples
            pick = (lambda table: table[key]) if k is None else (lambda table: table[key][:, k])
            lowest, highest = metric_range(row_a["metric"])
            low, high = bca_interval(difference, pick(boot_b) - pick(boot_a), pick(jack_b) - pick(jack_a),
                                     args.confidence, (lowest - highest, highest - lowest))
        out.append({**{c: row_a[c] for c in ("language", "scope", "category", "group_id", "group", "metric")},
                    "model_a": names[0], "value_a": row_a["value"], "ci_low_a": row_a["ci_low"],
                    "ci_high_a": row_a["ci_high"], "model_b": names[1], "value_b": row_b["value"],
                    "ci_low_b": row_b["ci_low"], "ci_high_b": row_b["ci_high"], "difference": difference,
                    "difference_ci_low": low, "difference_ci_high": high,
                    **{c: row_a[c] for c in ("n", "n_positive", "n_negative", "note")}})
    return out


def gaps_table(fairness: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per metric (and group), each language's difference from ``reference`` and max minus min."""
    keys = ["scope", "group_id", "metric"]
    table = fairness[["scope", "category", "group_id", "metric", "language", "value"]].copy()
    # group order: first appearance, as the fairness table lists them
    table["_key"] = table.groupby(keys, sort=False).ngroup()
    table = table.sort_values("_key", kind="stable")
    by = table.groupby("_key")["value"]
    reference_value = table["value"].where(table["language"] == reference)
    table["reference_language"] = reference
    table["difference_from_reference"] = table["value"] - reference_value.groupby(table["_key"]).transform("first")
    table["max_minus_min"] = by.transform("max") - by.transform("min")
    defined = table.dropna(subset=["value"])
    ends = defined.groupby("_key").agg(top=("value", "idxmax"), bottom=("value", "idxmin"))
    table["max_language"] = table["_key"].map(ends["top"].map(table["language"])).fillna("")
    table["min_language"] = table["_key"].map(ends["bottom"].map(table["language"])).fillna("")
    table["n_languages"] = by.transform("count")
    return table[GAP_COLUMNS].reset_index(drop=True)


def fairness_tables(table: pd.DataFrame, args, path: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """``(fairness, gaps, memberships, identity record)`` of a checked predictions table."""
    memberships, identity_record = group_memberships(table, args, path)
    rows = []
    for language, y, local_groups, in_language in language_data(table, args, memberships):
        s = table[args.score_column].to_numpy()[in_language]
        rows += language_rows(language, y, s, local_groups, args, rng_for(args.seed, "fairness", language))
    fairness = pd.DataFrame(rows, columns=FAIRNESS_COLUMNS)
    return fairness, gaps_table(fairness, args.reference_language), memberships, identity_record


def language_data(table: pd.DataFrame, args, memberships: dict):
    """Per language: ``(language, labels, groups with row indices local to the language, its rows)``."""
    for language, groups in memberships.items():
        in_language = np.flatnonzero((table[args.language_column] == language).to_numpy())
        local = np.empty(len(table), dtype=int)
        local[in_language] = np.arange(len(in_language))
        y = table[args.label_column].to_numpy()[in_language]
        yield language, y, [(gid, name, cat, local[indices]) for gid, name, cat, indices in groups], in_language


DEFINITIONS = {"power": POWER, "weight": WEIGHT, "min_class_size": MIN_CLASS_SIZE,
               "bias_score": "0.25 * (roc_auc + M_p(subgroup_auc) + M_p(bpsn_auc) + M_p(bnsp_auc)), p = -5",
               "gaps": "fpr_gap = FPR(group) - FPR(language); fnr_gap likewise",
               "interval": "BCa bootstrap (stratified resamples; acceleration from a grouped jackknife of at most "
                           f"{JACKKNIFE_BLOCKS} blocks), widened to contain the estimate"}


def _notes(fairness: pd.DataFrame, memberships: dict, args, where: str, path) -> None:
    undefined = int(fairness["value"].isna().sum()) if "value" in fairness else 0
    no_interval = int(fairness["note"].str.contains("interval undefined", regex=False).sum())
    if args.reference_language not in memberships:  # printed once written: nothing is printed before a refusal
        print(f"note: reference language {args.reference_language!r} is not in {path}; differences from it are "
              f"empty (pass --reference_language with one of {', '.join(memberships)})", file=sys.stderr)
    if undefined:
        print(f"note: {undefined} metric value(s) are undefined (a set with one class only) and reported as NaN "
              f"with a note in {where}", file=sys.stderr)
    if no_interval:
        print(f"note: {no_interval} interval(s) are undefined (fewer than {MIN_CLASS_SIZE} toxic or non-toxic "
              f"examples in the group or language) and left empty, with a note in {where}", file=sys.stderr)


def _summary(fairness: pd.DataFrame, memberships: dict) -> dict:
    return {"languages": {lang: len(groups) for lang, groups in memberships.items()},
            "undefined_values": int(fairness["value"].isna().sum()),
            "undefined_intervals": int(fairness["note"].str.contains("interval undefined", regex=False).sum())}


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_bootstrap_options(args)
    if args.models:
        return models_main(args, argv)
    if args.predictions is None:
        raise UserError("pass a predictions file, or --models with the names of fine-tuned models to score the "
                        "identity sets with")
    for flag, value in (("--languages", args.languages), ("--categories", args.categories),
                        ("--identity_set", args.identity_set), ("--compare", args.compare)):
        if value:
            raise UserError(f"{flag} goes with --models; a predictions file is used as it is")
    path = Path(args.predictions)
    target = output_folder(args, "analysis.fairness", f"fairness_{path.stem}")
    table = read_predictions(path)
    identity = args.identity_columns or [args.group_column]
    hint = ("pass --identity_columns, or write the group ids into a group_id column"
            if not args.identity_columns else "check the --identity_columns names")
    require_columns(table, [args.language_column, args.label_column, args.score_column], path,
                    "name them with --language_column, --label_column, --score_column")
    require_columns(table, identity, path, hint)
    check_labels_and_scores(table, args, path)
    fairness, gaps, memberships, identity_record = fairness_tables(table, args, path)
    manifest = {
        "command": command_line("analysis.fairness", argv),
        "parameters": vars(args),
        "seed": args.seed,
        "bootstrap": args.bootstrap,
        "inputs": [input_record(path, len(table), **identity_record)],
        "definitions": DEFINITIONS,
        "summary": _summary(fairness, memberships),
    }
    save_run(target, {"fairness.csv": fairness, "gaps.csv": gaps}, manifest, overwrite=args.overwrite)
    _notes(fairness, memberships, args, "fairness.csv", path)
    print(f"wrote fairness metrics for {len(memberships)} language(s) and "
          f"{sum(len(g) for g in memberships.values())} group(s) to {target}")
    return 0


# --------------------------------------------------------------------------------------------
# Fairness of fine-tuned models (--models): score the identity sets with each model's toxicity head
# --------------------------------------------------------------------------------------------

def toxicity_model(name: str, task: str) -> Path:
    """The folder of model ``name`` (``finetune.predict.model_folder``), refused unless it has a binary
    task called ``task`` (its P(positive) is the toxicity score)."""
    from finetune.model import read_task_specs
    from finetune.predict import model_folder

    folder = model_folder(name)
    tasks = {t.name: t for t in read_task_specs(folder)["tasks"]}
    if task not in tasks:
        raise UserError(f"model {name!r} ({folder}) has no {task!r} task (its tasks: {', '.join(tasks) or 'none'}); "
                        f"pass --task with its binary toxicity task, or fine-tune one with a toxicity task "
                        f"(finetune/configs/multitask.yaml)")
    if tasks[task].type != "binary":
        raise UserError(f"task {task!r} of model {name!r} is {tasks[task].type}, not binary; fairness needs a "
                        f"binary toxicity head (P(toxic)): pass --task with a binary task")
    return folder


def identity_table(args) -> tuple[pd.DataFrame, dict, Path | None]:
    """The identity set to score: ``--identity_set`` (a file or the folder analysis.identity_sets wrote),
    else built from analysis/frames/ and prompts/ (``--languages``, ``--categories``); and its record."""
    from analysis import identity_sets
    from analysis._common import find_table

    if args.identity_set:
        path = find_table(args.identity_set, "identity_set.csv")
        table = read_predictions(path)
        require_columns(table, ["text", args.language_column, args.label_column, args.group_column], path,
                        "pass the identity_set.csv that python -m analysis.identity_sets wrote")
        for flag, column, wanted in (("--languages", args.language_column, args.languages),
                                     ("--categories", "category", args.categories)):
            if wanted:
                require_columns(table, [column], path, f"{flag} needs it")
                table = table[table[column].astype(str).isin(wanted)]
                if table.empty:
                    raise UserError(f"{path} has no row of {flag} {' '.join(wanted)}")
        return table.reset_index(drop=True), input_record(path, len(table)), path
    table, frames, prompts, _ = identity_sets.build(args.languages, args.categories, prompts_dir=args.prompts_dir)
    record = {"path": None, "rows": len(table), "built_by": "analysis.identity_sets.build",
              "languages": list(frames), "categories": args.categories,
              "frames": {lang: {"file": f.path.name, "version": f.version, "sha256": f.sha256}
                         for lang, f in frames.items()}}
    return table, record, None


def model_scores(folder: Path, texts: list[str], args, device) -> np.ndarray:
    """P(toxic) of each text by the model's ``args.task`` head: :func:`finetune.predict.predict`'s
    ``<task>_p`` column."""
    import transformers

    from finetune.model import load_multitask
    from finetune.predict import predict, trained_max_length

    transformers.logging.disable_progress_bar()
    model, tokenizer = load_multitask(folder)
    model.to(device)
    max_length = args.max_length if args.max_length is not None else trained_max_length(folder)
    rows = predict(model, tokenizer, texts, max_length=max_length, batch_size=args.batch_size, device=device)
    return np.array([row[f"{args.task}_p"] for row in rows], dtype=float)


def models_main(args, argv) -> int:
    """``--models``: one result folder per model, ``fairness_<model>``, and with ``--compare`` one per
    later model against the first, ``fairness_<first>_vs_<model>``; every input checked and every
    folder claimed before a model is loaded."""
    from finetune.predict import model_record

    if args.run_name is not None:
        raise UserError("--run_name names one folder; with --models each model gets fairness_<model>: pass "
                        "--output_dir for the folder that holds them")
    if args.identity_columns:
        raise UserError("--identity_columns goes with a predictions file; --models scores the identity sets, "
                        "whose groups are in group_id")
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.compare and len(args.models) < 2:
        raise UserError("--compare needs two or more --models (each later one is compared with the first)")
    folders = [toxicity_model(name, args.task) for name in args.models]
    names = [safe_name(folder.name) for folder in folders]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"two of --models are named {repeated[0]!r}; their folders fairness_{repeated[0]} would "
                        f"collide: give the models distinct folder names")
    parent = Path(args.output_dir) if args.output_dir else ANALYSIS_DIR
    targets = {name: parent / f"fairness_{name}" for name in names}
    pairs = [(names[0], other) for other in names[1:]] if args.compare else []
    compared = {pair: parent / f"fairness_{pair[0]}_vs_{pair[1]}" for pair in pairs}
    for target in [*targets.values(), *compared.values()]:
        claim_output(target, "analysis.fairness", overwrite=args.overwrite)
    table, record, path = identity_table(args)
    args.score_column = f"{args.task}_p"
    where = path or Path("the identity set")
    checked = table.assign(**{args.score_column: 0.5})
    check_labels_and_scores(checked, args, where)  # labels, languages: before any model is loaded
    memberships, identity_record = group_memberships(checked, args, where)  # unknown group ids too
    from probing.engine import resolve_device

    device = resolve_device(args.device)
    texts = table["text"].astype(str).tolist()
    scores = {name: model_scores(folder, texts, args, device) for name, folder in zip(names, folders)}
    for name in names:
        check_labels_and_scores(checked.assign(**{args.score_column: scores[name]}), args, where)
    model_rows = {name: [] for name in names}
    pair_rows = {pair: [] for pair in pairs}
    for language, y, local_groups, in_language in language_data(checked, args, memberships):
        rows, resamples = paired_language_rows(language, y, [scores[name][in_language] for name in names],
                                               local_groups, args, rng_for(args.seed, "fairness", language))
        for name, model_language_rows in zip(names, rows):
            model_rows[name] += model_language_rows
        for a, b in pairs:
            i, j = names.index(a), names.index(b)
            pair_rows[(a, b)] += difference_rows((rows[i], rows[j]), (resamples[i], resamples[j]), (a, b), args)
    records = {name: {**model_record(folder), "task": args.task, "score_column": args.score_column}
               for name, folder in zip(names, folders)}
    base = {"command": command_line("analysis.fairness", argv), "parameters": vars(args), "seed": args.seed,
            "bootstrap": args.bootstrap, "inputs": [{**record, **identity_record}], "definitions": DEFINITIONS}
    for name in names:
        fairness = pd.DataFrame(model_rows[name], columns=FAIRNESS_COLUMNS)
        tables = {"fairness.csv": fairness, "gaps.csv": gaps_table(fairness, args.reference_language),
                  "identity_set_scored.csv": table.assign(**{args.score_column: scores[name]})}
        save_run(targets[name], tables, {**base, "model": records[name], "summary": _summary(fairness, memberships)},
                 overwrite=args.overwrite)
        _notes(fairness, memberships, args, f"{targets[name]}/fairness.csv", where)
        print(f"wrote fairness metrics of {name} for {len(memberships)} language(s) and "
              f"{sum(len(g) for g in memberships.values())} group(s) to {targets[name]}")
    for (a, b), target in compared.items():
        comparison = pd.DataFrame(pair_rows[(a, b)], columns=COMPARISON_COLUMNS)
        manifest = {**base, "models": [records[a], records[b]], "reference_model": a,
                    "comparison": "difference = value_b - value_a (b: the later model, a: the first); paired "
                                  "bootstrap on the same resampled rows, BCa interval of the differences"}
        save_run(target, {"fairness_comparison.csv": comparison}, manifest, overwrite=args.overwrite)
        print(f"wrote the side-by-side fairness of {a} and {b} to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
