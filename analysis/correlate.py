"""Correlate emotion profiles: base against fine-tuned models, or one language against another.

    python -m analysis.correlate BASE OTHER... [--method spearman rsa emotion] [--output_dir DIR]

Each input is a ``profiles.csv`` (or a run folder holding one). Groups are aligned by
``(language, group_id)``; a group present in one input only, or with an undefined (empty) profile,
is left out and listed in ``excluded.csv``. The statistics are :mod:`analysis.correlations`.

Writes ``results/analysis/<name>/`` (atomically):

* ``correlations.csv``: one row per test: ``comparison, language, category, method, emotion,
  rho, p, p_adjusted, bh_family, significant, n_permutations, p_floor, cannot_reject, null_mean,
  null_low, null_high, ci_low, ci_high, n_groups, reference, other, note``;
* ``per_group.csv``: the per-group rhos behind ``spearman`` and ``rsa``;
* ``shifts.csv``: per emotion, the mean over groups of ``other - reference`` with its interval, its
  sign-flip p-value (:func:`analysis.correlations.sign_flip_test`), the p-value adjusted by
  Benjamini-Hochberg within each comparison and language (over its categories and emotions) and
  ``significant`` (adjusted p <= ``--alpha``);
* ``excluded.csv``: every group (or language) left out, and why;
* ``manifest.json``: inputs with sha256, parameters, seed, permutations, environment.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import correlations as stats
from analysis._common import (check_profiles, command_line, completion_mode, find_table, input_record, output_folder,
                              read_csv, save_run)
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import add_overwrite_option, sha256_file

KEY_COLUMNS = ["language", "category", "group_id"]
ALL_CATEGORIES = "all"
MODES = ("models", "languages")
MIN_GROUPS = 3
CORRELATION_COLUMNS = ["comparison", "language", "category", "method", "emotion", "rho", "p", "p_adjusted",
                       "bh_family", "significant", "n_permutations", "p_floor", "cannot_reject", "null_mean",
                       "null_low", "null_high", "ci_low", "ci_high", "n_groups", "reference", "other", "note"]
# The columns that name a Benjamini-Hochberg family: every test sharing their values is adjusted together.
BH_FAMILIES = {"run": (), "comparison": ("comparison",), "comparison_method": ("comparison", "method"),
               "comparison_language_method": ("comparison", "language", "method")}
DEFAULT_BH_FAMILY = "comparison_method"
MAX_PERMUTATIONS = 1_000_000  # per test; beyond, a run of 960 tests would take hours
MIN_AUTO_PERMUTATIONS = 999  # the default maximum never goes below this (p resolved to 0.001)
DEFAULT_EXCEEDANCES = 20  # h of the sequential rule: p of a test that stops is known to about 1/sqrt(h) = 22%
MAX_EXCEEDANCES = 1000
PER_GROUP_COLUMNS = ["comparison", "language", "category", "method", "group_id", "group", "rho"]
SHIFT_COLUMNS = ["comparison", "language", "category", "emotion", "reference_mean", "other_mean", "shift",
                 "ci_low", "ci_high", "p", "p_adjusted", "significant", "n_groups", "reference", "other"]
EXCLUDED_COLUMNS = ["comparison", "language", "category", "group_id", "group", "reason"]

EXAMPLES = """examples:
  # base model against a fine-tuned one, every language both runs have
  python -m analysis.correlate results/profiles/xlm-roberta-base results/profiles/french
  # one method, the published RSA setting (diagonal included), at most 5000 permutations per test
  python -m analysis.correlate base/profiles.csv ft/profiles.csv --method rsa --rsa_diagonal include --permutations 5000
  # fixed 1000 permutations per test (no early stop), Benjamini-Hochberg over the whole run at q = 0.1
  python -m analysis.correlate base ft --permutations 1000 --exceedances 0 --bh_family run --alpha 0.1
  # cross-language: each language of one run against English
  python -m analysis.correlate results/profiles/xlm-roberta-base --mode languages --reference_language en
