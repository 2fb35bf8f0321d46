"""Paper figures and a report, drawn only from the tables saved in run folders.

    python -m analysis.figures RUN_DIR... [--output_dir DIR]

Each RUN_DIR is read for the tables it holds, and each table gives its figures:

* ``profiles.csv`` (``python -m probing.run``): emotion heatmaps, groups (labelled with their
  names) by emotions, one figure per category (split into parts of at most ``--heatmap_groups``
  groups) with one panel per language (rows aligned by ``group_id``), coloured on the category's
  data range;
* ``correlations.csv`` (``python -m analysis.correlate``): heatmaps of rho per category and
  language for ``spearman`` and ``rsa`` (``*``: Benjamini-Hochberg adjusted p < 0.05), and per
  emotion for ``emotion``, titled with the models compared;
* ``shifts.csv`` (``analysis.correlate``): per-emotion shift bars with their intervals (one grouped
  figure per input in ``--mode languages``);
* ``alignment.csv`` (``python -m analysis.alignment``): per model a heatmap of translation
  retrieval accuracy (query language by candidate language), and per-pair dot plots of retrieval
  and cosine gap with their intervals, one colour per model;
* ``fairness.csv`` (``python -m analysis.fairness``): forest plots of the per-language metrics and of
  the groups with the lowest bias AUCs, one x range per metric, lines at 0.5 and the overall AUC,
  "undefined" where a value is missing;
* ``comparison.csv`` (``python -m analysis.compare_models``): per task, each model's metrics per language
  with bootstrap intervals, one colour per model; report.md adds each model's value and its paired
  difference from the reference model, with intervals.

Writes ``figures/<name>.png`` and ``.pdf``, ``report.md`` (a methods section from the runs'
manifests, the tables, and each figure once under the run it is drawn from; paths relative to
report.md) and ``manifest.json`` (each table read, with its sha256). The style is fixed (Agg backend, fixed
rcParams, sizes and dpi, no timestamps in the files), so the same tables give the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.correlate import MIN_GROUPS  # noqa: E402
from analysis._common import (check_profiles, command_line, completion_label, input_record,  # noqa: E402
                              lexicon_reach, output_folder, read_csv, require_columns, safe_name, save_run)
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error  # noqa: E402
from probing.manifest import add_overwrite_option, sha256_file  # noqa: E402
from probing.lexicon import EMOTIONS  # noqa: E402

TABLES = ("profiles.csv", "correlations.csv", "shifts.csv", "fairness.csv", "gaps.csv", "excluded.csv", "recall.csv",
          "comparison.csv", "alignment.csv", "fairness_comparison.csv")
PROFILE_KEYS = ("language", "category", "group_id", "group")  # and every emotion (analysis._common.check_profiles)
REQUIRED_COLUMNS = {  # what the figures and the report read of each table (the explorer adds its own)
    "correlations.csv": ["comparison", "reference", "other", "language", "category", "method", "emotion", "rho",
                         "ci_low", "ci_high", "p", "p_adjusted", "n_groups"],
    "shifts.csv": ["comparison", "reference", "language", "category", "emotion", "shift", "ci_low", "ci_high"],
    "fairness.csv": ["language", "scope", "group_id", "metric", "value", "ci_low", "ci_high"],
    "gaps.csv": ["scope", "metric", "language", "reference_language", "difference_from_reference", "max_minus_min"],
    "excluded.csv": ["comparison", "reason"],
    "recall.csv": ["run", "language", "level", "category", "k", "recall", "n", "ci_low", "ci_high"],
    "comparison.csv": ["language", "task", "metric", "model", "value", "ci_low", "ci_high", "n", "reference",
                       "difference", "diff_ci_low", "diff_ci_high"],
    "alignment.csv": ["model", "compared_with", "language_a", "language_b", "metric", "value", "ci_low", "ci_high",
                      "n_items"],
    "fairness_comparison.csv": ["language", "scope", "group_id", "metric", "model_a", "model_b", "value_a", "value_b",
                                "difference", "difference_ci_low", "difference_ci_high"],
}
WRITERS = {"profiles.csv": "probing.run", "correlations.csv": "analysis.correlate", "shifts.csv": "analysis.correlate",
           "excluded.csv": "analysis.correlate", "fairness.csv": "analysis.fairness", "gaps.csv": "analysis.fairness",
           "recall.csv": "analysis.recall", "comparison.csv": "analysis.compare_models",
           "alignment.csv": "analysis.alignment", "fairness_comparison.csv": "analysis.fairness"}
FORMATS = ("png", "pdf")
ALL = "all"
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 7,
    "axes.titlesize": 8,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "pdf.fonttype": 42,
    "svg.hashsalt": "stereoprobe",
    "image.interpolation": "nearest",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}
PALETTE = plt.get_cmap("tab10").colors
LANGUAGE_METRICS = ("roc_auc", "bias_score", "fpr", "fnr")
GROUP_METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
MAX_GROUPS = 40  # rows of one emotion heatmap; longer categories are split into several figures
LINKED_FIGURES = {  # report.md's line of links to a run's figures of one kind that have a link text
    "emotions": "Emotion heatmaps, groups by emotions, one per category, coloured on the category's data range "
                "(grey: no covered word)",
    "fairness": "The groups with the lowest bias AUCs, per language (dashed: 0.5; dotted: the language's ROC-AUC)",
    "alignment": "Translation retrieval accuracy per model, query language by candidate language",
    "fairness_comparison": "The groups whose bias AUCs differ most between the models, per language",
}

EXAMPLES = """examples:
  python -m analysis.figures results/profiles/demo-tiny-xlmr results/analysis/demo-correlate
  python -m analysis.figures results/analysis/fairness_scored --formats png --output_dir results/analysis/fig
