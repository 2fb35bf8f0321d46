"""Correlate emotion profiles: base against fine-tuned models, or one language against another.

    python -m analysis.correlate BASE OTHER... [--method spearman rsa emotion] [--output_dir DIR]

Each input is a ``profiles.csv`` (or a run folder holding one). Groups are aligned by
``(language, group_id)``; a group present in one input only, or with an undefined (empty) profile,
is left out and listed in ``excluded.csv``. The statistics are :mod:`analysis.correlations`.

Writes ``results/analysis/<name>/`` (atomically):

* ``correlations.csv``: one row per test: ``comparison, language, category, method, emotion,
  rho, p, p_adjusted, ci_low, ci_high, n_groups, reference, other, note``;
* ``per_group.csv``: the per-group rhos behind ``spearman`` and ``rsa``;
* ``shifts.csv``: per emotion, the mean over groups of ``other - reference`` with its interval;
* ``excluded.csv``: every group (or language) left out, and why;
* ``manifest.json``: inputs with sha256, parameters, seed, permutations, environment.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import correlations as stats
from analysis._common import command_line, find_table, input_record, output_folder, read_csv, require_columns, rng_for, save_run
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import check_writable, sha256_file
from probing.predictions import PROFILE_META_COLUMNS

KEY_COLUMNS = ["language", "category", "group_id"]
ALL_CATEGORIES = "all"
MODES = ("models", "languages")
MIN_GROUPS = 3
CORRELATION_COLUMNS = ["comparison", "language", "category", "method", "emotion", "rho", "p", "p_adjusted",
                       "ci_low", "ci_high", "n_groups", "reference", "other", "note"]
PER_GROUP_COLUMNS = ["comparison", "language", "category", "method", "group_id", "group", "rho"]
SHIFT_COLUMNS = ["comparison", "language", "category", "emotion", "reference_mean", "other_mean", "shift",
                 "ci_low", "ci_high", "n_groups", "reference", "other"]
EXCLUDED_COLUMNS = ["comparison", "language", "category", "group_id", "group", "reason"]

EXAMPLES = """examples:
  # base model against a fine-tuned one, every language both runs have
  python -m analysis.correlate results/profiles/xlm-roberta-base results/profiles/french
  # one method, the published RSA setting (diagonal included), more permutations
  python -m analysis.correlate base/profiles.csv ft/profiles.csv --method rsa --rsa_diagonal include --permutations 5000
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
    add("--permutations", type=int, default=1000, help="random permutations per test; 0 skips p-values (default: 1000)")
    add("--bootstrap", type=int, default=1000, help="bootstrap resamples of the groups; 0 skips intervals (default: 1000)")
    add("--confidence", type=float, default=0.95, help="confidence level of the intervals (default: 0.95)")
    add("--seed", type=int, default=0, help="seed of permutations and bootstrap (default: 0)")
    add("--labels", nargs="+", default=None, help="names of the inputs in the tables (default: their folder names)")
    add("--output_dir", default=None, help="result folder (default: results/analysis/<run_name>)")
    add("--run_name", default=None, help="default: correlate_<reference>_vs_<other>...")
    return parser