"""


@dataclass
class Profiles:
    label: str
    path: Path
    table: pd.DataFrame
    emotions: list[str]


@dataclass
class Comparison:
    name: str
    reference: str
    other: str
    language: str
    table: pd.DataFrame  # aligned groups: KEY_COLUMNS, group, ref_<emotion>, oth_<emotion>
    categories: list[str]  # every category of either side, aligned groups or not


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m analysis.correlate",
        description="Correlate emotion profiles (reference = the first input) with permutation p-values, "
                    "Benjamini-Hochberg correction and bootstrap intervals.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("inputs", nargs="+", metavar="PROFILES", help="profiles.csv files or run folders; the first is the reference")
    add("--mode", choices=MODES, default="models",
        help="models: each later input against the first, language by language; languages: within each "
             "input, every language against --reference_language (default: models)")
    add("--reference_language", default="en", help="the reference language of --mode languages (default: en)")
    add("--languages", nargs="+", default=None, metavar="LANG", help="only these languages (default: all in common)")
    add("--method", nargs="+", choices=stats.METHODS, default=list(stats.METHODS), dest="methods",
        help="spearman (per group, across emotions), rsa (similarity matrices), emotion (per emotion, across "
             "groups); default: all three")
    add("--rsa_diagonal", choices=stats.DIAGONAL_OPTIONS, default="exclude",
        help="rank a group's similarity to itself in RSA rows (Choenni et al. 2021 did: include); default: exclude")
    add("--permutations", type=int, default=None,
        help="the most random permutations per test (fewer where --exceedances stops it; all of them, exact, where a "
             "category allows no more); 0 skips p-values (default: per BH family of m tests, max(999, ceil(2m/alpha) - "
             "1), so that a test without exceedance is significant on its own)")
    add("--exceedances", type=int, default=None,
        help=f"stop a test at its h-th permutation statistic >= the observed one, p = h/draws (Besag and Clifford "
             f"1991); 0 always draws --permutations (default: {DEFAULT_EXCEEDANCES}, or --permutations if fewer)")
    add("--bh_family", choices=list(BH_FAMILIES), default=DEFAULT_BH_FAMILY,
        help=f"the tests Benjamini-Hochberg adjusts together: the whole run, each comparison, each comparison and "
             f"method, or each comparison, language and method (default: {DEFAULT_BH_FAMILY})")
    add("--alpha", type=float, default=0.05,
        help="level of 'significant' (BH-adjusted p <= alpha) and 'cannot_reject' (p_floor > alpha) (default: 0.05)")
    add("--bootstrap", type=int, default=1000, help="bootstrap resamples of the groups; 0 skips intervals (default: 1000)")
    add("--confidence", type=float, default=0.95, help="confidence level of the intervals (default: 0.95)")
    add("--seed", type=int, default=0, help="seed of permutations and bootstrap (default: 0)")
    add("--labels", nargs="+", default=None, help="names of the inputs in the tables (default: their folder names)")
    add("--output_dir", default=None, help="result folder (default: results/analysis/<run_name>)")
    add("--run_name", default=None, help="default: correlate_<reference>_vs_<other>...")
    add_overwrite_option(parser)
    return parser


def validate_args(args) -> None:
    if args.mode == "models" and len(args.inputs) < 2:
        raise UserError(f"--mode models needs a reference and at least one other profiles file, got {len(args.inputs)} "
                        f"input; add one, or pass --mode languages to compare the languages of one run")
    if args.bootstrap < 0:
        raise UserError("--bootstrap must be 0 or more")
    if args.permutations is not None and not 0 <= args.permutations <= MAX_PERMUTATIONS:
        raise UserError(f"--permutations must be between 0 and {MAX_PERMUTATIONS:,}, got {args.permutations}")
    if args.exceedances is None:  # the default, lowered to a small --permutations
        args.exceedances = min(DEFAULT_EXCEEDANCES, args.permutations or DEFAULT_EXCEEDANCES)
    elif not 0 <= args.exceedances <= MAX_EXCEEDANCES:
        raise UserError(f"--exceedances must be between 0 and {MAX_EXCEEDANCES}, got {args.exceedances}")
    elif args.permutations and args.exceedances > args.permutations:
        raise UserError(f"--exceedances ({args.exceedances}) must not exceed --permutations ({args.permutations}); "
                        f"lower it, or pass 0 for a fixed count")
    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if not 0 < args.confidence < 1:
        raise UserError(f"--confidence must be between 0 and 1, got {args.confidence}")
    if args.labels is not None and len(args.labels) != len(args.inputs):
        raise UserError(f"--labels has {len(args.labels)} names for {len(args.inputs)} inputs; give one per input")


def default_labels(paths: list[str]) -> list[str]:
    """A run folder's name, or the folder of a ``profiles.csv``; duplicates get ``-2``, ``-3``."""
    labels = []
    for raw in paths:
        path = Path(raw).resolve()
        label = path.name if path.is_dir() else (path.parent.name if path.name == "profiles.csv" else path.stem)
        labels.append(label)
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if labels.count(label) == 1 else f"{label}-{seen[label]}")
    return unique