"""


@dataclass
class Run:
    label: str
    path: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)


@dataclass
class Figure:
    name: str
    caption: str
    figure: plt.Figure | None  # None once rendered and closed
    run: str = ""   # the label of the run it is drawn from: report.md lists it under that run only
    kind: str = ""  # emotions, correlations, shifts or fairness: the report section it goes in
    link: str = ""  # set for the many per-category or per-language figures: report.md links them by this text


# ---------------------------------------------------------------------------------------------
# Drawing (pure: table in, matplotlib figure out)
# ---------------------------------------------------------------------------------------------

def _colormap(name: str):
    return plt.get_cmap(name).with_extremes(bad="#d9d9d9")


def data_range(values) -> tuple[float, float]:
    """The colour scale of an emotion heatmap: the finite data's min and max (0-1 when none).

    >>> data_range([0.2, float("nan"), 0.6])
    (0.2, 0.6)
    >>> data_range([0.3, 0.3])  # constant data: widened so that the scale is not empty
    (0.29, 0.31)
    """
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    if not finite.size:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12:
        low, high = round(low - 0.01, 12), round(high + 0.01, 12)
    return low, high


def group_labels(block: pd.DataFrame, group_ids: list[str]) -> list[str]:
    """Row labels of an emotion heatmap: each group's name in English when the table has it, else in the
    first language that has the group (``group_id`` when no name)."""
    names: dict[str, str] = {}
    languages = sorted(block["language"].unique(), key=lambda lang: (lang != "en", lang))
    for language in languages:
        rows = block[block["language"] == language]
        for group_id, name in zip(rows["group_id"], rows["group"].astype(object).fillna("").astype(str)):
            if group_id not in names and name.strip():
                names[group_id] = name.strip()
    return [names.get(g, g) for g in group_ids]


def split_rows(items: list, most: int) -> list[list]:
    """``items`` cut into the fewest parts of at most ``most`` each, as equal in size as they can be.

    >>> [len(part) for part in split_rows(list(range(90)), 40)]
    [30, 30, 30]
    >>> split_rows([1, 2], 40)
    [[1, 2]]
    """
    if not items:
        return []
    parts = -(-len(items) // most)
    size = -(-len(items) // parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def emotion_heatmap(profiles: pd.DataFrame, category: str, emotions: list[str], title: str,
                    group_ids: list[str] | None = None, vrange: tuple[float, float] | None = None) -> plt.Figure:
    """Groups (rows, aligned by group_id, labelled with their names) by emotions, one panel per language.

    Coloured on ``vrange`` (default: the category's data range, see :func:`data_range`); grey = no profile.
    """
    block = profiles[profiles["category"] == category]
    languages = sorted(block["language"].unique())
    group_ids = group_ids if group_ids is not None else list(dict.fromkeys(block["group_id"]))
    vmin, vmax = vrange if vrange is not None else data_range(block[emotions].to_numpy(dtype=float))
    labels = group_labels(block, group_ids)
    width = 1.0 + 0.045 * max(map(len, labels), default=8) + len(languages) * (0.17 * len(emotions) + 0.25) + 0.6
    height = 1.3 + 0.16 * len(group_ids)
    fig, axes = plt.subplots(1, len(languages), figsize=(width, height), sharey=True, squeeze=False,
                             layout="constrained")
    cmap = _colormap("viridis")
    image = None
    for ax, language in zip(axes[0], languages):
        values = block[block["language"] == language].set_index("group_id").reindex(group_ids)[emotions]
        image = ax.imshow(values.to_numpy(dtype=float), vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
        ax.set_title(language)
        ax.set_xticks(range(len(emotions)), emotions, rotation=90)
        ax.set_yticks(range(len(group_ids)), labels)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(title, fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.03, pad=0.02,
                 label="share of covered words")
    return fig


def _column_labels(block: pd.DataFrame) -> tuple[list[tuple[str, str]], list[str]]:
    columns = list(dict.fromkeys(zip(block["other"], block["language"])))
    others = {o for o, _ in columns}
    languages_per_other = {o: {lang for oo, lang in columns if oo == o} for o in others}
    if len(others) == 1:
        labels = [lang for _, lang in columns]
    elif all(len(v) == 1 for v in languages_per_other.values()):
        labels = [o for o, _ in columns]
    else:
        labels = [f"{o}\n{lang}" for o, lang in columns]
    return columns, labels


def comparison_phrase(block: pd.DataFrame) -> str:
    """What a correlation block compares, for titles: ``"ft vs base"``, ``"ft, ft2 vs base"``."""
    others = list(dict.fromkeys(block["other"].astype(str)))
    references = list(dict.fromkeys(block["reference"].astype(str)))
    if len(others) > 3:
        others = [*others[:3], f"{len(others) - 3} more"]
    return f"{', '.join(others)} vs {', '.join(references)}"


def correlation_heatmap(block: pd.DataFrame, rows: list[str], row_column: str, title: str,
                        alpha: float = 0.05) -> plt.Figure:
    """rho by ``row_column`` (categories or emotions) and comparison column; ``*`` where the row is
    significant after adjustment (:func:`significant`)."""
    columns, labels = _column_labels(block)
    grid = np.full((len(rows), len(columns)), np.nan)
    significant = np.zeros_like(grid, dtype=bool)
    index = {key: j for j, key in enumerate(columns)}
    for (_, row), marked in zip(block.iterrows(), significant_rows(block, alpha)):
        if row[row_column] in rows:
            i, j = rows.index(row[row_column]), index[(row["other"], row["language"])]
            grid[i, j] = row["rho"]
            significant[i, j] = bool(marked)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * len(columns) + 0.8, 1.0 + 0.26 * len(rows)), layout="constrained")
    image = ax.imshow(grid, vmin=-1, vmax=1, cmap=_colormap("RdBu_r"), aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}" + ("*" if significant[i, j] else ""), ha="center", va="center",
                        fontsize=5.5, color="white" if abs(grid[i, j]) > 0.6 else "black")
    ax.set_xticks(range(len(columns)), labels, rotation=90 if max(map(len, labels)) > 4 else 0)
    ax.set_yticks(range(len(rows)), rows)
    others = list(dict.fromkeys(block["other"].astype(str)))
    ax.set_xlabel(f"language ({others[0]})" if len(others) == 1 else "compared model / language")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03, label="Spearman's rho")
    return fig


def shift_bars(block: pd.DataFrame, emotions: list[str], title: str) -> plt.Figure:
    """Mean shift (other - reference) per emotion, one bar per language, with interval whiskers."""
    languages = sorted(block["language"].unique())
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * len(emotions) * max(1, len(languages)) ** 0.5, 2.6),
                           layout="constrained")
    width = 0.8 / max(len(languages), 1)
    x = np.arange(len(emotions))
    for k, language in enumerate(languages):
        values = block[block["language"] == language].set_index("emotion").reindex(emotions)
        shift = values["shift"].to_numpy(dtype=float)
        position = x - 0.4 + width * (k + 0.5)
        ax.bar(position, shift, width=width, color=PALETTE[k % len(PALETTE)], label=language)
        # The interval is drawn from its own ends, not as whiskers around the bar: a percentile
        # interval need not contain the estimate (and misses it by rounding when the data are constant).
        ax.vlines(position, values["ci_low"].to_numpy(dtype=float), values["ci_high"].to_numpy(dtype=float),
                  color="black", linewidth=0.6)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, emotions, rotation=45, ha="right")
    ax.set_ylabel("mean shift (other − reference)")
    ax.set_title(title)
    ax.legend(ncols=min(len(languages), 8), frameon=False, loc="best")
    return fig


def forest_data(block: pd.DataFrame, row_labels: list[str], key_column: str, metrics: tuple[str, ...]) -> pd.DataFrame:
    """What a forest plot draws: one row per (row label, metric), top row first.

    Columns ``row, metric, y, value, ci_low, ci_high, undefined, note``; ``undefined`` is True where
    the value is missing (a metric over one class only, or no row at all), and ``note`` then says why
    (the table's ``note``, or ``"no value"``). The plot writes "undefined" there instead of a point.

    >>> table = pd.DataFrame({"group_id": ["a", "b"], "metric": ["m", "m"], "value": [0.7, float("nan")],
    ...                       "ci_low": [0.6, float("nan")], "ci_high": [0.8, float("nan")], "note": ["", "one class"]})
    >>> forest_data(table, ["a", "b"], "group_id", ("m",))[["row", "y", "undefined", "note"]].values.tolist()
    [['a', 1, False, ''], ['b', 0, True, 'one class']]
    """
    records = []
    for metric in metrics:
        rows = block[block["metric"] == metric].drop_duplicates(key_column).set_index(key_column)
        for k, label in enumerate(row_labels):
            present = label in rows.index
            value = float(rows.at[label, "value"]) if present else np.nan
            undefined = not np.isfinite(value)
            note = str(rows.at[label, "note"]) if present and "note" in rows.columns else ""
            records.append({"row": label, "metric": metric, "y": len(row_labels) - 1 - k, "value": value,
                            "ci_low": float(rows.at[label, "ci_low"]) if present else np.nan,
                            "ci_high": float(rows.at[label, "ci_high"]) if present else np.nan,
                            "undefined": undefined,
                            "note": (note if note and note != "nan" else "no value") if undefined else ""})
    return pd.DataFrame(records, columns=["row", "metric", "y", "value", "ci_low", "ci_high", "undefined", "note"])


def metric_limits(table: pd.DataFrame, metrics, references: dict[str, list[float]] | None = None
                  ) -> dict[str, tuple[float, float]]:
    """One x range per metric, over every value and interval end of ``table`` (and the reference lines),
    so that all forest plots of a run share their axes.

    >>> metric_limits(pd.DataFrame({"metric": ["m"], "value": [0.6], "ci_low": [0.55], "ci_high": [0.7]}), ["m"],
    ...               {"m": [0.5]})
    {'m': (0.48, 0.72)}
    """
    limits = {}
    for metric in metrics:
        rows = table[table["metric"] == metric]
        values = np.concatenate([rows[c].to_numpy(dtype=float) for c in ("value", "ci_low", "ci_high")]
                                + [np.asarray((references or {}).get(metric, []), dtype=float)])
        values = values[np.isfinite(values)]
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        pad = max(0.02, 0.05 * (high - low))
        limits[metric] = (round(low - pad, 6), round(high + pad, 6))
    return limits


def forest(data: pd.DataFrame, row_labels: list[str], metrics: tuple[str, ...], title: str,
           xlim: dict[str, tuple[float, float]], references: dict[str, list[tuple[float, str]]] | None = None
           ) -> plt.Figure:
    """One panel per metric (x range ``xlim[metric]``); a point and its interval per row of
    :func:`forest_data`, "undefined" written where there is no value; ``references``: vertical lines
    (value, label) per metric."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.4 + 1.7 * len(metrics), 1.0 + 0.2 * len(row_labels)),
                             sharey=True, squeeze=False, layout="constrained")
    y = np.arange(len(row_labels))[::-1]
    styles = ((0.6, "--", "#555555"), (0.8, ":", PALETTE[3]))
    for ax, metric in zip(axes[0], metrics):
        part = data[data["metric"] == metric]
        low, high = xlim[metric]
        for k, (x, label) in enumerate((references or {}).get(metric, [])):
            width, style, colour = styles[min(k, 1)]
            ax.axvline(x, linewidth=width, linestyle=style, color=colour, label=label)
        defined = part[~part["undefined"]]
        ax.hlines(defined["y"], defined["ci_low"], defined["ci_high"], color="black", linewidth=0.8)
        ax.plot(defined["value"], defined["y"], "o", color=PALETTE[0], markersize=3)
        for row in part[part["undefined"]].itertuples():
            ax.plot([low + 0.03 * (high - low)], [row.y], "x", color="#888888", markersize=3)
            ax.text(low + 0.06 * (high - low), row.y, "undefined", va="center", fontsize=5, color="#666666")
        ax.set_xlim(low, high)
        ax.set_ylim(-0.7, len(row_labels) - 0.3)
        ax.set_title(metric)
        ax.grid(axis="x", linewidth=0.3, color="#cccccc")
        if (references or {}).get(metric):
            ax.legend(frameon=False, loc="lower right", fontsize=5)
    axes[0][0].set_yticks(y, row_labels)
    fig.suptitle(title, fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------
# Figures of each table
# ---------------------------------------------------------------------------------------------

def profile_figures(run: Run, max_groups: int = MAX_GROUPS) -> Iterator[Figure]:
    profiles = run.tables["profiles.csv"]
    emotions = list(EMOTIONS)  # checked present by load_run
    model = (run.manifest.get("model") or {}).get("name")
    for category in sorted(profiles["category"].unique()):
        block = profiles[profiles["category"] == category]
        vrange = data_range(block[emotions].to_numpy(dtype=float))
        parts = split_rows(list(dict.fromkeys(block["group_id"])), max_groups)
        for k, group_ids in enumerate(parts):
            part = f" ({k + 1} of {len(parts)})" if len(parts) > 1 else ""
            suffix = f"_{k + 1}of{len(parts)}" if len(parts) > 1 else ""
            title = f"{run.label}{f' ({model})' if model else ''}: emotion profiles, {category}{part}"
            yield Figure(f"emotions_{run.label}_{category}{suffix}",
                         f"Emotion profiles of the {category} groups{part} ({run.label}); colour scale: the "
                         f"category's data range, {vrange[0]:.2f}–{vrange[1]:.2f}; grey: no covered word.",
                         emotion_heatmap(profiles, category, emotions, title, group_ids, vrange),
                         run=run.label, kind="emotions", link=f"{category}{part}")


def correlation_figures(run: Run) -> Iterator[Figure]:
    table = run.tables["correlations.csv"]
    alpha = alpha_of(run)
    for reference in dict.fromkeys(table["reference"]):
        for method in dict.fromkeys(table["method"]):
            block = table[(table["reference"] == reference) & (table["method"] == method)]
            if method == "emotion":
                block = block[block["category"] == ALL]
                rows, row_column = list(dict.fromkeys(block["emotion"])), "emotion"
            else:
                categories = sorted(set(block["category"]) - {ALL})
                rows, row_column = categories + ([ALL] if ALL in set(block["category"]) else []), "category"
            if block.empty:
                continue
            compared = comparison_phrase(block)
            title = f"{method}: rho, {compared}"
            yield Figure(
                f"correlations_{run.label}_{method}_{reference}",
                f"{method}: Spearman's rho of {compared}, by {row_column} and language ({run.label}); "
                f"an asterisk marks a row significant after adjustment ({significance_rule(block, alpha)}); "
                f"grey: undefined (fewer than 3 groups, or constant values).",
                correlation_heatmap(block, rows, row_column, title, alpha), run=run.label, kind="correlations")


def shift_figures(run: Run) -> Iterator[Figure]:
    """One figure per comparison; in ``--mode languages`` one grouped figure per input (a bar per language)."""
    table = run.tables["shifts.csv"]
    table = table[table["category"] == ALL]
    languages_mode = (run.manifest.get("parameters") or {}).get("mode") == "languages"
    key = "reference" if languages_mode else "comparison"
    for value in dict.fromkeys(table[key]):
        block = table[table[key] == value]
        if block.empty:
            continue
        emotions = list(dict.fromkeys(block["emotion"]))
        if languages_mode:
            source, _, reference_language = str(value).rpartition("/")
            yield Figure(f"shifts_{run.label}_{source}_languages",
                         f"Mean per-emotion shift of each language against {reference_language} ({source}), all "
                         f"groups, with bootstrap intervals.",
                         shift_bars(block, emotions, f"shift: {source}, each language vs {reference_language}"),
                         run=run.label, kind="shifts")
        else:
            yield Figure(f"shifts_{run.label}_{value}",
                         f"Mean per-emotion shift, {value} (other − reference), all groups, with bootstrap "
                         f"intervals.", shift_bars(block, emotions, f"shift: {value}"), run=run.label, kind="shifts")


def recall_curves(block: pd.DataFrame, title: str) -> plt.Figure:
    """recall@k against k (log scale), one panel per category (``all`` first), one line per run,
    with the interval (ci_low, ci_high) as a band (as in Choenni et al. 2021's figures)."""
    categories = [ALL, *sorted(set(block["category"]) - {ALL})]
    columns = min(len(categories), 5)
    rows = -(-len(categories) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns + 0.4, 1.7 * rows + 0.5), sharex=True,
                             sharey=True, layout="constrained", squeeze=False)
    runs = list(dict.fromkeys(block["run"].astype(str)))
    for ax, category in zip(axes.flat, categories):
        part = block[block["category"] == category]
        for color, run in zip(PALETTE, runs):
            line = part[part["run"].astype(str) == run].sort_values("k")
            if line.empty:
                continue
            ax.plot(line["k"], line["recall"], marker="o", markersize=2.5, color=color, label=run)
            low, high = line["ci_low"].astype(float), line["ci_high"].astype(float)
            if low.notna().any():
                ax.fill_between(line["k"], low, high, color=color, alpha=0.15, linewidth=0)
        n = int(part["n"].max()) if len(part) else 0
        ax.set_title(f"{category} (n={n})", fontsize=7)
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
    for ax in list(axes.flat)[len(categories):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("recall@k")
    for ax in axes[-1, :]:
        ax.set_xlabel("k")
    axes.flat[0].legend(fontsize=6, frameon=False)
    fig.suptitle(title, fontsize=8)
    return fig


def recall_figures(run: Run) -> Iterator[Figure]:
    """One figure per level (row, group) and language of a ``recall.csv``."""
    table = run.tables["recall.csv"]
    for (level, language), block in table.groupby(["level", "language"], sort=False):
        yield Figure(f"recall_{run.label}_{level}_{language}",
                     f"Recall@k of human-collected stereotypes ({level} level, {language}) per category, one line "
                     f"per probing run, with Korn-Graubard 95% intervals over groups (analysis.recall).",
                     recall_curves(block, f"recall of human stereotypes, {level} level, {language}"),
                     run=run.label, kind="recall")


AUC_METRICS = ("roc_auc", "bias_score", *GROUP_METRICS)


def fairness_figures(run: Run, n_groups: int) -> Iterator[Figure]:
    table = run.tables["fairness.csv"]
    if "note" not in table.columns:
        table = table.assign(note="")
    languages = sorted(table["language"].unique())
    overall = table[table["scope"] == "language"]
    auc = overall[overall["metric"] == "roc_auc"].set_index("language")["value"]
    chance = {m: [0.5] for m in AUC_METRICS}
    limits = metric_limits(table[table["scope"] == "language"], LANGUAGE_METRICS, chance)
    language_refs = {m: [(0.5, "0.5 (chance)")] for m in LANGUAGE_METRICS if m in AUC_METRICS}
    yield Figure(f"fairness_languages_{run.label}",
                 f"Per-language metrics with bootstrap intervals ({run.label}); dashed: 0.5 (chance); "
                 f"'undefined': no value (one class only).",
                 forest(forest_data(overall, languages, "language", LANGUAGE_METRICS), languages, LANGUAGE_METRICS,
                        f"{run.label}: per language", limits, language_refs),
                 run=run.label, kind="fairness")
    groups = table[(table["scope"] == "group") & table["metric"].isin(GROUP_METRICS)]
    # one x range per metric, shared by every language's plot, covering 0.5 and each language's overall AUC
    group_limits = metric_limits(groups, GROUP_METRICS,
                                 {m: [0.5, *auc.to_numpy(dtype=float)] for m in GROUP_METRICS})
    for language in languages:
        block = groups[groups["language"] == language]
        if block.empty:
            continue
        # undefined values sort last (NaN), so the lowest defined AUCs come first
        worst = (block.groupby("group_id", sort=False)["value"].min().sort_values(kind="stable", na_position="last")
                 .head(n_groups).index.tolist())
        references = {m: [(0.5, "0.5 (chance)")] for m in GROUP_METRICS}
        if language in auc.index and np.isfinite(auc[language]):
            references = {m: [*r, (float(auc[language]), f"overall AUC {auc[language]:.2f}")]
                          for m, r in references.items()}
        yield Figure(
            f"fairness_groups_{run.label}_{language}",
            f"The {len(worst)} groups with the lowest bias AUC in {language} ({run.label}); dashed: 0.5 (chance), "
            f"dotted: the language's overall ROC-AUC; axes shared by every language; 'undefined': no value.",
            forest(forest_data(block[block["group_id"].isin(worst)], worst, "group_id", GROUP_METRICS), worst,
                   GROUP_METRICS, f"{run.label}, {language}: lowest bias AUCs", group_limits, references),
            run=run.label, kind="fairness", link=language)


def _comparison_languages(block: pd.DataFrame) -> list[str]:
    """The languages of a comparison table, sorted, with ``all`` (every row pooled) last."""
    return [*sorted(set(block["language"].astype(str)) - {ALL}), *([ALL] if ALL in set(block["language"]) else [])]


def comparison_plot(block: pd.DataFrame, title: str) -> plt.Figure:
    """One task of ``comparison.csv`` (analysis.compare_models): one panel per metric, the languages on x, each
    model's value (a point) and bootstrap interval (a line from its own ends), one colour per model; "n/a"
    where a value is undefined."""
    metrics = list(dict.fromkeys(block["metric"]))
    models = list(dict.fromkeys(block["model"].astype(str)))
    languages = _comparison_languages(block)
    fig, axes = plt.subplots(1, len(metrics), figsize=(0.6 + (0.9 + 0.35 * len(languages)) * len(metrics), 2.4),
                             squeeze=False, sharey=True, layout="constrained")
    x = np.arange(len(languages))
    width = 0.7 / max(len(models), 1)
    for ax, metric in zip(axes[0], metrics):
        part = block[block["metric"] == metric]
        for k, model in enumerate(models):
            rows = part[part["model"].astype(str) == model].set_index("language").reindex(languages)
            position = x - 0.35 + width * (k + 0.5)
            value = rows["value"].to_numpy(dtype=float)
            colour = PALETTE[k % len(PALETTE)]
            ax.vlines(position, rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float),
                      color=colour, linewidth=0.9)
            ax.plot(position, value, "o", color=colour, markersize=3, label=model)
            for p in position[~np.isfinite(value)]:
                ax.text(p, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=5, color="#666666")
        ax.set_xticks(x, languages)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(metric)
        ax.grid(axis="y", linewidth=0.3, color="#cccccc")
    axes[0][0].set_ylabel("value (95% interval)")
    axes[0][0].legend(frameon=False, fontsize=5, loc="lower left")
    fig.suptitle(title, fontsize=8)
    return fig


def comparison_figures(run: Run) -> Iterator[Figure]:
    """One figure per task of a ``comparison.csv``."""
    table = run.tables["comparison.csv"]
    for task in dict.fromkeys(table["task"].astype(str)):
        block = table[table["task"].astype(str) == task]
        yield Figure(f"comparison_{run.label}_{task}",
                     f"Task {task}: each model's metrics per language (all: every row) with percentile bootstrap "
                     f"intervals over rows ({run.label}, analysis.compare_models); n/a: undefined (a class missing).",
                     comparison_plot(block, f"{task}: models compared per language"), run=run.label, kind="comparison")


def comparison_lines(run: Run) -> list[str]:
    """report.md's section of a comparison run: per task, each model's value [interval] and, for the other
    models, the paired difference from the reference [interval]."""
    table = run.tables["comparison.csv"]
    parameters = run.manifest.get("parameters") or {}
    reference = str(table["reference"].iloc[0])
    rows_from = ("the held-out validation rows the models share" if parameters.get("split")
                 else f"`{parameters.get('input', 'a labelled file')}`")
    models = run.manifest.get("models") or []
    described = "; ".join(f"`{m.get('name')}` ({m.get('base_model')}"
                          f"{', random weights' if m.get('random_weights') else ''})" for m in models)
    lines = ["### Extrinsic comparison of models", "",
             f"Rows: {rows_from}. Models: {described or ', '.join(dict.fromkeys(table['model'].astype(str)))}; "
             f"reference `{reference}`. Value [95% percentile bootstrap interval over rows, resampled within each "
             f"language; {run.manifest.get('bootstrap', parameters.get('bootstrap', 'n/a'))} resamples, seed "
             f"{run.manifest.get('seed', 'n/a')}]; difference: model − {reference} on the same resampled rows "
             f"(paired).", ""]
    models_order = list(dict.fromkeys(table["model"].astype(str)))
    differs = pd.Series(excludes_zero(table["diff_ci_low"], table["diff_ci_high"]), index=table.index)
    lines += [f"Shown: every row pooled (`all`) and the rows of a language where a paired difference's interval "
              f"excludes 0; every row is in `comparison.csv`.", ""]
    for task in dict.fromkeys(table["task"].astype(str)):
        block = table[table["task"].astype(str) == task]
        records = []
        for language in _comparison_languages(block):
            for metric in dict.fromkeys(block["metric"]):
                chosen = ((block["language"] == language) & (block["metric"] == metric)).to_numpy()
                if language != ALL and ALL in set(block["language"]) and not differs[block.index[chosen]].any():
                    continue
                rows = block[chosen].set_index("model")
                record = {"language": language, "metric": metric,
                          "n": int(rows["n"].iloc[0]) if len(rows) else 0}
                for model in models_order:
                    if model in rows.index:
                        r = rows.loc[model]
                        record[model] = f"{_format(float(r['value']))} {_interval(rows.loc[[model]]).iloc[0]}"
                for model in models_order:
                    if model != reference and model in rows.index:
                        r = rows.loc[[model]]
                        record[f"{model} − {reference}"] = (f"{_format(float(r['difference'].iloc[0]))} "
                                                            f"{_interval(r, 'diff_ci_low', 'diff_ci_high').iloc[0]}")
                records.append(record)
        lines += [f"Task `{task}`:", "", markdown_table(pd.DataFrame(records)), ""]
    return lines


def alignment_heatmap(block: pd.DataFrame, model: str) -> plt.Figure:
    """Retrieval accuracy of ``model``: row = query language, column = candidate language (directional)."""
    own = block[(block["model"] == model) & (block["compared_with"] == "")]
    languages = list(dict.fromkeys([*own["language_a"], *own["language_b"]]))
    index = {language: i for i, language in enumerate(languages)}
    grid = np.full((len(languages), len(languages)), np.nan)
    for row in own.itertuples():
        a, b = index[row.language_a], index[row.language_b]
        if row.metric == "retrieval_a_to_b":
            grid[a, b] = row.value
        elif row.metric == "retrieval_b_to_a":
            grid[b, a] = row.value
    size = 0.45 * len(languages) + 1.2
    fig, ax = plt.subplots(figsize=(size + 0.6, size), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=_colormap("viridis"), vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5,
                    color="white" if value < 0.5 else "black")
    ax.set_xticks(range(len(languages)), languages)
    ax.set_yticks(range(len(languages)), languages)
    ax.set_xlabel("candidates (language B)")
    ax.set_ylabel("queries (language A)")
    ax.set_title(f"{model}: translation retrieval accuracy")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def alignment_dots(block: pd.DataFrame, metrics=("retrieval", "cosine_gap")) -> plt.Figure:
    """Per language pair, each model's value with its interval, one panel per metric."""
    own = block[block["compared_with"] == ""]
    pairs = list(dict.fromkeys(zip(own["language_a"], own["language_b"])))
    labels = [f"{a}-{b}" for a, b in pairs]
    models = list(dict.fromkeys(own["model"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics) + 0.6, 0.22 * len(pairs) + 1.0),
                             sharey=True, layout="constrained", squeeze=False)
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else np.zeros(1)
    for ax, metric in zip(axes[0], metrics):
        for color, offset, model in zip(PALETTE, offsets, models):
            part = own[(own["model"] == model) & (own["metric"] == metric)].set_index(["language_a", "language_b"])
            part = part.reindex(pairs)
            y = np.arange(len(pairs)) + offset
            value = part["value"].to_numpy(dtype=float)
            low, high = part["ci_low"].to_numpy(dtype=float), part["ci_high"].to_numpy(dtype=float)
            ax.errorbar(value, y, xerr=[np.where(np.isfinite(low), value - low, 0),
                                        np.where(np.isfinite(high), high - value, 0)],
                        fmt="o", markersize=2.5, color=color, elinewidth=0.8, capsize=0, label=model)
        ax.axvline(0, color="grey", linewidth=0.5, linestyle="--")
        ax.set_title(metric.replace("_", " "))
        ax.set_yticks(range(len(pairs)), labels)
    axes[0, 0].invert_yaxis()  # once: the panels share the y axis (first pair on top)
    axes[0, 0].legend(fontsize=6, frameon=False)
    return fig


def alignment_figures(run: Run) -> Iterator[Figure]:
    """One retrieval heatmap per model and one dot plot of all models over the language pairs."""
    table = run.tables["alignment.csv"]
    for model in dict.fromkeys(table.loc[table["compared_with"] == "", "model"]):
        yield Figure(f"alignment_retrieval_{run.label}_{model}",
                     f"Translation retrieval accuracy of {model} ({run.label}): the share of sentences in the row's "
                     f"language whose translation is the nearest (cosine) of the column language's sentences.",
                     alignment_heatmap(table, model), run=run.label, kind="alignment", link=str(model))
    yield Figure(f"alignment_pairs_{run.label}",
                 f"Retrieval accuracy (mean of both directions) and cosine gap (translations minus non-translations) "
                 f"per language pair and model ({run.label}), with bootstrap intervals over the parallel sentences.",
                 alignment_dots(table), run=run.label, kind="alignment")


MOST_LISTED = 12  # significant rows of one method and language listed in report.md's details
MOST_PAIRS = 6  # language pairs in report.md's alignment table; more: the best and worst aligned half each


def alignment_section(run: Run) -> list[str]:
    """report.md's tables of an ``alignment.csv``: one row per language pair (the :data:`MOST_PAIRS` / 2 best
    and worst aligned by mean retrieval over the models when there are more), one column per model and metric;
    then the paired differences from the reference of the pairs where a retrieval difference's interval
    excludes 0. Every pair is in alignment.csv."""
    table = run.tables["alignment.csv"].copy()
    table["compared_with"] = table["compared_with"].astype(object).fillna("").astype(str)
    table["cell"] = [f"{_format(v)} {i}" for v, i in zip(table["value"], _interval(table))]
    table["pair"] = table["language_a"].astype(str) + "-" + table["language_b"].astype(str)
    shown = table[table["metric"].isin(["retrieval", "cosine_gap"])]
    mine = shown[shown["compared_with"] == ""]
    own = mine.pivot_table(index="pair", columns=["model", "metric"], values="cell", aggfunc="first", sort=False)
    own.columns = [f"{model} {metric}" for model, metric in own.columns]
    which = f"all {len(own)} language pairs"
    if len(own) > MOST_PAIRS:
        order = (mine[mine["metric"] == "retrieval"].groupby("pair", sort=False)["value"].mean()
                 .sort_values(ascending=False, kind="stable").index.tolist())
        half = MOST_PAIRS // 2
        own = own.reindex([*order[:half], *order[-half:]])
        which = (f"the {half} best and the {half} worst aligned of the {len(order)} language pairs (mean retrieval "
                 f"over the models)")
    manifest = run.manifest
    models = ", ".join(f"`{m.get('name')}` ({m.get('pooling')} pooling{', projected' if m.get('projection') else ''}"
                       f"{', random weights' if m.get('random_weights') else ''})" for m in manifest.get("models", []))
    lines = ["### Cross-lingual alignment", "",
             f"Models: {models or 'see manifest.json'}. Retrieval: the share of sentences whose translation is the "
             "nearest neighbour by cosine among the other language's sentences (mean of both directions; chance "
             "1/n); cosine gap: mean cosine of translations minus mean cosine of non-translations. 95% intervals: "
             f"percentile bootstrap over the parallel sentences (keys). Shown: {which}; every pair is in "
             "`alignment.csv`.", "",
             markdown_table(own.reset_index()), ""]
    differences = shown[shown["compared_with"] != ""]
    if not differences.empty:
        retrieval = differences[differences["metric"] == "retrieval"]
        moved = list(dict.fromkeys(retrieval.loc[excludes_zero(retrieval["ci_low"], retrieval["ci_high"]), "pair"]))
        if moved:
            wide = differences[differences["pair"].isin(moved)].pivot_table(
                index="pair", columns=["model", "compared_with", "metric"], values="cell", aggfunc="first", sort=False)
            wide.columns = [f"{model} − {reference} {metric}" for model, reference, metric in wide.columns]
            lines += [f"Paired differences (model − reference, the same resampled sentences) of the {len(moved)} "
                      f"pair(s) where a retrieval difference's interval excludes 0:", "",
                      markdown_table(wide.reset_index()), ""]
        else:
            lines += ["Paired differences (model − reference, the same resampled sentences): no retrieval "
                      "difference's interval excludes 0 (see `alignment.csv`).", ""]
    return lines


def comparison_forest_table(table: pd.DataFrame) -> pd.DataFrame:
    """``fairness_comparison.csv`` (``analysis.fairness --models A B --compare``) in the columns of
    :func:`forest_data`: the paired difference ``B - A`` and its interval as ``value, ci_low, ci_high``.

    >>> t = pd.DataFrame({"language": ["en"], "scope": ["language"], "group_id": [""], "metric": ["roc_auc"],
    ...                   "model_a": ["a"], "model_b": ["b"], "value_a": [0.6], "value_b": [0.7], "difference": [0.1],
    ...                   "difference_ci_low": [0.02], "difference_ci_high": [0.2]})
    >>> comparison_forest_table(t)[["language", "value", "ci_low", "ci_high"]].values.tolist()
    [['en', 0.1, 0.02, 0.2]]
    """
    out = table.drop(columns=[c for c in ("value", "ci_low", "ci_high") if c in table.columns])
    out = out.rename(columns={"difference": "value", "difference_ci_low": "ci_low", "difference_ci_high": "ci_high"})
    return out if "note" in out.columns else out.assign(note="")


def fairness_comparison_figures(run: Run, n_groups: int) -> Iterator[Figure]:
    """Forest plots of the paired differences ``B - A``: per language, and per language the groups whose
    bias AUCs differ most (largest ``|B - A|``); dashed line at 0 (no difference)."""
    table = comparison_forest_table(run.tables["fairness_comparison.csv"])
    a, b = str(table["model_a"].iloc[0]), str(table["model_b"].iloc[0])
    languages = sorted(table["language"].unique())
    overall = table[table["scope"] == "language"]
    zero = {m: [0.0] for m in (*LANGUAGE_METRICS, *GROUP_METRICS)}
    references = {m: [(0.0, "0 (no difference)")] for m in (*LANGUAGE_METRICS, *GROUP_METRICS)}
    yield Figure(f"fairness_comparison_languages_{run.label}",
                 f"{b} minus {a}, per language: paired differences with paired bootstrap (BCa) intervals "
                 f"({run.label}); dashed: 0; right of it {b} is higher.",
                 forest(forest_data(overall, languages, "language", LANGUAGE_METRICS), languages, LANGUAGE_METRICS,
                        f"{run.label}: {b} − {a}, per language", metric_limits(overall, LANGUAGE_METRICS, zero),
                        references),
                 run=run.label, kind="fairness_comparison")
    groups = table[(table["scope"] == "group") & table["metric"].isin(GROUP_METRICS)]
    limits = metric_limits(groups, GROUP_METRICS, zero)
    for language in languages:
        block = groups[groups["language"] == language]
        if block.empty:
            continue
        largest = (block.assign(size=block["value"].abs()).groupby("group_id", sort=False)["size"].max()
                   .sort_values(ascending=False, kind="stable", na_position="last").head(n_groups).index.tolist())
        yield Figure(f"fairness_comparison_groups_{run.label}_{language}",
                     f"The {len(largest)} groups whose bias AUCs differ most between {b} and {a} in {language} "
                     f"({run.label}): {b} − {a} with paired intervals; axes shared by every language.",
                     forest(forest_data(block[block["group_id"].isin(largest)], largest, "group_id", GROUP_METRICS),
                            largest, GROUP_METRICS, f"{run.label}, {language}: {b} − {a}", limits, references),
                     run=run.label, kind="fairness_comparison", link=language)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _format(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "n/a" if np.isnan(value) else f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table; floats with 3 decimals, NaN as n/a.

    >>> print(markdown_table(pd.DataFrame({"a": ["x"], "rho": [0.12345]})))
    | a | rho |
    |---|---|
    | x | 0.123 |
    """
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_format(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _interval(table: pd.DataFrame, low: str = "ci_low", high: str = "ci_high") -> pd.Series:
    return table.apply(lambda r: "n/a" if pd.isna(r[low]) or pd.isna(r[high]) else f"[{r[low]:.3f}, {r[high]:.3f}]",
                       axis=1)


def p_floor(permutations) -> float | None:
    """The smallest p-value ``permutations`` permutations can give, 1/(B+1); None without permutations.

    >>> p_floor(999)
    0.001
    """
    try:
        b = int(permutations)
    except (TypeError, ValueError):
        return None
    return 1.0 / (b + 1) if b > 0 else None


def format_p(p, floor: float | None) -> str:
    """p with 3 significant digits; ``"0.0196 †"`` when it sits at the permutation floor.

    >>> format_p(1 / 51, 1 / 51), format_p(0.5, 1 / 51), format_p(float("nan"), None)
    ('0.0196 †', '0.5', 'n/a')
    """
    if p is None or pd.isna(p):
        return "n/a"
    text = f"{float(p):.3g}"
    return f"{text} †" if floor is not None and np.isclose(float(p), floor, rtol=1e-9, atol=0) else text


def monte_carlo_floors(table: pd.DataFrame, permutations) -> np.ndarray:
    """Per row, the smallest p its permutations could give, 1/(B+1): B from the row's ``n_permutations``
    (adaptive permutation counts) when the table has that column, else the run's ``permutations``.

    >>> monte_carlo_floors(pd.DataFrame({"n_permutations": [99, 999]}), 50).round(4).tolist()
    [0.01, 0.001]
    """
    if "n_permutations" in table.columns:
        b = pd.to_numeric(table["n_permutations"], errors="coerce").to_numpy(dtype=float)
        return np.where(b > 0, 1.0 / (b + 1), np.nan)
    floor = p_floor(permutations)
    return np.full(len(table), np.nan if floor is None else floor)


def floor_note(rows: pd.DataFrame, floors: np.ndarray) -> list[str]:
    """The note on ``†`` when a shown p sits at its permutation floor; no line otherwise."""
    at_floor = np.isclose(pd.to_numeric(rows["p"], errors="coerce").to_numpy(dtype=float), floors, rtol=1e-9, atol=0)
    if not at_floor.any():
        return []
    counts = sorted({int(round(1 / f - 1)) for f in floors[at_floor]})
    if len(counts) == 1:
        text = (f"†: p = 1/(B+1) = {1 / (counts[0] + 1):.3g} (B = {counts[0]} permutations), the smallest p the B "
                f"permutations can give: the true p may be smaller (p < 1/(B+1)); more permutations would tell.")
    else:
        text = ("†: p = 1/(B+1), the smallest p the row's B permutations (column `n_permutations`) can give: the "
                "true p may be smaller; more permutations would tell.")
    return [text, ""]


def _permutations(run: Run):
    return run.manifest.get("permutations", (run.manifest.get("parameters") or {}).get("permutations"))


def correlation_table(rows: pd.DataFrame, keys: list[str], floors: np.ndarray, alpha: float = 0.05) -> pd.DataFrame:
    """The report's table of correlation rows: keys, rho, 95% CI, the null band (when the table has
    ``null_low``/``null_high``), p and adjusted p (``†`` at the row's permutation floor), whether it is
    significant (or cannot reject: ``cannot_reject``), n_groups."""
    out = rows[keys + ["rho"]].copy()
    out["95% CI"] = _interval(rows)
    if {"null_low", "null_high"} <= set(rows.columns):
        if "null_mean" in rows.columns:
            out["null mean"] = rows["null_mean"].to_numpy(dtype=float)
        out["null 95% band"] = _interval(rows, "null_low", "null_high")
    out["p"] = [format_p(p, f) for p, f in zip(rows["p"], floors)]
    out["p_adjusted"] = [format_p(p, f) for p, f in zip(rows["p_adjusted"], floors)]
    out["significant"] = np.where(cannot_reject(rows), "cannot reject",
                                  np.where(significant_rows(rows, alpha), "yes", "no"))
    out.loc[pd.to_numeric(rows["rho"], errors="coerce").isna().to_numpy(), "significant"] = "n/a"
    out["n_groups"] = rows["n_groups"].to_numpy()
    return out


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to the folder ``base`` (where report.md is), with forward slashes."""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return Path(os.path.abspath(path)).as_posix()


def _yes_no(flag) -> str:
    return {True: "yes (random weights: the numbers measure no learned association)", False: "no"}.get(flag,
                                                                                                   "not recorded")


@dataclass
class ModelRun:
    """A probing run, as the methods section describes it."""
    label: str
    manifest: dict
    profiles: pd.DataFrame | None = None
    where: str = ""  # the run folder, relative to report.md
    note: str = ""


def read_json(path: Path) -> dict | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def model_runs(runs: list[Run], base: Path) -> tuple[list[ModelRun], list[dict]]:
    """The probing runs behind the report: those given, then those a correlate run read (from the
    manifest.json next to each input table, when it is still there and its sha256 matches the one the
    correlate run recorded; otherwise the model name, random-weights flag and completion mode it recorded).
    Returns them and the records of the manifests read for them (for this run's manifest)."""
    found: list[ModelRun] = []
    read: list[dict] = []
    for run in runs:
        if "profiles.csv" in run.tables:
            found.append(ModelRun(run.label, run.manifest, run.tables["profiles.csv"], _relative(run.path, base)))
    for run in runs:
        if "correlations.csv" not in run.tables:
            continue
        for item in run.manifest.get("inputs") or []:
            label = str(item.get("label", ""))
            if not label or any(m.label == label for m in found):
                continue
            summary = item.get("run_manifest") or {}
            table_path = Path(str(item.get("path", "")))
            manifest_path = Path(str(summary.get("path", table_path.parent / "manifest.json")))
            manifest, note = None, ""
            if manifest_path.is_file():
                digest = sha256_file(manifest_path)
                if summary.get("sha256") in (None, digest):
                    manifest = read_json(manifest_path)
                    if manifest is not None:
                        read.append({"path": str(manifest_path), "sha256": digest, "for": label, "run": run.label})
                else:
                    note = "its manifest.json changed since the comparison; only what the comparison recorded is shown"
            if manifest is None:
                manifest = {"model": {"name": summary.get("model"), "random_weights": summary.get("random_weights")},
                            "completions": {"mode": summary.get("completions")}}
                note = note or "its manifest.json was not found; only what the comparison recorded is shown"
            where = _relative(table_path.parent, base) if str(table_path) else ""
            found.append(ModelRun(label, manifest, None, where, note))
    return found, read


def _languages_of(model: ModelRun) -> list[str]:
    languages = set((model.manifest.get("prompts") or {}) | (model.manifest.get("lexicon") or {}))
    if model.profiles is not None:
        languages |= set(model.profiles["language"])
    return sorted(languages)


def reach_lines(models: list[ModelRun]) -> list[str]:
    """The lexicon reach of each probing run (rows) in each language (columns), from the manifests'
    ``lexicon_reach``: the share of the language's lexicon entries its completions could reach (word mode:
    about all; token mode: those one vocabulary token spells). One line when no manifest records it."""
    languages = sorted({lang for m in models for lang in _languages_of(m)})
    if not any(m.manifest.get("lexicon_reach") for m in models) or not languages:
        return ["Lexicon reach (the share of each lexicon's entries the completions can reach): not recorded "
                "(runs made before it was).", ""]
    rows = [{"run": m.label, **{lang: lexicon_reach(m.manifest, lang) if lang in _languages_of(m) else "n/a"
                                for lang in languages}} for m in models]
    return ["Lexicon reach, the share of each language's lexicon entries that the run's completions can reach "
            "(token mode: the entries one vocabulary token spells; word mode: whole words, about all):", "",
            markdown_table(pd.DataFrame(rows)), ""]


def stopping_rule(run: Run) -> str:
    """The adaptive permutation stopping rule a correlate run recorded in manifest.json (``stopping_rule``,
    text or a mapping of its settings), or "" when it recorded none."""
    for holder in (run.manifest, run.manifest.get("parameters") or {}):
        rule = holder.get("stopping_rule")
        if isinstance(rule, dict):
            return "; ".join(f"{k} = {v}" for k, v in rule.items())
        if rule:
            return str(rule)
    return ""


def merge_run_tables(tables: list[tuple[str, pd.DataFrame]], key: str) -> pd.DataFrame:
    """Several runs' tables of the same columns, one row per ``key``: a column the runs agree on once, a
    column they differ on once per run (``"column (run)"``).

    >>> a = pd.DataFrame({"language": ["en"], "lexicon": ["nrc"], "groups": ["5"]})
    >>> b = pd.DataFrame({"language": ["en"], "lexicon": ["nrc"], "groups": ["4"]})
    >>> merge_run_tables([("a", a), ("b", b)], "language").columns.tolist()
    ['language', 'lexicon', 'groups (a)', 'groups (b)']
    """
    keys = list(dict.fromkeys(k for _, t in tables for k in t[key]))
    indexed = [(label, t.set_index(key).reindex(keys).fillna("n/a")) for label, t in tables]
    out = pd.DataFrame({key: keys})
    for column in dict.fromkeys(c for _, t in indexed for c in t.columns):
        values = [t[column].tolist() if column in t.columns else ["n/a"] * len(keys) for _, t in indexed]
        if all(v == values[0] for v in values):
            out[column] = values[0]
        else:
            for (label, _), v in zip(indexed, values):
                out[f"{column} ({label})"] = v
    return out


def _same_tables(tables: list[tuple[str, pd.DataFrame]]) -> list[tuple[pd.DataFrame, list[str]]]:
    """Equal tables once, with the labels of every run that has it."""
    out: list[tuple[pd.DataFrame, list[str]]] = []
    for label, table in tables:
        for table_seen, labels in out:
            if table_seen.equals(table):
                labels.append(label)
                break
        else:
            out.append((table, [label]))
    return out


def methods_section(runs: list[Run], base: Path) -> tuple[list[str], list[dict]]:
    """``## Methods``: the models, the probing settings, the lexicon and its coverage per language, the
    groups per language and category, and the tests and corrections of each comparison, read from the
    run folders' manifest.json files and profiles.csv."""
    models, read = model_runs(runs, base)
    lines = ["## Methods", ""]
    if models:
        lines += ["### Models and probing", ""]
        rows = []
        for m in models:
            model = m.manifest.get("model") or {}
            parameters = m.manifest.get("parameters") or {}
            finetuned = parameters.get("finetuned_model")
            rows.append({"run": m.label, "model": model.get("name") or "not recorded",
                         "fine-tuned": finetuned if finetuned not in (None, "base") else "no",
                         "random weights": _yes_no(model.get("random_weights")),
                         "scoring": parameters.get("scoring", "not recorded"),
                         "weighting": parameters.get("weighting", "not recorded"),
                         "top_k": parameters.get("top_k", "not recorded"),
                         "completions": completion_label(m.manifest),
                         "lexicon": parameters.get("lexicon", "not recorded"),
                         "folder": f"`{m.where}`" if m.where else ""})
        lines += [markdown_table(pd.DataFrame(rows)), ""]
        lines += reach_lines(models)
        lines += [f"- `{m.label}`: {m.note}." for m in models if m.note] + ([""] if any(m.note for m in models) else [])
        language_tables, group_tables = [], []
        for m in models:
            languages = _languages_of(m)
            if not languages:
                continue
            prompts, lexicon = m.manifest.get("prompts") or {}, m.manifest.get("lexicon") or {}
            kept, filters = m.manifest.get("kept_share") or {}, m.manifest.get("filters") or {}
            rows = []
            for language in languages:
                lex = lexicon.get(language) or {}
                row = {"language": language,
                       "prompts version": (prompts.get(language) or {}).get("version", "n/a"),
                       "lexicon": lex.get("source", "n/a"),
                       "lexicon entries": lex.get("n_entries", "n/a"),
                       "candidates kept": (f"{100 * kept[language]:.1f}% of {sum(filters.get(language, {}).values())}"
                                           if language in kept else "n/a")}
                if m.profiles is not None:
                    part = m.profiles[m.profiles["language"] == language]
                    emotions = list(EMOTIONS)
                    words = pd.to_numeric(part.get("n_words"), errors="coerce")
                    covered = pd.to_numeric(part.get("n_covered"), errors="coerce")
                    row["groups"] = len(part)
                    row["with a profile"] = int(part[emotions].notna().all(axis=1).sum())
                    row["words covered by the lexicon"] = (f"{100 * covered.sum() / words.sum():.1f}%"
                                                           if words is not None and words.sum() > 0 else "n/a")
                rows.append(row)
            language_tables.append((m.label, pd.DataFrame(rows).astype(str)))
            if m.profiles is not None:
                counts = (m.profiles.groupby(["language", "category"]).size().unstack("category", fill_value=0)
                          .reset_index())
                group_tables.append((m.label, counts))
        if language_tables:
            runs_named = ", ".join(f"`{label}`" for label, _ in language_tables)
            lines += [f"Languages of {runs_named} (lexicon coverage: the share of predicted words, over all groups, "
                      f"that the lexicon lists; candidates kept: the share of top-k candidates that passed the word "
                      f"filters; a column named after a run where the runs differ):", "",
                      markdown_table(merge_run_tables(language_tables, "language")), ""]
        for counts, labels in _same_tables(group_tables):
            lines += [f"Groups per language and category ({', '.join(f'`{label}`' for label in labels)}):", "",
                      markdown_table(counts), ""]
    tests = []
    for run in runs:
        manifest, parameters = run.manifest, run.manifest.get("parameters") or {}
        if "correlations.csv" in run.tables:
            table = run.tables["correlations.csv"]
            b, boot = _permutations(run), manifest.get("bootstrap", parameters.get("bootstrap", "not recorded"))
            counts = sorted({int(round(1 / f - 1)) for f in monte_carlo_floors(table, b) if np.isfinite(f)})
            pairs = list(dict.fromkeys(zip(table["reference"].astype(str), table["other"].astype(str))))
            compared = "; ".join(f"`{o}` against `{r}`" for r, o in pairs)
            text = (f"- `{run.label}` (analysis.correlate, mode {parameters.get('mode', 'not recorded')}): {compared}. "
                    f"Methods: {', '.join(dict.fromkeys(table['method']))}; RSA diagonal "
                    f"{parameters.get('rsa_diagonal', 'not recorded')}. ")
            if len(counts) == 1:
                text += (f"One-sided permutation tests, B = {counts[0]} permutations per test (p = (1 + #{{T_perm >= "
                         f"T_obs}}) / (B + 1), so p >= {1 / (counts[0] + 1):.3g}); ")
            elif counts:
                rule = stopping_rule(run)
                text += (f"One-sided permutation tests, {counts[0]} to {counts[-1]} permutations per test (column "
                         f"`n_permutations`; all of them, exact, where a category allows no more; stopping rule: "
                         f"{rule or 'not recorded'}); p: "
                         f"{manifest.get('p_value', 'see analysis/README.md')}; ")
            else:
                text += "No permutation tests (no p-values); "
            if counts:
                text += ("null hypothesis of a category's row: the compared model's groups are exchangeable within the "
                         "category (its profile of a group is no more like the reference's profile of the same group "
                         "than of another group); pooled `all` rows permute within each category only, so they test "
                         "agreement beyond what the category explains (analysis/README.md, Correlations); ")
            text += (f"adjusted p: {family_phrase(table)}, significant at alpha = {alpha_of(run):g}; "
                     f"{boot} bootstrap resamples of the groups, {100 * float(parameters.get('confidence', 0.95)):g}% "
                     f"percentile intervals; seed {manifest.get('seed', parameters.get('seed', 'not recorded'))}.")
            tests.append(text)
        if "fairness.csv" in run.tables:
            threshold = parameters.get("threshold", "not recorded")
            tests.append(f"- `{run.label}` (analysis.fairness): threshold {threshold}, "
                         f"{manifest.get('bootstrap', parameters.get('bootstrap', 'not recorded'))} stratified "
                         f"bootstrap resamples per language (BCa intervals), seed {manifest.get('seed', 'not recorded')}; bias score "
                         f"{(manifest.get('definitions') or {}).get('bias_score', 'as in analysis/README.md')}.")
    if tests:
        lines += ["### Tests and corrections", "", *tests, ""]
    return lines, read


# ---------------------------------------------------------------------------------------------
# Summary: what moved, which rows are significant, and why some rows are undefined
# ---------------------------------------------------------------------------------------------

def _flags(column: pd.Series) -> np.ndarray:
    """A yes/no column read back from a CSV file (``True``/``False``, ``1``/``0``); anything else is no.

    >>> _flags(pd.Series([True, "False", "true", 1, float("nan")])).tolist()
    [True, False, True, True, False]
    """
    return column.astype(str).str.strip().str.lower().isin(["true", "1", "1.0", "yes"]).to_numpy()


def alpha_of(run: Run) -> float:
    """The level the run's tests were judged at: manifest.json's ``alpha`` (analysis.correlate ``--alpha``),
    0.05 for runs made before it was recorded."""
    value = run.manifest.get("alpha", (run.manifest.get("parameters") or {}).get("alpha"))
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        return 0.05
    return alpha if 0 < alpha < 1 else 0.05


def significant_rows(table: pd.DataFrame, alpha: float) -> np.ndarray:
    """The rows of a correlations.csv or shifts.csv that count as significant: the table's own
    ``significant`` column when it has one; else adjusted p <= ``alpha`` when it has ``p_adjusted``; else (a
    shifts.csv made before its test was added) a 95% interval that excludes 0.

    >>> significant_rows(pd.DataFrame({"p_adjusted": [0.01, 0.05, 0.2, float("nan")]}), 0.05).tolist()
    [True, True, False, False]
    >>> significant_rows(pd.DataFrame({"ci_low": [0.1, -0.1], "ci_high": [0.2, 0.1]}), 0.05).tolist()
    [True, False]
    """
    if "significant" in table.columns:
        return _flags(table["significant"])
    if "p_adjusted" in table.columns:
        return (pd.to_numeric(table["p_adjusted"], errors="coerce") <= alpha).to_numpy()
    return excludes_zero(table["ci_low"], table["ci_high"])


def excludes_zero(low, high) -> np.ndarray:
    """Where the interval [low, high] lies wholly above or below 0 (missing ends: no)."""
    low, high = pd.to_numeric(pd.Series(low), errors="coerce"), pd.to_numeric(pd.Series(high), errors="coerce")
    return ((low > 0) | (high < 0)).to_numpy()


def significance_rule(table: pd.DataFrame, alpha: float) -> str:
    """What :func:`significant` went by, in words."""
    if "significant" in table.columns:
        return f"adjusted p ≤ {alpha:g} (column `significant`)"
    if "p_adjusted" in table.columns:
        return f"adjusted p ≤ {alpha:g}"
    return "a 95% interval that excludes 0 (no test recorded)"


def cannot_reject(table: pd.DataFrame) -> np.ndarray:
    """The rows marked ``cannot_reject`` (their smallest attainable p exceeds alpha); none when the table
    predates the column."""
    return _flags(table["cannot_reject"]) if "cannot_reject" in table.columns else np.zeros(len(table), dtype=bool)


def family_phrase(table: pd.DataFrame) -> str:
    """Which family each adjusted p belongs to: the ``bh_family`` column's values when the table has it,
    else the whole run (how analysis.correlate adjusted before the column existed)."""
    if "bh_family" not in table.columns:
        return f"Benjamini-Hochberg over all {len(table)} tests of the run"
    families = list(dict.fromkeys(table["bh_family"].astype(str)))
    shown = ", ".join(f"`{f}`" for f in families[:4]) + (f" and {len(families) - 4} more" if len(families) > 4 else "")
    return f"Benjamini-Hochberg within each family of column `bh_family` ({len(families)}: {shown})"


def _cell(value, low, high) -> str:
    return f"{_format(float(value))} " + ("n/a" if pd.isna(low) or pd.isna(high) else f"[{low:.3f}, {high:.3f}]")


def shift_phrase(rows: pd.DataFrame, alpha: float, most: int = 3) -> str:
    """The shifts of one comparison and language (all groups) that moved, largest first, with intervals."""
    moved = rows[significant_rows(rows, alpha)]
    moved = moved.iloc[np.argsort(-moved["shift"].abs().to_numpy(dtype=float), kind="stable")]
    if moved.empty:
        return f"no emotion moved (of {len(rows)})"
    parts = [f"{r['emotion']} {float(r['shift']):+.3f} {_interval(moved.loc[[i]]).iloc[0]}"
             for i, r in moved.head(most).iterrows()]
    rest = len(moved) - most
    return (f"{len(moved)} of {len(rows)} emotions moved: " + ", ".join(parts)
            + (f" and {rest} more" if rest > 0 else ""))


def _row_verdict(row: pd.Series, is_significant: bool, is_stuck: bool, floor: float | None) -> str:
    if pd.isna(row["rho"]):
        return "undefined (see below)"
    verdict = "significant" if is_significant else "not significant"
    if is_stuck:
        verdict = f"cannot reject (p_floor {format_p(row.get('p_floor'), None)})"
    interval = _cell(row["rho"], row["ci_low"], row["ci_high"])
    return f"{interval}, adjusted p {format_p(row['p_adjusted'], floor)}, {verdict}"


def significant_labels(rows: pd.DataFrame, mask: np.ndarray, most: int = 6) -> list[str]:
    """Per method, the rows of ``rows`` that ``mask`` marks, and how many of the method's rows cannot
    reject (:func:`cannot_reject`).

    >>> t = pd.DataFrame({"method": ["rsa"] * 3, "category": ["age", "race", "all"], "emotion": [""] * 3,
    ...                   "cannot_reject": [True, False, False]})
    >>> significant_labels(t, np.array([False, True, True]))
    ['rsa 2 of 3 (race, all; 1 cannot reject)']
    """
    out = []
    stuck = cannot_reject(rows)
    for method in dict.fromkeys(rows["method"]):
        here = (rows["method"] == method).to_numpy()
        hits = rows[here & mask]
        if hits.empty:
            continue
        labels = [(f"{c}/{e}" if c != ALL else e) if method == "emotion" else c
                  for c, e in zip(hits["category"], hits["emotion"])]
        shown = ", ".join(labels[:most]) + (f" and {len(labels) - most} more" if len(labels) > most else "")
        if (here & stuck).any():
            shown += f"; {int((here & stuck).sum())} cannot reject"
        out.append(f"{method} {len(hits)} of {int(here.sum())} ({shown})")
    return out


def _undefined(table: pd.DataFrame) -> np.ndarray:
    return pd.to_numeric(table["rho"], errors="coerce").isna().to_numpy()


def left_out_sentences(table: pd.DataFrame, excluded: pd.DataFrame) -> list[str]:
    """One sentence per language with groups left out of a comparison (excluded.csv): how many of how
    many, why, and "every row undefined" when no row of the language is defined.

    >>> t = pd.DataFrame({"language": ["el"] * 2, "category": ["age", "all"], "method": ["rsa"] * 2,
    ...                   "emotion": [""] * 2, "rho": [float("nan")] * 2, "n_groups": [0, 0]})
    >>> x = pd.DataFrame({"language": ["el"] * 3, "group_id": ["a", "b", "c"], "reason": ["no covered word"] * 3})
    >>> left_out_sentences(t, x)
    ['el: all 3 groups left out (no covered word): every row undefined.']
    """
    sentences = []
    for language in dict.fromkeys(excluded["language"].astype(str)):
        left = excluded[excluded["language"].astype(str) == language]
        whole = left[left["group_id"].astype(str) == ""]
        if len(whole):
            sentences.append(f"{language}: not compared ({'; '.join(dict.fromkeys(whole['reason']))}).")
            continue
        counts = left["reason"].value_counts()
        reasons = "; ".join(reason if len(counts) == 1 else f"{reason}: {n}" for reason, n in counts.items())
        own = table[table["language"].astype(str) == language]
        if own.empty:  # the reason is about the reference side of a comparison across languages
            sentences.append(f"{language}: {len(left)} group(s) left out ({reasons}).")
            continue
        compared = int(pd.to_numeric(own.loc[own["category"] == ALL, "n_groups"]).max()) if (
            own["category"] == ALL).any() else 0
        total = len(left) + compared
        text = f"{language}: " + (f"all {total} groups" if compared == 0 else f"{len(left)} of {total} groups")
        text += f" left out ({reasons})"
        sentences.append(text + (": every row undefined." if _undefined(own).all() else "."))
    return sentences


def undefined_note_sentences(table: pd.DataFrame, explained=()) -> list[str]:
    """One sentence per cause of the rows whose rho is undefined: the ``note`` column with its count of
    groups written N (analysis.correlate writes the cause there); where, as rows of each language (and
    method), leaving out the languages in ``explained`` (every row undefined, said already).

    >>> t = pd.DataFrame({"language": ["en", "en", "fr"], "method": ["rsa"] * 3,
    ...                   "rho": [float("nan"), 0.5, float("nan")],
    ...                   "note": ["3 group(s) with a constant vector", "", "9 group(s) with a constant vector"]})
    >>> undefined_note_sentences(t)
    ['`rsa`, N group(s) with a constant vector: en 1 of 2 rows, fr 1 of 1.']
    """
    rows = table[_undefined(table) & ~table["language"].astype(str).isin(list(explained))]
    causes = [re.sub(r"\d+", "N", str(note), count=1) or "no reason recorded" for note in rows["note"]]
    sentences = []
    for cause in dict.fromkeys(causes):
        hits = rows[[c == cause for c in causes]]
        methods = list(dict.fromkeys(hits["method"]))
        scope = table[table["method"].isin(methods)]
        parts = []
        for k, (language, n) in enumerate(hits["language"].value_counts(sort=True).items()):
            total = int((scope["language"] == language).sum())
            per_method = hits[hits["language"] == language]["method"].value_counts()
            split = f" ({', '.join(f'{m} {c}' for m, c in per_method.items())})" if len(methods) > 1 else ""
            parts.append(f"{language} {n} of {total}{' rows' if k == 0 else ''}{split}")
        label = f"`{methods[0]}`, " if len(methods) == 1 else ""
        sentences.append(f"{label}{cause}: {', '.join(parts)}.")
    return sentences


def cannot_reject_sentence(table: pd.DataFrame, alpha: float) -> str | None:
    """The rows that can never be significant at ``alpha`` (column ``cannot_reject``), listed once, by
    ``p_floor``; None when there are none or the table predates the column."""
    stuck = table[cannot_reject(table)]
    if stuck.empty:
        return None
    floors = (pd.to_numeric(stuck["p_floor"], errors="coerce") if "p_floor" in stuck.columns
              else pd.Series(np.nan, index=stuck.index))
    parts = []
    for floor in sorted(set(floors.round(12).dropna())) + ([np.nan] if floors.isna().any() else []):
        rows = stuck[floors.isna()] if pd.isna(floor) else stuck[floors.round(12) == floor]
        places = ", ".join(dict.fromkeys(f"{lang}/{cat}" for lang, cat in zip(rows["language"], rows["category"])))
        label = "p_floor not recorded" if pd.isna(floor) else f"p_floor {floor:.3g}"
        parts.append(f"{label}: {places} ({len(rows)} rows)")
    return (f"These {len(stuck)} rows can never be significant at alpha = {alpha:g}, whatever the data: their "
            f"smallest attainable p (`p_floor`) exceeds alpha, so they are not negative results — "
            + "; ".join(parts) + ".")


def correlate_summary(run: Run) -> list[str]:
    """Per comparison and language of a correlate run: what moved (shifts.csv), the pooled correlations,
    the rows significant after adjustment; then why rows are undefined, and the rows that cannot reject."""
    table = run.tables.get("correlations.csv")
    shifts = run.tables.get("shifts.csv")
    excluded = run.tables.get("excluded.csv", pd.DataFrame(columns=["comparison", "language", "group_id", "reason"]))
    alpha = alpha_of(run)
    source = table if table is not None else shifts
    rules = []
    if shifts is not None:
        rules.append(f"Moved: an emotion whose mean shift (other − reference, all groups) has "
                     f"{significance_rule(shifts, alpha)}")
    if table is not None:
        rules.append(f"adjusted p: {family_phrase(table)}; significant: {significance_rule(table, alpha)}")
    lines = [f"### Comparisons of `{run.label}`", "", "; ".join(rules) + ".", ""]
    for comparison in dict.fromkeys(source["comparison"].astype(str)):
        rows = table[table["comparison"].astype(str) == comparison] if table is not None else None
        moved = (shifts[(shifts["comparison"].astype(str) == comparison) & (shifts["category"] == ALL)]
                 if shifts is not None else None)
        lines += [f"#### {comparison}", ""]
        languages = list(dict.fromkeys([*(rows["language"] if rows is not None else []),
                                        *(moved["language"] if moved is not None else [])]))
        for language in languages:
            text = f"- **{language}**"
            if moved is not None and (moved["language"] == language).any():
                part = moved[moved["language"] == language]
                text += f" ({int(part['n_groups'].max())} groups): {shift_phrase(part, alpha)}."
            else:
                text += ":"
            if rows is not None:
                own = rows[rows["language"] == language]
                mask, stuck = significant_rows(own, alpha), cannot_reject(own)
                floors = monte_carlo_floors(own, _permutations(run))
                pooled = [f"{r['method']} {_row_verdict(r, mask[k], stuck[k], floors[k])}"
                          for k, (_, r) in enumerate(own.iterrows())
                          if r["category"] == ALL and r["method"] != "emotion"]
                if pooled:
                    text += " Pooled rho: " + "; ".join(pooled) + "."
                labels = significant_labels(own, mask)
                text += (" Significant after adjustment: " + "; ".join(labels) + "." if labels else
                         " No row significant after adjustment"
                         + (f" ({int(stuck.sum())} of them cannot reject)." if stuck.any() else "."))
            lines.append(text)
        lines.append("")
        if rows is not None:
            here = excluded[excluded["comparison"].astype(str) == comparison]
            explained = [lang for lang in dict.fromkeys(here["language"].astype(str))
                         if (rows["language"].astype(str) == lang).any()
                         and _undefined(rows[rows["language"].astype(str) == lang]).all()]
            causes = [*left_out_sentences(rows, here), *undefined_note_sentences(rows, explained)]
            if causes:
                lines += ["Undefined rows (rho n/a) and groups left out, one line per cause:", "",
                          *[f"- {c}" for c in causes], ""]
            stuck = cannot_reject_sentence(rows, alpha)
            if stuck:
                lines += [stuck, ""]
    return lines


def _pick(table: pd.DataFrame, column: str, preferred: str) -> pd.DataFrame:
    """The rows of ``table`` whose ``column`` is ``preferred``, or else its first value."""
    values = list(dict.fromkeys(table[column].astype(str)))
    if not values:
        return table
    return table[table[column].astype(str) == (preferred if preferred in values else values[0])]


def _profiles_line(run: Run) -> list[str]:
    profiles = run.tables["profiles.csv"]
    defined = profiles[list(EMOTIONS)].notna().all(axis=1)
    counts = defined.groupby(profiles["language"]).agg(["sum", "size"])
    short = [f"{lang} {int(r['sum'])} of {int(r['size'])}" for lang, r in counts.iterrows() if r["sum"] < r["size"]]
    return [f"- Profiles (`{run.label}`, {len(counts)} languages): "
            + (f"groups with a profile: {', '.join(short)}; every group elsewhere." if short
               else "every group has a profile.")]


def _recall_line(run: Run) -> list[str]:
    table = _pick(run.tables["recall.csv"], "level", "row")
    table = table[(table["category"] == ALL) & (table["k"] == table["k"].max())]
    if table.empty:
        return []
    cells = [f"{r['run']} ({r['language']}) {_cell(r['recall'], r['ci_low'], r['ci_high'])}"
             for _, r in table.iterrows()]
    return [f"- Recall of human stereotypes (`{run.label}`), recall@{table['k'].max()}, {table['level'].iloc[0]} "
            f"level, all categories: " + "; ".join(cells) + "."]


def _fairness_line(run: Run) -> list[str]:
    table = run.tables["fairness.csv"]
    rows = _pick(table[table["scope"] == "language"], "metric", "bias_score")
    if rows.empty:
        return []
    cells = [f"{r['language']} {_cell(r['value'], r['ci_low'], r['ci_high'])}" for _, r in rows.iterrows()]
    return [f"- Toxicity fairness (`{run.label}`), {rows['metric'].iloc[0]} per language: " + ", ".join(cells) + "."]


def _fairness_comparison_line(run: Run) -> list[str]:
    table = run.tables["fairness_comparison.csv"]
    rows = _pick(table[table["scope"] == "language"], "metric", "bias_score")
    if rows.empty:
        return []
    a, b = str(table["model_a"].iloc[0]), str(table["model_b"].iloc[0])
    cells = [f"{r['language']} {_cell(r['difference'], r['difference_ci_low'], r['difference_ci_high'])}"
             for _, r in rows.iterrows()]
    return [f"- Fairness side by side (`{run.label}`), {rows['metric'].iloc[0]} {b} − {a} per language: "
            + ", ".join(cells) + "."]


def _comparison_line(run: Run) -> list[str]:
    table = run.tables["comparison.csv"]
    lines = []
    for task in dict.fromkeys(table["task"].astype(str)):
        rows = _pick(table[table["task"].astype(str) == task], "language", ALL)
        rows = rows[rows["model"].astype(str) != rows["reference"].astype(str)]
        if rows.empty:
            continue
        cells = [f"{r['metric']} {r['model']} − {r['reference']} "
                 f"{_cell(r['difference'], r['diff_ci_low'], r['diff_ci_high'])}" for _, r in rows.iterrows()]
        lines.append(f"- Model comparison (`{run.label}`), task {task}, {rows['language'].iloc[0]} "
                     f"({int(rows['n'].iloc[0])} rows): " + "; ".join(cells) + ".")
    return lines


def _alignment_line(run: Run) -> list[str]:
    table = run.tables["alignment.csv"]
    own = table[(table["compared_with"].astype(str) == "") & (table["metric"] == "retrieval")
                & pd.to_numeric(table["value"], errors="coerce").notna()]
    if own.empty:
        return []
    cells = []
    for model, rows in own.groupby("model", sort=False):
        values = rows["value"].astype(float)
        best = rows.loc[values.idxmax()]
        pair = f"{best['language_a']}-{best['language_b']}"
        cells.append(f"{model} median {values.median():.3f} over {len(rows)} pairs, best "
                     f"{pair} {_cell(best['value'], best['ci_low'], best['ci_high'])}")
    return [f"- Cross-lingual alignment (`{run.label}`), translation retrieval (chance about "
            f"1/{int(own['n_items'].median())}): " + "; ".join(cells) + "."]


OTHER_LINES = {"profiles.csv": _profiles_line, "recall.csv": _recall_line, "comparison.csv": _comparison_line,
               "alignment.csv": _alignment_line, "fairness.csv": _fairness_line,
               "fairness_comparison.csv": _fairness_comparison_line}


def other_summary(run: Run) -> list[str]:
    """One line per table of a run that is not a correlate run: its headline numbers, not its tables —
    groups with a profile, recall@k at the largest k, bias score per language (or its difference between
    two models), the paired differences over all rows, median and best-pair retrieval."""
    return [line for name, line_of in OTHER_LINES.items() if name in run.tables for line in line_of(run)]


def summary_section(runs: list[Run]) -> list[str]:
    """``## Summary``: per correlate run, comparison and language what moved and what is significant;
    then one line per other run."""
    lines = ["## Summary", ""]
    for run in runs:
        if {"correlations.csv", "shifts.csv"} & set(run.tables):
            lines += correlate_summary(run)
    others = [line for run in runs for line in other_summary(run)]
    if others:
        lines += ["### Other runs", "", *others, ""]
    return lines


def report_sections(run: Run, figures: list[Figure], base: Path = Path(".")) -> list[str]:
    """The run's section of report.md, its details: short tables (the full ones are the linked CSV files),
    then the figures drawn from it (matched by run label, never by name), each once: embedded, or listed
    as links when the figure has a ``link`` text (the many per-category or per-language ones)."""
    where = _relative(run.path, base)
    lines = [f"## {run.label}", "", f"Folder: [`{where}`]({where}); tables: "
             + ", ".join(f"[`{name}`]({where}/{name}) ({len(table)} rows)" for name, table in run.tables.items()) + ".",
             ""]
    placed: set[str] = set()

    def embed(kind):
        links = []
        for figure in figures:
            if figure.run == run.label and figure.kind == kind and figure.name not in placed:
                placed.add(figure.name)
                path = f"figures/{safe_name(figure.name)}.png"
                if figure.link:
                    links.append(f"[{figure.link}]({path})")
                else:
                    lines.extend([f"![{figure.name}]({path}) {figure.caption}", ""])
        if links:
            lines.extend([f"{LINKED_FIGURES.get(kind, 'More figures')}: " + " · ".join(links) + ".", ""])

    if "profiles.csv" in run.tables:
        embed("emotions")
    if "correlations.csv" in run.tables:
        table = run.tables["correlations.csv"]
        alpha = alpha_of(run)
        floors = monte_carlo_floors(table, _permutations(run))
        lines += ["### Correlations", ""]
        pairs = list(dict.fromkeys(zip(table["reference"].astype(str), table["other"].astype(str))))
        lines += ["Compared: " + "; ".join(f"`{o}` against `{r}`" for r, o in pairs) + ". rho: Spearman's rho "
                  "(the mean over groups for spearman and rsa); 95% CI: percentile bootstrap over groups; null band: "
                  "the 2.5–97.5 percentiles of the permutation null; p: one-sided permutation p; adjusted p: "
                  f"{family_phrase(table)}. Shown: the pooled rows (all groups) and the rows significant after "
                  "adjustment; every row is in `correlations.csv`.", ""]
        pooled = ((table["category"] == ALL) & (table["method"] != "emotion")).to_numpy()
        if pooled.any():
            lines += ["All groups of each language (the pooled rows):", "",
                      markdown_table(correlation_table(table[pooled], ["comparison", "language", "method"],
                                                       floors[pooled], alpha)), ""]
        chosen = ~pooled & significant_rows(table, alpha)
        if chosen.any():
            lines += [f"The {int(chosen.sum())} other rows significant after adjustment (of {int((~pooled).sum())}), "
                      f"rho [95% CI]:", ""]
            for (comparison, language), rows in table[chosen].groupby(["comparison", "language"], sort=False):
                parts = []
                for method in dict.fromkeys(table["method"]):
                    block = rows[rows["method"] == method]
                    cells = [f"{(f'{c}/{e}' if c != ALL else e) if method == 'emotion' else c} "
                             f"{_cell(r['rho'], r['ci_low'], r['ci_high'])}"
                             for (_, r), c, e in zip(block.iterrows(), block["category"], block["emotion"])]
                    if cells:
                        more = len(cells) - MOST_LISTED
                        parts.append(f"`{method}` " + ", ".join(cells[:MOST_LISTED])
                                     + (f" and {more} more (`correlations.csv`)" if more > 0 else ""))
                lines.append(f"- {comparison}, {language}: " + "; ".join(parts) + ".")
            lines.append("")
        lines += floor_note(table[pooled], floors[pooled])
        embed("correlations")
    if "shifts.csv" in run.tables:
        table = run.tables["shifts.csv"]
        alpha = alpha_of(run)
        pooled = table[table["category"] == ALL]
        cells = [f"{v:+.3f}{'*' if m else ''}"
                 for v, m in zip(pooled["shift"].astype(float), significant_rows(pooled, alpha))]
        wide = pooled.assign(cell=cells).pivot_table(index=["comparison", "language"], columns="emotion", values="cell",
                                                     aggfunc="first", sort=False)
        lines += ["### Shifts", "",
                  f"Mean shift per emotion (other − reference), all groups; *: moved, its shift has "
                  f"{significance_rule(pooled, alpha)}; the intervals and the per-category shifts are in `shifts.csv`.",
                  "", markdown_table(wide[[e for e in dict.fromkeys(pooled["emotion"]) if e in wide.columns]]
                                     .reset_index()), ""]
        embed("shifts")
    if "fairness.csv" in run.tables:
        table = run.tables["fairness.csv"]
        overall = table[table["scope"] == "language"].copy()
        overall["95% CI"] = _interval(overall)
        metrics = [m for m in dict.fromkeys(overall["metric"]) if m in ("roc_auc", "bias_score")] or list(
            dict.fromkeys(overall["metric"]))
        wide = overall.assign(cell=overall.apply(lambda r: f"{_format(r['value'])} {r['95% CI']}", axis=1)).pivot(
            index="metric", columns="language", values="cell").reindex(metrics)
        lines += ["### Toxicity fairness", "",
                  f"Per language, {', '.join(metrics)} with BCa intervals; the other metrics and every group are in "
                  f"`fairness.csv`.", "", markdown_table(wide.reset_index()), ""]
        if "gaps.csv" in run.tables:
            gaps = run.tables["gaps.csv"]
            gaps = gaps[(gaps["scope"] == "language") & gaps["metric"].isin(metrics)]
            spread = gaps.groupby("metric", sort=False)["max_minus_min"].first()
            if len(spread):
                lines += ["Spread across languages (max − min): " + ", ".join(f"{m} {_format(float(v))}" for m, v in
                                                                              spread.items())
                          + f"; the differences from {gaps['reference_language'].iloc[0]} are in `gaps.csv`.", ""]
        undefined = table[table["value"].isna()]
        if len(undefined):
            lines += [f"{len(undefined)} value(s) are undefined (one class only); see the `note` column; the "
                      f"forest plots write 'undefined' there.", ""]
        embed("fairness")
    if "fairness_comparison.csv" in run.tables:
        table = run.tables["fairness_comparison.csv"]
        a, b = str(table["model_a"].iloc[0]), str(table["model_b"].iloc[0])
        overall = table[(table["scope"] == "language") & (table["metric"] == "roc_auc")].copy()
        overall["cell_a"] = [_format(v) for v in overall["value_a"]]
        overall["cell_b"] = [_format(v) for v in overall["value_b"]]
        overall["cell_d"] = [f"{_format(d)} {ci}" for d, ci in
                             zip(overall["difference"], _interval(overall, "difference_ci_low", "difference_ci_high"))]
        side = overall[["language", "metric", "cell_a", "cell_b", "cell_d"]].rename(
            columns={"cell_a": a, "cell_b": b, "cell_d": f"{b} − {a} (95% CI)"})
        lines += ["### Toxicity fairness side by side", "",
                  f"Per language, `{a}` and `{b}` on the same identity-set rows; the difference `{b} − {a}` with its "
                  f"paired bootstrap interval (the same resampled rows for both models, BCa): roc_auc (bias_score: "
                  f"in the summary); the other metrics and the per-group rows are in `fairness_comparison.csv`.", "",
                  markdown_table(side), ""]
        embed("fairness_comparison")
    if "recall.csv" in run.tables:
        table = run.tables["recall.csv"].copy()
        notes = {str(i.get("run")): ", ".join([*(["random weights"] if i.get("random_weights") else []),
                                               *([f"{i['completions']} mode"] if i.get("completions") else [])])
                 for i in run.manifest.get("inputs", [])}
        table["run"] = [f"{name} ({notes[name]})" if notes.get(name) else name for name in table["run"].astype(str)]
        table["95% CI"] = _interval(table)
        table["cell"] = table.apply(lambda r: f"{_format(r['recall'])} {r['95% CI']}", axis=1)
        overall = table[table["category"] == ALL]
        wide = overall.pivot_table(index=["run", "language", "level"], columns="k", values="cell", aggfunc="first",
                                   sort=False).reset_index()
        wide.columns = [f"recall@{c}" if isinstance(c, (int, np.integer)) else c for c in wide.columns]
        lines += ["### Recall of human-collected stereotypes", "",
                  "Recall@k of the Choenni et al. (2021) autocomplete stereotypes (or the stereotype file given to "
                  "analysis.recall) in each run's top-k, all categories, with Korn-Graubard 95% intervals over groups "
                  "(runs with random weights recall nothing by design; a token-mode run cannot recall a word of "
                  "several tokens):", "", markdown_table(wide), ""]
        largest = table["k"].max()
        by_category = table[(table["k"] == largest) & (table["category"] != ALL)].pivot_table(
            index=["run", "language", "level"], columns="category", values="cell", aggfunc="first").reset_index()
        if not by_category.empty:
            lines += [f"Per category, at k = {largest}:", "", markdown_table(by_category), ""]
        embed("recall")
    if "comparison.csv" in run.tables:
        lines += comparison_lines(run)
        embed("comparison")
    if "alignment.csv" in run.tables:
        lines += alignment_section(run)
        embed("alignment")
    return lines


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m analysis.figures",
        description="Draw the paper figures (PNG and PDF) and report.md from the tables saved in run folders "
                    "(profiles.csv, correlations.csv, shifts.csv, fairness.csv).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("runs", nargs="+", metavar="RUN_DIR", help="folders written by probing.run, analysis.correlate or analysis.fairness")
    add("--formats", nargs="+", choices=FORMATS, default=list(FORMATS), help="default: png pdf")
    add("--forest_groups", type=int, default=15, help="groups per language in the fairness forest plot (default: 15)")
    add("--heatmap_groups", type=int, default=MAX_GROUPS,
        help=f"most groups in one emotion heatmap; longer categories are split (default: {MAX_GROUPS})")
    add("--output_dir", default=None, help="default: results/analysis/<run_name>")
    add("--run_name", default=None, help="default: figures_<run folder names>")
    add_overwrite_option(parser)
    return parser


def _has_rows(path: Path) -> bool:
    try:
        return len(pd.read_csv(path, nrows=1)) > 0
    except pd.errors.EmptyDataError:
        return False
    except (pd.errors.ParserError, UnicodeDecodeError):
        return True  # read_csv below reports it as a user error


def check_table(table: pd.DataFrame, name: str, path: Path, columns=()) -> None:
    """Refuse a table the figures (or the explorer) cannot read: the columns of :data:`REQUIRED_COLUMNS`
    and ``columns`` missing, or, for profiles.csv, values outside [0, 1] (:func:`check_profiles`)."""
    hint = f"pass the {name} that python -m {WRITERS[name]} wrote"
    if name == "profiles.csv":
        check_profiles(table, path, [*PROFILE_KEYS, *columns])
    else:
        require_columns(table, [*REQUIRED_COLUMNS[name], *columns], path, hint)


def load_run(path: Path, label: str, names=TABLES, extra_columns: dict[str, list[str]] | None = None) -> Run:
    """The run folder ``path``: its tables among ``names`` that have rows, each checked (:func:`check_table`,
    with ``extra_columns[name]`` required besides :data:`REQUIRED_COLUMNS`)."""
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; pass run folders (written by probing.run, analysis.correlate "
                        f"or analysis.fairness)")
    run = Run(label, path)
    for name in names:
        if (path / name).is_file() and _has_rows(path / name):  # an empty table draws nothing
            table = (read_csv(path / name, keep_default_na=False, na_values=[""])
                     if name != "excluded.csv" else read_csv(path / name, keep_default_na=False))
            check_table(table, name, path / name, (extra_columns or {}).get(name, ()))
            run.tables[name] = table
    drawable = {"profiles.csv", "correlations.csv", "shifts.csv", "fairness.csv", "recall.csv", "comparison.csv",
                "alignment.csv", "fairness_comparison.csv"}
    if not drawable & set(run.tables):
        raise UserError(f"{path} has none of {', '.join(sorted(drawable))}; pass a run folder that holds one")
    if (path / "manifest.json").is_file():
        try:
            run.manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            run.manifest = {}
    for name, table in run.tables.items():
        for column in ("note", "emotion", "group_id", "category", "reason", "compared_with"):
            if column in table.columns:
                table[column] = table[column].astype(object).fillna("").astype(str)
    return run


def render(figure: plt.Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=METADATA[fmt])
    return buffer.getvalue()


def draw(runs: list[Run], *, forest_groups: int, heatmap_groups: int = MAX_GROUPS) -> Iterator[Figure]:
    """Every figure of every run, one at a time (each is rendered and closed before the next)."""
    for run in runs:
        if "profiles.csv" in run.tables:
            yield from profile_figures(run, heatmap_groups)
        if "correlations.csv" in run.tables:
            yield from correlation_figures(run)
        if "shifts.csv" in run.tables:
            yield from shift_figures(run)
        if "fairness.csv" in run.tables:
            yield from fairness_figures(run, forest_groups)
        if "recall.csv" in run.tables:
            yield from recall_figures(run)
        if "comparison.csv" in run.tables:
            yield from comparison_figures(run)
        if "alignment.csv" in run.tables:
            yield from alignment_figures(run)
        if "fairness_comparison.csv" in run.tables:
            yield from fairness_comparison_figures(run, forest_groups)


def run_labels(paths: list[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    return [name if names.count(name) == 1 else f"{name}-{i + 1}" for i, name in enumerate(names)]


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.forest_groups < 1:
        raise UserError(f"--forest_groups must be at least 1, got {args.forest_groups}")
    if args.heatmap_groups < 1:
        raise UserError(f"--heatmap_groups must be at least 1, got {args.heatmap_groups}")
    paths = [Path(p) for p in args.runs]
    labels = run_labels(paths)
    target = output_folder(args, "analysis.figures", ("figures_" + "_".join(labels))[:100])
    runs = [load_run(path, label) for path, label in zip(paths, labels)]
    files: dict[str, bytes] = {}
    figures = []
    with matplotlib.rc_context(STYLE):
        for figure in draw(runs, forest_groups=args.forest_groups, heatmap_groups=args.heatmap_groups):
            for fmt in args.formats:
                files[f"figures/{safe_name(figure.name)}.{fmt}"] = render(figure.figure, fmt)
            plt.close(figure.figure)
            figures.append(Figure(figure.name, figure.caption, None, figure.run, figure.kind, figure.link))
    if len({figure.name for figure in figures}) != len(figures):  # two runs' figures would share a file
        raise UserError("two figures have the same name; give the runs distinct folder names")
    methods, methods_read = methods_section(runs, target)
    report = ["# stereoprobe report", "",
              "Drawn from the saved tables of the run folders below by `python -m analysis.figures` (checksums in "
              "`manifest.json`): a summary, the methods, then the details of each run with links to its full "
              "tables. Paths are relative to this file.", "",
              *summary_section(runs), *methods]
    for run in runs:
        report += report_sections(run, figures, target)
    if "png" not in args.formats:
        report = [line.replace(".png)", f".{args.formats[0]})") for line in report]
    files["report.md"] = ("\n".join(report).rstrip() + "\n").encode("utf-8")
    manifest = {
        "command": command_line("analysis.figures", argv),
        "parameters": vars(args),
        "seed": None,
        "inputs": [input_record(run.path / name, len(table), run=run.label)
                   for run in runs for name, table in run.tables.items()],
        "methods_manifests": methods_read,  # probing manifests a correlate run points to, read for ## Methods
        "style": {k: v for k, v in STYLE.items()},
        "matplotlib": matplotlib.__version__,
        "figures": [figure.name for figure in figures],
    }
    save_run(target, {}, manifest, files=files, overwrite=args.overwrite)
    print(f"wrote {len(figures)} figure(s) ({', '.join(args.formats)}) and report.md to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