def validate_args(args) -> None:
    if args.mode == "models" and len(args.inputs) < 2:
        raise UserError(f"--mode models needs a reference and at least one other profiles file, got {len(args.inputs)} "
                        f"input; add one, or pass --mode languages to compare the languages of one run")
    if args.permutations < 0 or args.bootstrap < 0:
        raise UserError("--permutations and --bootstrap must be 0 or more")
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
    require_columns(table, KEY_COLUMNS, path, "pass a profiles.csv written by python -m probing.run")
    table["group_id"] = table["group_id"].astype(str)
    table["language"] = table["language"].astype(str)
    if "group" not in table.columns:
        table["group"] = table["group_id"]
    emotions = [c for c in table.columns if c not in PROFILE_META_COLUMNS]
    if not emotions:
        raise UserError(f"{path} has no emotion columns besides {', '.join(PROFILE_META_COLUMNS)}")
    not_numeric = [c for c in emotions if not pd.api.types.is_numeric_dtype(table[c])]
    if not_numeric:
        raise UserError(f"{path}: column(s) {', '.join(not_numeric)} are not numeric; emotion columns hold "
                        f"profile values in [0, 1] (expected columns: {', '.join(PROFILE_META_COLUMNS)} and the emotions)")
    duplicated = table[table.duplicated(["language", "group_id"], keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        raise UserError(f"{path} has {len(duplicated)} rows for the same (language, group_id), e.g. "
                        f"({first['language']}, {first['group_id']}); each group may appear once per language")
    return Profiles(label, path, table, emotions)


def check_same_emotions(inputs: list[Profiles]) -> list[str]:
    reference = inputs[0]
    for item in inputs[1:]:
        if set(item.emotions) != set(reference.emotions):
            only_ref = sorted(set(reference.emotions) - set(item.emotions))
            only_item = sorted(set(item.emotions) - set(reference.emotions))
            raise UserError(
                f"{item.path} and {reference.path} have different emotion columns (only in the reference: "
                f"{', '.join(only_ref) or 'none'}; only in the other: {', '.join(only_item) or 'none'}); "
                f"compare profiles made with the same lexicon"
            )
    return reference.emotions


def _language_rows(profiles: Profiles, language: str) -> pd.DataFrame:
    return profiles.table[profiles.table["language"] == language]


def align(reference: Profiles, ref_language: str, other: Profiles, other_language: str, emotions: list[str],
          *, name: str, ref_label: str, other_label: str) -> tuple[pd.DataFrame, list[dict]]:
    """Groups of ``reference`` in ``ref_language`` paired by ``group_id`` with those of ``other`` in
    ``other_language``; returns the aligned table and the excluded groups with their reason."""
    ref = _language_rows(reference, ref_language).set_index("group_id")
    oth = _language_rows(other, other_language).set_index("group_id")
    excluded = []

    def exclude(group_id, row, reason):
        excluded.append({"comparison": name, "language": other_language, "category": row["category"],
                         "group_id": group_id, "group": row["group"], "reason": reason})

    for group_id in ref.index.difference(oth.index, sort=False):
        exclude(group_id, ref.loc[group_id], f"only in {ref_label}")
    for group_id in oth.index.difference(ref.index, sort=False):
        exclude(group_id, oth.loc[group_id], f"only in {other_label}")
    common = ref.index.intersection(oth.index, sort=False)
    clash = [g for g in common if ref.at[g, "category"] != oth.at[g, "category"]]
    if clash:
        g = clash[0]
        raise UserError(
            f"group {g!r} has category {ref.at[g, 'category']!r} in {reference.path} ({ref_language}) but "
            f"{oth.at[g, 'category']!r} in {other.path} ({other_language}); group ids must mean the same group"
        )
    rows = []
    for group_id in common:
        r, o = ref.loc[group_id], oth.loc[group_id]
        r_values = r[emotions].to_numpy(dtype=float)
        o_values = o[emotions].to_numpy(dtype=float)
        reason = None
        for label, values in ((ref_label, r_values), (other_label, o_values)):
            if reason is None and np.isnan(values).any():
                reason = f"undefined profile in {label} (no covered word)"
            elif reason is None and not np.any(values):
                reason = f"all-zero profile in {label}"
        if reason:
            exclude(group_id, r, reason)
            continue
        rows.append({"language": other_language, "category": r["category"], "group_id": group_id,
                     "group": o["group"] if ref_language != other_language else r["group"],
                     **{f"ref_{e}": v for e, v in zip(emotions, r_values)},
                     **{f"oth_{e}": v for e, v in zip(emotions, o_values)}})
    columns = ["language", "category", "group_id", "group", *(f"ref_{e}" for e in emotions),
               *(f"oth_{e}" for e in emotions)]
    return pd.DataFrame(rows, columns=columns), excluded


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
                table, left_out = align(reference, language, other, language, emotions, name=name,
                                        ref_label=reference.label, other_label=other.label)
                excluded += left_out
                comparisons.append(Comparison(name, reference.label, other.label, language, table))
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
                table, left_out = align(item, ref_language, item, language, emotions, name=name,
                                        ref_label=ref_label, other_label=other_label)
                excluded += left_out
                comparisons.append(Comparison(name, ref_label, other_label, language, table))
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


def run_tests(comparisons: list[Comparison], emotions: list[str], args) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows, per_group, shifts = [], [], []
    for comparison in comparisons:
        table = comparison.table
        categories = sorted(set(table["category"])) + [ALL_CATEGORIES] if not table.empty else []
        for category in categories:
            subset = table if category == ALL_CATEGORIES else table[table["category"] == category]
            base = subset[[f"ref_{e}" for e in emotions]].to_numpy(dtype=float)
            other = subset[[f"oth_{e}" for e in emotions]].to_numpy(dtype=float)
            common = {"comparison": comparison.name, "language": comparison.language, "category": category,
                      "reference": comparison.reference, "other": comparison.other}
            n = len(subset)
            if n >= 2:
                shift = stats.mean_shift(base, other, n_bootstrap=max(args.bootstrap, 1), confidence=args.confidence,
                                         seed=rng_for(args.seed, comparison.name, comparison.language, category, "shift"))
                for i, emotion in enumerate(emotions):
                    shifts.append({**common, "emotion": emotion, "reference_mean": shift["base_mean"][i],
                                   "other_mean": shift["other_mean"][i], "shift": shift["shift"][i],
                                   "ci_low": shift["ci_low"][i] if args.bootstrap else np.nan,
                                   "ci_high": shift["ci_high"][i] if args.bootstrap else np.nan, "n_groups": n})
            for method in args.methods:
                labels = emotions if method == "emotion" else [""]
                if n < MIN_GROUPS:
                    for emotion in labels:
                        rows.append({**common, "method": method, "emotion": emotion, "rho": np.nan, "p": np.nan,
                                     "ci_low": np.nan, "ci_high": np.nan, "n_groups": n,
                                     "note": f"only {n} group(s) with a profile in both; need {MIN_GROUPS}"})
                    continue
                result = stats.compare(base, other, method=method, n_permutations=args.permutations,
                                       n_bootstrap=args.bootstrap, confidence=args.confidence,
                                       diagonal=args.rsa_diagonal,
                                       seed=rng_for(args.seed, comparison.name, comparison.language, category, method))
                if method == "emotion":
                    for i, emotion in enumerate(emotions):
                        rho = result["statistic"][i]
                        rows.append({**common, "method": method, "emotion": emotion, "rho": rho,
                                     "p": result["p_value"][i], "ci_low": result["ci_low"][i],
                                     "ci_high": result["ci_high"][i], "n_groups": n,
                                     "note": "constant across groups: rho undefined" if np.isnan(rho) else ""})
                    continue
                defined = int(np.sum(~np.isnan(result["per_group"])))
                rows.append({**common, "method": method, "emotion": "", "rho": result["statistic"],
                             "p": result["p_value"], "ci_low": result["ci_low"], "ci_high": result["ci_high"],
                             "n_groups": defined,
                             "note": "" if defined == n else f"{n - defined} group(s) with a constant vector: rho undefined"})
                for (_, group_row), rho in zip(subset.iterrows(), result["per_group"]):
                    per_group.append({"comparison": comparison.name, "language": comparison.language,
                                      "category": category, "method": method, "group_id": group_row["group_id"],
                                      "group": group_row["group"], "rho": rho})
    correlations = pd.DataFrame(rows, columns=[c for c in CORRELATION_COLUMNS if c != "p_adjusted"])
    correlations.insert(CORRELATION_COLUMNS.index("p_adjusted"), "p_adjusted",
                        stats.benjamini_hochberg(correlations["p"].to_numpy(dtype=float)))
    return (correlations[CORRELATION_COLUMNS], pd.DataFrame(per_group, columns=PER_GROUP_COLUMNS),
            pd.DataFrame(shifts, columns=SHIFT_COLUMNS))


def input_manifest_summary(path: Path) -> dict:
    """Model name and random-weights flag from the run's manifest.json, when it sits next to the table."""
    manifest = path.parent / "manifest.json"
    if not manifest.is_file():
        return {}
    try:
        payload = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"run_manifest": {"path": str(manifest), "readable": False}}
    model = payload.get("model") or {}
    return {"run_manifest": {"path": str(manifest), "sha256": sha256_file(manifest), "model": model.get("name"),
                             "random_weights": model.get("random_weights")}}


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    validate_args(args)
    labels = args.labels or default_labels(args.inputs)
    if len(set(labels)) != len(labels):
        raise UserError(f"--labels must be distinct, got {' '.join(labels)}")
    default_name = (f"correlate_{labels[0]}_languages" if args.mode == "languages"
                    else "correlate_" + "_vs_".join(labels))
    target = output_folder(args.output_dir, args.run_name or default_name)
    check_writable(target)
    inputs = [load_profiles(path, label) for path, label in zip(args.inputs, labels)]
    emotions = check_same_emotions(inputs)
    comparisons, excluded = build_comparisons(inputs, emotions, args)
    correlations, per_group, shifts = run_tests(comparisons, emotions, args)
    excluded_table = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)

    significant = int((correlations["p_adjusted"] < 0.05).sum())
    manifest = {
        "command": command_line("analysis.correlate", argv),
        "parameters": {**vars(args), "labels": labels},
        "seed": args.seed,
        "permutations": args.permutations,
        "bootstrap": args.bootstrap,
        "p_value": "one-sided permutation p = (1 + #{T_perm >= T_obs}) / (1 + permutations); "
                   "Benjamini-Hochberg across every test of this run",
        "emotions": emotions,
        "inputs": [input_record(item.path, len(item.table), label=item.label, **input_manifest_summary(item.path))
                   for item in inputs],
        "summary": {"tests": len(correlations), "significant_bh_0.05": significant,
                    "groups_compared": {f"{c.name} [{c.language}]": len(c.table) for c in comparisons},
                    "excluded": excluded_table["reason"].value_counts().to_dict()},
    }
    save_run(target, {"correlations.csv": correlations, "per_group.csv": per_group, "shifts.csv": shifts,
                      "excluded.csv": excluded_table}, manifest)
    if len(excluded_table):
        reasons = "; ".join(f"{n} {reason}" for reason, n in excluded_table["reason"].value_counts().items())
        print(f"note: {len(excluded_table)} group(s) or language(s) left out (listed in excluded.csv): {reasons}",
              file=sys.stderr)
    print(f"wrote {len(correlations)} tests ({significant} with BH-adjusted p < 0.05) over "
          f"{len(comparisons)} comparison(s) to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