def load_profiles(raw_path: str, label: str) -> Profiles:
    path = find_table(raw_path, "profiles.csv")
    table = read_csv(path, keep_default_na=False, na_values=[""])  # only empty cells are missing
    emotions = check_profiles(table, path, KEY_COLUMNS)  # the emotion columns, values in [0, 1] or empty
    table["group_id"] = table["group_id"].astype(str)
    table["language"] = table["language"].astype(str)
    if "group" not in table.columns:
        table["group"] = table["group_id"]
    duplicated = table[table.duplicated(["language", "group_id"], keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        raise UserError(f"{path} has {len(duplicated)} rows for the same (language, group_id), e.g. "
                        f"({first['language']}, {first['group_id']}); each group may appear once per language")
    return Profiles(label, path, table, emotions)


def _language_rows(profiles: Profiles, language: str) -> pd.DataFrame:
    return profiles.table[profiles.table["language"] == language]


def align(reference: Profiles, ref_language: str, other: Profiles, other_language: str, emotions: list[str],
          *, name: str, ref_label: str, other_label: str) -> tuple[pd.DataFrame, list[dict], list[str]]:
    """Groups of ``reference`` in ``ref_language`` paired by ``group_id`` with those of ``other`` in
    ``other_language``; returns the aligned table, the excluded groups with their reason (each under
    the language and name of the profile the reason is about), and every category of either side."""
    columns = ["language", "category", "group_id", "group", *emotions]
    ref = _language_rows(reference, ref_language)[columns]
    oth = _language_rows(other, other_language)[columns]
    categories = sorted(set(ref["category"]) | set(oth["category"]))

    def excluded_rows(rows: pd.DataFrame, reasons) -> list[dict]:
        return rows.assign(comparison=name, reason=reasons)[EXCLUDED_COLUMNS].to_dict("records")

    excluded = (excluded_rows(ref[~ref["group_id"].isin(oth["group_id"])], f"only in {ref_label}")
                + excluded_rows(oth[~oth["group_id"].isin(ref["group_id"])], f"only in {other_label}"))
    pairs = ref.merge(oth, on="group_id", suffixes=("_ref", "_oth"))  # inner join, in the reference's order
    clash = pairs[pairs["category_ref"] != pairs["category_oth"]]
    if not clash.empty:
        g = clash.iloc[0]
        raise UserError(
            f"group {g['group_id']!r} has category {g['category_ref']!r} in {reference.path} ({ref_language}) but "
            f"{g['category_oth']!r} in {other.path} ({other_language}); group ids must mean the same group"
        )
    def defective(side):  # (undefined, all-zero) per pair, on one side
        values = pairs[[f"{e}_{side}" for e in emotions]]
        return values.isna().any(axis=1).to_numpy(), ~(values.fillna(0) != 0).any(axis=1).to_numpy()

    (ref_nan, ref_zero), (oth_nan, oth_zero) = defective("ref"), defective("oth")
    reason = np.select([ref_nan, ref_zero, oth_nan, oth_zero],
                       [f"undefined profile in {ref_label} (no covered word)", f"all-zero profile in {ref_label}",
                        f"undefined profile in {other_label} (no covered word)", f"all-zero profile in {other_label}"],
                       default="")
    in_reference = ref_nan | ref_zero
    for side, mask in (("ref", in_reference), ("oth", (reason != "") & ~in_reference)):
        rows = pairs[mask].rename(columns={f"{c}_{side}": c for c in ("language", "category", "group")})
        excluded += excluded_rows(rows, reason[mask])
    kept = pairs[reason == ""]
    table = pd.DataFrame({
        "language": other_language, "category": kept["category_ref"], "group_id": kept["group_id"],
        "group": kept["group_oth"] if ref_language != other_language else kept["group_ref"],
        **{f"ref_{e}": kept[f"{e}_ref"].astype(float) for e in emotions},
        **{f"oth_{e}": kept[f"{e}_oth"].astype(float) for e in emotions},
    }).reset_index(drop=True)
    return table, excluded, categories


def build_comparisons(inputs: list[Profiles], emotions: list[str], args) -> tuple[list[Comparison], list[dict]]:
    comparisons, excluded = [], []
    wanted = set(args.languages) if args.languages else None

    def keep(language):
        return wanted is None or language in wanted

    if args.mode == "models":
        reference = inputs[0]
        ref_languages = set(reference.table["language"])
        for other in inputs[1:]:
            name = f"{reference.label} vs {other.label}"
            other_languages = set(other.table["language"])
            for language, holder in [(lang, reference.label) for lang in sorted(ref_languages - other_languages)] + \
                                    [(lang, other.label) for lang in sorted(other_languages - ref_languages)]:
                if keep(language):
                    excluded.append({"comparison": name, "language": language, "category": "", "group_id": "",
                                     "group": "", "reason": f"language only in {holder}"})
            for language in sorted(ref_languages & other_languages):
                if not keep(language):
                    continue
                table, left_out, categories = align(reference, language, other, language, emotions, name=name,
                                                    ref_label=reference.label, other_label=other.label)
                excluded += left_out
                comparisons.append(Comparison(name, reference.label, other.label, language, table, categories))
    else:
        ref_language = args.reference_language
        for item in inputs:
            languages = sorted(set(item.table["language"]))
            if ref_language not in languages:
                raise UserError(f"{item.path} has no profiles in the reference language {ref_language!r}; it has "
                                f"{', '.join(languages)}; pass --reference_language with one of them")
            for language in languages:
                if language == ref_language or not keep(language):
                    continue
                name = f"{item.label}: {ref_language} vs {language}"
                ref_label, other_label = f"{item.label}/{ref_language}", f"{item.label}/{language}"
                table, left_out, categories = align(item, ref_language, item, language, emotions, name=name,
                                                    ref_label=ref_label, other_label=other_label)
                excluded += left_out
                comparisons.append(Comparison(name, ref_label, other_label, language, table, categories))
    if wanted and not comparisons:
        raise UserError(f"none of --languages {' '.join(sorted(wanted))} is in every input to compare")
    if not comparisons:
        raise UserError("the inputs have no language in common; nothing to compare")
    if all(c.table.empty for c in comparisons):
        raise UserError(
            "no group is in both inputs with a defined profile (see the group_id and language columns, and "
            "n_covered: a group without covered words has no profile); nothing to correlate"
        )
    return comparisons, excluded


def _undefined_rows(common: dict, methods, emotions, n: int) -> list[dict]:
    note = (f"only {n} group(s) with a profile in both; need {MIN_GROUPS}" if n else
            "no group with a profile in both (see excluded.csv)")
    return [{**common, "method": method, "emotion": emotion, "n_groups": n, "note": note}
            for method in methods for emotion in (emotions if method == "emotion" else [""])]


def family_key(row: dict, family: str) -> str:
    """The readable name of a test's Benjamini-Hochberg family: its values of the family's columns
    (:data:`BH_FAMILIES`) joined by `` | ``, or ``"run"``.

    >>> family_key({"comparison": "a vs b", "language": "en", "method": "rsa"}, "comparison_method")
    'a vs b | rsa'
    """
    return " | ".join(str(row[column]) for column in BH_FAMILIES[family]) or "run"


def default_permutations(family_size: int, alpha: float) -> int:
    """The default most permutations of a test in a family of ``family_size`` tests:
    ``B = max(999, ceil(2 m / alpha) - 1)``. A test with at most one exceedance in ``B`` draws then has
    ``p <= 2/(B+1) <= alpha/m``, significant after Benjamini-Hochberg even as the family's only
    small p.

    >>> default_permutations(800, 0.05), default_permutations(10, 0.05)
    (31999, 999)
    """
    return max(MIN_AUTO_PERMUTATIONS, math.ceil(2 * family_size / alpha) - 1)


def adjust_within_families(correlations: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """``p_adjusted`` (Benjamini-Hochberg within each ``bh_family``), ``significant``
    (``p_adjusted <= alpha``) and ``cannot_reject`` (``p_floor > alpha``; empty without a test)."""
    adjusted = np.full(len(correlations), np.nan)
    for _, positions in correlations.groupby("bh_family", sort=False).indices.items():
        adjusted[positions] = stats.benjamini_hochberg(correlations["p"].to_numpy(dtype=float)[positions])
    floor = correlations["p_floor"].to_numpy(dtype=float)
    return correlations.assign(
        p_adjusted=adjusted, significant=adjusted <= alpha,
        cannot_reject=pd.array(np.where(np.isnan(floor), None, floor > alpha), dtype="boolean"),
        n_permutations=pd.array(correlations["n_permutations"].to_numpy(dtype=float), dtype="Int64"))


def run_tests(comparisons: list[Comparison], emotions: list[str],
              args) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The tables, and the most permutations of each BH family (empty with ``--permutations 0``)."""
    slots, per_group, shifts, planned = [], [], [], []  # slots: the rows of each category and method, in order
    ref_columns, oth_columns = [f"ref_{e}" for e in emotions], [f"oth_{e}" for e in emotions]
    for comparison in comparisons:
        table = comparison.table
        # Sign flips of the shifts: --permutations, or by default enough for the comparison-language
        # family of shift tests (its categories, 'all' included, times the emotions).
        shift_limit = (args.permutations if args.permutations is not None else
                       default_permutations((len(comparison.categories) + 1) * len(emotions), args.alpha))
        by_category = dict(tuple(table.groupby("category", sort=False)))
        for category in [*comparison.categories, ALL_CATEGORIES]:
            subset = table if category == ALL_CATEGORIES else by_category.get(category, table.iloc[:0])
            base = subset[ref_columns].to_numpy(dtype=float)
            other = subset[oth_columns].to_numpy(dtype=float)
            # Pooled rows resample groups within their category, as their test permutes them there.
            strata = subset["category"].to_numpy() if category == ALL_CATEGORIES else None
            common = {"comparison": comparison.name, "language": comparison.language, "category": category,
                      "reference": comparison.reference, "other": comparison.other}
            n = len(subset)
            if n >= 2:
                streams = stats.data_streams(args.seed, base, other)
                shift = stats.mean_shift(base, other, n_bootstrap=max(args.bootstrap, 1), confidence=args.confidence,
                                         strata=strata, seed=streams["shift"])
                columns = {"ci_low": shift["ci_low"], "ci_high": shift["ci_high"]} if args.bootstrap else {}
                if shift_limit:
                    columns["p"] = stats.sign_flip_test(base, other, n_permutations=shift_limit,
                                                         seed=streams["sign_flip"])["p_value"]
                shifts.append(pd.DataFrame({"emotion": emotions, "reference_mean": shift["base_mean"],
                                            "other_mean": shift["other_mean"], "shift": shift["shift"], **columns,
                                            "n_groups": n}).assign(**common))
            if n < MIN_GROUPS:
                slots.append(_undefined_rows(common, args.methods, emotions, n))
                continue
            for method in args.methods:
                planned.append((len(slots), common, method, subset, base, other, strata))
                slots.append([])
    # The default maximum permutations depend on the size of each family, known before any test runs.
    sizes: dict[str, int] = {}
    for _, common, method, *_ in planned:
        key = family_key({**common, "method": method}, args.bh_family)
        sizes[key] = sizes.get(key, 0) + (len(emotions) if method == "emotion" else 1)
    if args.permutations == 0:
        limits = {}
    elif args.permutations is None:
        limits = {key: default_permutations(size, args.alpha) for key, size in sizes.items()}
    else:
        limits = dict.fromkeys(sizes, args.permutations)
    # Pooled rows permute groups within their category: their null is "no agreement beyond what the
    # categories explain".
    for slot, common, method, subset, base, other, strata in planned:
        rows = slots[slot]
        limit = limits.get(family_key({**common, "method": method}, args.bh_family), 0)
        n = len(subset)
        result = stats.compare(base, other, method=method, n_permutations=limit,
                               exceedances=min(args.exceedances, limit), n_bootstrap=args.bootstrap,
                               confidence=args.confidence, diagonal=args.rsa_diagonal, strata=strata, seed=args.seed)
        values = {key: result[key] for key in ("n_permutations", "null_mean", "null_low", "null_high", "ci_low",
                                               "ci_high")}
        if method == "emotion":
            for i, emotion in enumerate(emotions):
                rho = result["statistic"][i]
                rows.append({**common, "method": method, "emotion": emotion, "rho": rho, "p": result["p_value"][i],
                             "p_floor": result["p_floor"], **{k: v[i] for k, v in values.items()}, "n_groups": n,
                             "note": "constant across groups: rho undefined" if np.isnan(rho) else ""})
            continue
        defined = int(np.sum(~np.isnan(result["per_group"])))
        rows.append({**common, "method": method, "emotion": "", "rho": result["statistic"], "p": result["p_value"],
                     "p_floor": result["p_floor"], **values, "n_groups": defined,
                     "note": "" if defined == n else f"{n - defined} group(s) with a constant vector: rho undefined"})
        per_group.append(subset[["group_id", "group"]].assign(
            comparison=common["comparison"], language=common["language"], category=common["category"],
            method=method, rho=result["per_group"]))
    correlations = pd.DataFrame([row for rows in slots for row in rows]).reindex(columns=CORRELATION_COLUMNS)
    correlations["bh_family"] = [family_key(row, args.bh_family) for row in correlations.to_dict("records")]
    correlations = adjust_within_families(correlations, args.alpha)

    def stacked(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
        return pd.concat(frames, ignore_index=True).reindex(columns=columns) if frames else pd.DataFrame(columns=columns)

    return (correlations[CORRELATION_COLUMNS], stacked(per_group, PER_GROUP_COLUMNS),
            adjust_shifts(stacked(shifts, SHIFT_COLUMNS), args.alpha), limits)


def adjust_shifts(shifts: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """``p_adjusted``: Benjamini-Hochberg within each comparison and language, over its categories
    (``all`` included) and emotions; ``significant``: ``p_adjusted <= alpha`` (False where p is
    undefined)."""
    shifts = shifts.copy()
    shifts["p_adjusted"] = np.nan
    for _, rows in shifts.groupby(["comparison", "language"], sort=False):
        shifts.loc[rows.index, "p_adjusted"] = stats.benjamini_hochberg(rows["p"].to_numpy(dtype=float))
    shifts["significant"] = shifts["p_adjusted"].to_numpy(dtype=float) <= alpha
    return shifts


def input_manifest_summary(path: Path) -> dict:
    """Model name, random-weights flag and completion mode (:func:`analysis._common.completion_mode`) from
    the run's manifest.json, when it sits next to the table."""
    manifest = path.parent / "manifest.json"
    if not manifest.is_file():
        return {}
    try:
        payload = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"run_manifest": {"path": str(manifest), "readable": False}}
    model = payload.get("model") or {}
    return {"run_manifest": {"path": str(manifest), "sha256": sha256_file(manifest), "model": model.get("name"),
                             "random_weights": model.get("random_weights"), "completions": completion_mode(payload)}}


def single_token_warning(records: list[dict]) -> str:
    """The ``warning:`` line of ``--mode languages`` when an input was probed in token mode (its manifest
    says so, or lacks ``completions``, or is not beside its table): each language's completions were then
    its single vocabulary tokens, which reach a different share of each lexicon; ``""`` when none was.

    ``records``: the manifest's input records (``label`` and :func:`input_manifest_summary`).
    """
    token = [r["label"] for r in records if (r.get("run_manifest") or {}).get("completions", "token") == "token"]
    if not token:
        return ""
    return (f"warning: languages compared on single tokens: {', '.join(token)} {'was' if len(token) == 1 else 'were'} "
            f"probed in token mode (or the mode is not recorded), where each language reaches a different share of "
            f"its lexicon; rerun python -m probing.run with --completions word")


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    validate_args(args)
    labels = args.labels or default_labels(args.inputs)
    if len(set(labels)) != len(labels):
        raise UserError(f"--labels must be distinct, got {' '.join(labels)}")
    default_name = (f"correlate_{labels[0]}_languages" if args.mode == "languages"
                    else "correlate_" + "_vs_".join(labels))
    target = output_folder(args, "analysis.correlate", default_name)
    inputs = [load_profiles(path, label) for path, label in zip(args.inputs, labels)]
    emotions = inputs[0].emotions  # every input has the same ones (check_profiles)
    comparisons, excluded = build_comparisons(inputs, emotions, args)
    correlations, per_group, shifts, limits = run_tests(comparisons, emotions, args)
    excluded_table = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)

    significant = int(correlations["significant"].sum())
    records = [input_record(item.path, len(item.table), label=item.label, **input_manifest_summary(item.path))
               for item in inputs]
    warning = single_token_warning(records) if args.mode == "languages" else ""
    manifest = {
        "command": command_line("analysis.correlate", argv),
        "parameters": {**vars(args), "labels": labels},
        "seed": args.seed,
        "permutations": "auto" if args.permutations is None else args.permutations,
        "permutations_by_family": limits,
        "exceedances": args.exceedances,
        "bootstrap": args.bootstrap,
        "alpha": args.alpha,
        "bh_family": args.bh_family,
        "bh_family_columns": list(BH_FAMILIES[args.bh_family]),
        "stopping_rule": (f"sequential Monte Carlo (Besag and Clifford 1991): stop a test at its "
                          f"h = {args.exceedances}-th exceedance (T_perm >= T_obs), p = h / draws; else "
                          f"p = (1 + exceedances) / (1 + B) after B = the family's most permutations (see "
                          f"permutations_by_family)" if args.exceedances else
                          "fixed count: B permutations per test, p = (1 + exceedances) / (1 + B)"),
        "p_value": "one-sided permutation p: exact #{T_perm >= T_obs} / N over all N = prod n_s! pairings (identity "
                   "included) where N <= B, else the stopping rule; p_floor = 1/N or 1/(B+1); category 'all' "
                   "permutes groups within their category; Benjamini-Hochberg within each bh_family; significant: "
                   "p_adjusted <= alpha; cannot_reject: p_floor > alpha",
        "shift_p_value": "two-sided paired sign-flip p of mean(other - reference) = 0 per emotion (all 2^n sign "
                         "vectors when there are at most max(B, 4096), else B random ones, B = --permutations or by "
                         "default max(999, ceil(2 m / alpha) - 1) for the m shift tests of a comparison and language); "
                         "Benjamini-Hochberg within each comparison and language; significant: p_adjusted <= alpha",
        "emotions": emotions,
        "inputs": records,
        "warnings": [warning] if warning else [],
        "summary": {"tests": len(correlations), "significant": significant,
                    "cannot_reject": int(correlations["cannot_reject"].fillna(False).sum()),
                    "groups_compared": {f"{c.name} [{c.language}]": len(c.table) for c in comparisons},
                    "excluded": excluded_table["reason"].value_counts().to_dict()},
    }
    save_run(target, {"correlations.csv": correlations, "per_group.csv": per_group, "shifts.csv": shifts,
                      "excluded.csv": excluded_table}, manifest, overwrite=args.overwrite)
    if warning:
        print(warning, file=sys.stderr)
    if len(excluded_table):
        reasons = "; ".join(f"{n} {reason}" for reason, n in excluded_table["reason"].value_counts().items())
        print(f"note: {len(excluded_table)} group(s) or language(s) left out (listed in excluded.csv): {reasons}",
              file=sys.stderr)
    print(f"wrote {len(correlations)} tests ({significant} with BH-adjusted p <= {args.alpha}, BH family "
          f"{args.bh_family}) over "
          f"{len(comparisons)} comparison(s) to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
