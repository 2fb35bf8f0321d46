"""Paper figures and a report, drawn only from the tables saved in run folders.

    python -m analysis.figures RUN_DIR... [--output_dir DIR]

Each RUN_DIR is read for the tables it holds, and each table gives its figures:

* ``profiles.csv`` (``python -m probing.run``): emotion heatmaps, groups by emotions, one figure
  per category with one panel per language (rows aligned by ``group_id``);
* ``correlations.csv`` (``python -m analysis.correlate``): heatmaps of rho per category and
  language for ``spearman`` and ``rsa`` (``*``: Benjamini-Hochberg adjusted p < 0.05), and per
  emotion for ``emotion``;
* ``shifts.csv`` (``analysis.correlate``): per-emotion shift bars with their intervals;
* ``fairness.csv`` (``python -m analysis.fairness``): forest plots of the per-language metrics and of
  the groups with the lowest bias AUCs.

Writes ``figures/<name>.png`` and ``.pdf``, ``report.md`` (the figures and tables) and
``manifest.json`` (each table read, with its sha256). The style is fixed (Agg backend, fixed
rcParams, sizes and dpi, no timestamps in the files), so the same tables give the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis._common import command_line, input_record, output_folder, read_csv, safe_name, save_run  # noqa: E402
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error  # noqa: E402
from probing.manifest import check_writable  # noqa: E402
from probing.predictions import PROFILE_META_COLUMNS  # noqa: E402

TABLES = ("profiles.csv", "correlations.csv", "shifts.csv", "fairness.csv", "gaps.csv", "excluded.csv")
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


# ---------------------------------------------------------------------------------------------
# Drawing (pure: table in, matplotlib figure out)
# ---------------------------------------------------------------------------------------------

def _colormap(name: str):
    return plt.get_cmap(name).with_extremes(bad="#d9d9d9")


def emotion_heatmap(profiles: pd.DataFrame, category: str, emotions: list[str], title: str) -> plt.Figure:
    """Groups (rows, aligned by group_id) by emotions, one panel per language; grey = no profile."""
    block = profiles[profiles["category"] == category]
    languages = sorted(block["language"].unique())
    group_ids = list(dict.fromkeys(block["group_id"]))
    width = 1.4 + len(languages) * (0.17 * len(emotions) + 0.25) + 0.6
    height = 1.3 + 0.16 * len(group_ids)
    fig, axes = plt.subplots(1, len(languages), figsize=(width, height), sharey=True, squeeze=False,
                             layout="constrained")
    cmap = _colormap("viridis")
    image = None
    for ax, language in zip(axes[0], languages):
        values = block[block["language"] == language].set_index("group_id").reindex(group_ids)[emotions]
        image = ax.imshow(values.to_numpy(dtype=float), vmin=0, vmax=1, cmap=cmap, aspect="auto")
        ax.set_title(language)
        ax.set_xticks(range(len(emotions)), emotions, rotation=90)
        ax.set_yticks(range(len(group_ids)), group_ids)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(title, fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.03, pad=0.02, label="share of covered words")
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


def correlation_heatmap(block: pd.DataFrame, rows: list[str], row_column: str, title: str) -> plt.Figure:
    """rho by ``row_column`` (categories or emotions) and comparison column; ``*`` when BH p < 0.05."""
    columns, labels = _column_labels(block)
    grid = np.full((len(rows), len(columns)), np.nan)
    significant = np.zeros_like(grid, dtype=bool)
    index = {key: j for j, key in enumerate(columns)}
    for _, row in block.iterrows():
        if row[row_column] in rows:
            i, j = rows.index(row[row_column]), index[(row["other"], row["language"])]
            grid[i, j] = row["rho"]
            significant[i, j] = bool(row["p_adjusted"] < 0.05)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * len(columns) + 0.8, 1.0 + 0.26 * len(rows)), layout="constrained")
    image = ax.imshow(grid, vmin=-1, vmax=1, cmap=_colormap("RdBu_r"), aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}" + ("*" if significant[i, j] else ""), ha="center", va="center",
                        fontsize=5.5, color="white" if abs(grid[i, j]) > 0.6 else "black")
    ax.set_xticks(range(len(columns)), labels, rotation=90 if max(map(len, labels)) > 4 else 0)
    ax.set_yticks(range(len(rows)), rows)
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


def forest(block: pd.DataFrame, row_labels: list[str], key_column: str, metrics: tuple[str, ...], title: str,
           xlim: dict[str, tuple[float, float]] | None = None) -> plt.Figure:
    """One panel per metric; a point and its interval per row."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.4 + 1.7 * len(metrics), 0.9 + 0.2 * len(row_labels)),
                             sharey=True, squeeze=False, layout="constrained")
    y = np.arange(len(row_labels))[::-1]
    for ax, metric in zip(axes[0], metrics):
        values = block[block["metric"] == metric].set_index(key_column).reindex(row_labels)
        value = values["value"].to_numpy(dtype=float)
        low, high = values["ci_low"].to_numpy(dtype=float), values["ci_high"].to_numpy(dtype=float)
        ax.hlines(y, low, high, color="black", linewidth=0.8)
        ax.plot(value, y, "o", color=PALETTE[0], markersize=3)
        ax.set_title(metric)
        if xlim and metric in xlim:
            ax.set_xlim(*xlim[metric])
        ax.grid(axis="x", linewidth=0.3, color="#cccccc")
    axes[0][0].set_yticks(y, row_labels)
    fig.suptitle(title, fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------
# Figures of each table
# ---------------------------------------------------------------------------------------------

def profile_figures(run: Run) -> Iterator[Figure]:
    profiles = run.tables["profiles.csv"]
    emotions = [c for c in profiles.columns if c not in PROFILE_META_COLUMNS]
    for category in sorted(profiles["category"].unique()):
        title = f"{run.label}: emotion profiles, {category}"
        yield Figure(f"emotions_{run.label}_{category}",
                     f"Emotion profiles of the {category} groups ({run.label}); grey: no covered word.",
                     emotion_heatmap(profiles, category, emotions, title))


def correlation_figures(run: Run) -> Iterator[Figure]:
    table = run.tables["correlations.csv"]
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
            title = f"{method}: rho against {reference}"
            yield Figure(
                f"correlations_{run.label}_{method}_{reference}",
                f"{method}: Spearman's rho against {reference}, by {row_column} and comparison ({run.label}); "
                f"an asterisk marks a Benjamini-Hochberg adjusted p < 0.05; grey: undefined (fewer than "
                f"3 groups, or constant values).",
                correlation_heatmap(block, rows, row_column, title))


def shift_figures(run: Run) -> Iterator[Figure]:
    table = run.tables["shifts.csv"]
    for comparison in dict.fromkeys(table["comparison"]):
        block = table[(table["comparison"] == comparison) & (table["category"] == ALL)]
        if block.empty:
            continue
        emotions = list(dict.fromkeys(block["emotion"]))
        yield Figure(f"shifts_{run.label}_{comparison}",
                     f"Mean per-emotion shift, {comparison}, all groups, with bootstrap intervals.",
                     shift_bars(block, emotions, f"shift: {comparison}"))


def fairness_figures(run: Run, n_groups: int) -> Iterator[Figure]:
    table = run.tables["fairness.csv"]
    languages = sorted(table["language"].unique())
    overall = table[table["scope"] == "language"]
    yield Figure(f"fairness_languages_{run.label}", f"Per-language metrics with bootstrap intervals ({run.label}).",
                 forest(overall, languages, "language", LANGUAGE_METRICS, f"{run.label}: per language"))
    groups = table[(table["scope"] == "group") & table["metric"].isin(GROUP_METRICS)]
    for language in languages:
        block = groups[groups["language"] == language]
        if block.empty:
            continue
        worst = (block.groupby("group_id", sort=False)["value"].min().sort_values(kind="stable")
                 .head(n_groups).index.tolist())
        yield Figure(
            f"fairness_groups_{run.label}_{language}",
            f"The {len(worst)} groups with the lowest bias AUC in {language} ({run.label}).",
            forest(block[block["group_id"].isin(worst)], worst, "group_id", GROUP_METRICS,
                   f"{run.label}, {language}: lowest bias AUCs", xlim={m: (0, 1.02) for m in GROUP_METRICS}))


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


def _interval(table: pd.DataFrame) -> pd.Series:
    return table.apply(lambda r: "n/a" if np.isnan(r["ci_low"]) else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", axis=1)


def report_sections(run: Run, figures: list[Figure]) -> list[str]:
    lines = [f"## {run.label}", "", f"Folder: `{run.path}`", ""]

    def embed(prefix):
        for figure in figures:
            if figure.name.startswith(prefix):
                lines.extend([f"![{figure.name}](figures/{safe_name(figure.name)}.png)", "", figure.caption, ""])

    if "profiles.csv" in run.tables:
        profiles = run.tables["profiles.csv"]
        emotions = [c for c in profiles.columns if c not in PROFILE_META_COLUMNS]
        coverage = (profiles.assign(defined=profiles[emotions].notna().all(axis=1))
                    .groupby("language").agg(groups=("group_id", "size"), with_profile=("defined", "sum")).reset_index())
        lines += ["### Emotion profiles", "", markdown_table(coverage), ""]
        embed(f"emotions_{run.label}_")
    if "correlations.csv" in run.tables:
        table = run.tables["correlations.csv"]
        parameters = run.manifest.get("parameters", {})
        lines += ["### Correlations", ""]
        if parameters:
            lines += [f"Permutations: {run.manifest.get('permutations')}, bootstrap: {run.manifest.get('bootstrap')}, "
                      f"seed: {run.manifest.get('seed')}, RSA diagonal: {parameters.get('rsa_diagonal')}; p-values "
                      f"are one-sided permutation p-values, Benjamini-Hochberg adjusted over the run.", ""]
        summary = table[(table["category"] == ALL) & (table["method"] != "emotion")].copy()
        if not summary.empty:
            summary["95% CI"] = _interval(summary)
            lines += [markdown_table(summary[["comparison", "language", "method", "rho", "95% CI", "p", "p_adjusted",
                                              "n_groups"]]), ""]
        embed(f"correlations_{run.label}_")
        embed(f"shifts_{run.label}_")
    if "excluded.csv" in run.tables and not run.tables["excluded.csv"].empty:
        counts = run.tables["excluded.csv"].groupby(["comparison", "reason"]).size().reset_index(name="groups")
        lines += ["Left out of the comparisons (see `excluded.csv`):", "", markdown_table(counts), ""]
    if "fairness.csv" in run.tables:
        table = run.tables["fairness.csv"]
        overall = table[table["scope"] == "language"].copy()
        overall["95% CI"] = _interval(overall)
        wide = overall.assign(cell=overall.apply(lambda r: f"{_format(r['value'])} {r['95% CI']}", axis=1)).pivot(
            index="metric", columns="language", values="cell").reindex(list(dict.fromkeys(overall["metric"])))
        lines += ["### Toxicity fairness", "", markdown_table(wide.reset_index()), ""]
        if "gaps.csv" in run.tables:
            gaps = run.tables["gaps.csv"]
            gaps = gaps[gaps["scope"] == "language"]
            reference = gaps["reference_language"].iloc[0] if len(gaps) else ""
            wide = gaps.pivot_table(index="metric", columns="language", values="difference_from_reference",
                                    dropna=False, sort=False)
            spread = gaps.groupby("metric", sort=False)["max_minus_min"].first()
            wide = wide.assign(max_minus_min=spread).reset_index()
            lines += [f"Differences from {reference} (value − {reference}) and the spread across languages:", "",
                      markdown_table(wide), ""]
        undefined = table[table["value"].isna()]
        if len(undefined):
            lines += [f"{len(undefined)} value(s) are undefined (one class only); see the `note` column.", ""]
        embed(f"fairness_languages_{run.label}")
        embed(f"fairness_groups_{run.label}_")
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
    add("--output_dir", default=None, help="default: results/analysis/<run_name>")
    add("--run_name", default=None, help="default: figures_<run folder names>")
    return parser


def _has_rows(path: Path) -> bool:
    try:
        return len(pd.read_csv(path, nrows=1)) > 0
    except pd.errors.EmptyDataError:
        return False
    except (pd.errors.ParserError, UnicodeDecodeError):
        return True  # read_csv below reports it as a user error


def load_run(path: Path, label: str) -> Run:
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; pass run folders (written by probing.run, analysis.correlate "
                        f"or analysis.fairness)")
    run = Run(label, path)
    for name in TABLES:
        if (path / name).is_file() and _has_rows(path / name):  # an empty table draws nothing
            run.tables[name] = (read_csv(path / name, keep_default_na=False, na_values=[""])
                                if name != "excluded.csv" else pd.read_csv(path / name, keep_default_na=False))
    drawable = {"profiles.csv", "correlations.csv", "shifts.csv", "fairness.csv"}
    if not drawable & set(run.tables):
        raise UserError(f"{path} has none of {', '.join(sorted(drawable))}; pass a run folder that holds one")
    if (path / "manifest.json").is_file():
        try:
            run.manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            run.manifest = {}
    for name, table in run.tables.items():
        for column in ("note", "emotion", "group_id", "category", "reason"):
            if column in table.columns:
                table[column] = table[column].astype(object).fillna("").astype(str)
    return run


def render(figure: plt.Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=METADATA[fmt])
    return buffer.getvalue()


def draw(runs: list[Run], *, forest_groups: int) -> Iterator[Figure]:
    """Every figure of every run, one at a time (each is rendered and closed before the next)."""
    for run in runs:
        if "profiles.csv" in run.tables:
            yield from profile_figures(run)
        if "correlations.csv" in run.tables:
            yield from correlation_figures(run)
        if "shifts.csv" in run.tables:
            yield from shift_figures(run)
        if "fairness.csv" in run.tables:
            yield from fairness_figures(run, forest_groups)


def run_labels(paths: list[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    return [name if names.count(name) == 1 else f"{name}-{i + 1}" for i, name in enumerate(names)]


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.forest_groups < 1:
        raise UserError(f"--forest_groups must be at least 1, got {args.forest_groups}")
    paths = [Path(p) for p in args.runs]
    labels = run_labels(paths)
    target = output_folder(args.output_dir, args.run_name or ("figures_" + "_".join(labels))[:100])
    check_writable(target)
    runs = [load_run(path, label) for path, label in zip(paths, labels)]
    files: dict[str, bytes] = {}
    figures = []
    with matplotlib.rc_context(STYLE):
        for figure in draw(runs, forest_groups=args.forest_groups):
            for fmt in args.formats:
                files[f"figures/{safe_name(figure.name)}.{fmt}"] = render(figure.figure, fmt)
            plt.close(figure.figure)
            figures.append(Figure(figure.name, figure.caption, None))
    report = ["# stereoprobe report", "",
              "Figures and tables drawn from these saved tables by `python -m analysis.figures` "
              "(checksums in `manifest.json`).", ""]
    for run in runs:
        report += report_sections(run, figures)
    if "png" not in args.formats:
        report = [line.replace(".png)", f".{args.formats[0]})") for line in report]
    files["report.md"] = ("\n".join(report).rstrip() + "\n").encode("utf-8")
    manifest = {
        "command": command_line("analysis.figures", argv),
        "parameters": vars(args),
        "seed": None,
        "inputs": [input_record(run.path / name, len(table), run=run.label)
                   for run in runs for name, table in run.tables.items()],
        "style": {k: v for k, v in STYLE.items()},
        "matplotlib": matplotlib.__version__,
        "figures": [figure.name for figure in figures],
    }
    save_run(target, {}, manifest, files=files)
    print(f"wrote {len(figures)} figure(s) ({', '.join(args.formats)}) and report.md to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
