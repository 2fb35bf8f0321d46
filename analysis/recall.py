"""Recall of human stereotypes: do a run's top-k completions contain the attributes people wrote?

The reference is a table of stereotypes, one row per filled template and human completion
(``language, group_id, template_id`` or ``input``, ``attribute``). English defaults to the data
set of Choenni, Shutova and van Rooij (2021), shipped in ``data/choenni2021/`` (MIT licence).

Recall at ``k`` (Choenni et al. 2021): a row ``r`` (sentence ``s_r``, attribute ``a_r``) is
*recalled* when ``a_r`` is among the model's top-``k`` predictions for ``s_r`` (all ranks, kept or
not), matched on the lower-cased word or on the lemma (a whole word in a run probed with
``--completions word``, whatever its number of tokens; one vocabulary token in a token-mode run, which
therefore cannot recall an attribute of several tokens)::

    recall@k = #{r : a_r in top_k(s_r)} / #rows

The group-level variant pools a group's templates: ``A_g`` is the set of the group's attributes,
``P_g(k)`` the union of its sentences' top-``k`` words, and
``recall@k = sum_g |A_g & P_g(k)| / sum_g |A_g|``. Both come per category and for ``all``, with
Korn and Graubard's (1998) interval for a proportion of rows clustered in groups
(:func:`clustered_proportion_interval`: Clopper-Pearson on the effective number of rows, with a
degrees-of-freedom adjustment for few groups), which covers small categories and zero hits.

Command line: ``python -m analysis.recall RUN_DIR... [--k ...] [--stereotypes FILE]``; see
``--help`` and ``analysis/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis._common import (check_bootstrap_options, command_line, completion_mode, input_record, output_folder,
                              read_table, require_columns, save_run)
from probing import prompts as prompt_files
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import PROJECT_ROOT, add_overwrite_option
from probing.predictions import read_predictions
from probing.words import known_lemma

DATA_DIR = PROJECT_ROOT / "data" / "choenni2021"
CHOENNI_FILE = DATA_DIR / "single_word_stereo_dataset.tsv"
CHOENNI_MAP = prompt_files.PROMPTS_DIR / "choenni2021_map.tsv"
DEFAULT_K = [1, 5, 10, 50, 100, 200]
STEREOTYPE_COLUMNS = ["language", "group_id", "template_id", "input", "attribute", "source_group", "source_row"]
RECALL_COLUMNS = ["run", "language", "level", "category", "k", "recall", "n", "recalled", "n_groups",
                  "ci_low", "ci_high"]
INTERVAL_METHOD = ("Korn-Graubard (1998): Clopper-Pearson on the effective rows N / deff (deff >= 1, from the "
                   "variance of the ratio over groups) with the t_{N-1} / t_{G-1} degrees-of-freedom adjustment")
UNMATCHED_COLUMNS = ["run", "source_row", "language", "group_id", "template_id", "input", "attribute", "reason"]

# reasons a stereotype row is not used
UNMAPPED_GROUP = "group not in prompts/choenni2021_map.tsv nor an English group"
UNKNOWN_GROUP = "group_id not in prompts/{language}.yaml"
UNKNOWN_LANGUAGE = "no prompts/{language}.yaml"
GROUP_NOT_EXPRESSED = "group has no text in prompts/{language}.yaml"
NO_TEMPLATE = "input matches none of our templates for the group (not probed)"
UNKNOWN_TEMPLATE = "template_id not a template of the group in prompts/{language}.yaml"
EMPTY_ATTRIBUTE = "empty attribute"
DUPLICATE = "duplicate of an earlier row (same sentence and attribute)"
NOT_IN_RUN = "sentence not in the run (group or template not probed, e.g. another category)"

_PUNCTUATION = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower-cased, punctuation removed, whitespace collapsed.

    >>> normalise_text("  Why are  Muslims so <mask>? ")
    'why are muslims so mask'
    """
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", str(text).lower())).strip()


def normalise_word(word) -> str:
    """A completion as our words are compared: lower-case, inner whitespace collapsed, stripped."""
    return _SPACE.sub(" ", str(word)).strip().lower()


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda column: column.astype(str).str.replace(r"\s+", " ", regex=True).str.strip())


def load_choenni(path: Path = CHOENNI_FILE, map_path: Path = CHOENNI_MAP) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Choenni et al.'s data set as stereotype rows (``STEREOTYPE_COLUMNS``, English), and the rows
    whose group could not be mapped (``UNMATCHED_COLUMNS``).

    A group maps through ``prompts/choenni2021_map.tsv`` (category and group compared lower-cased,
    whitespace collapsed), else to the English group whose id or text equals its name.
    """
    table = _clean(read_table(Path(path), fmt="TSV", dtype=str, keep_default_na=False, quoting=3))
    require_columns(table, ["input", "target_category", "target_group", "completion"], path)
    mapping = _clean(read_table(Path(map_path), fmt="TSV", dtype=str, keep_default_na=False, comment="#"))
    require_columns(mapping, ["category", "group", "group_id"], map_path)
    by_name = {(normalise_word(c), normalise_word(g)): gid for c, g, gid in
               zip(mapping["category"], mapping["group"], mapping["group_id"]) if gid}
    english = prompt_files.load_language("en")
    fallback = {}
    for group in english.groups:
        fallback.setdefault(normalise_word(group.id.replace("_", " ")), group.id)
        if group.text:
            fallback.setdefault(normalise_word(group.text), group.id)
    group_ids = []
    for category, name in zip(table["target_category"], table["target_group"]):
        key = (normalise_word(category), normalise_word(name))
        group_ids.append(by_name.get(key) or fallback.get(key[1], ""))
    rows = pd.DataFrame({
        "language": "en", "group_id": group_ids, "template_id": "", "input": table["input"],
        "attribute": table["completion"].map(normalise_word), "source_group": table["target_group"],
        "source_row": np.arange(1, len(table) + 1),
    })
    mapped = rows["group_id"] != ""
    unmatched = _unmatched(rows[~mapped], UNMAPPED_GROUP)
    return rows[mapped].reset_index(drop=True), unmatched


def _unmatched(rows: pd.DataFrame, reason: str, run: str = "") -> pd.DataFrame:
    out = rows.reindex(columns=[c for c in UNMATCHED_COLUMNS if c not in ("run", "reason")]).copy()
    out.insert(0, "run", run)
    out["reason"] = reason
    return out


def load_stereotypes(path: Path) -> pd.DataFrame:
    """A user's stereotype file (any language) as ``STEREOTYPE_COLUMNS``."""
    table = read_table(Path(path), dtype=str, keep_default_na=False)
    table.columns = [str(c).strip() for c in table.columns]
    require_columns(table, ["language", "group_id", "attribute"], path,
                    "a stereotype file needs language, group_id, template_id (or input) and attribute")
    if "template_id" not in table.columns and "input" not in table.columns:
        raise UserError(f"{path} lacks column template_id or input; it has {', '.join(table.columns)}; "
                        f"name each row's template by its id in prompts/<language>.yaml, or give the filled "
                        f"template without the mask as input")
    table = _clean(table)
    return pd.DataFrame({
        "language": table["language"].str.lower(), "group_id": table["group_id"],
        "template_id": table.get("template_id", ""), "input": table.get("input", ""),
        "attribute": table["attribute"].map(normalise_word), "source_group": table.get("group", ""),
        "source_row": np.arange(1, len(table) + 1),
    })


def resolve_templates(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each row's ``template_id`` (given, or found by comparing ``input`` with our templates rendered
    for the group, normalised by :func:`normalise_text` with the mask removed), its category, and
    the rows that cannot be used, with the reason."""
    loaded: dict[str, prompt_files.LanguagePrompts | None] = {}
    templates, categories, reasons = [], [], []
    for row in rows.itertuples(index=False):
        if row.language not in loaded:
            try:
                loaded[row.language] = prompt_files.load_language(row.language)
            except UserError:
                loaded[row.language] = None
        prompts = loaded[row.language]
        template_id, category, reason = "", "", ""
        group = None if prompts is None else next((g for g in prompts.groups if g.id == row.group_id), None)
        if prompts is None:
            reason = UNKNOWN_LANGUAGE.format(language=row.language)
        elif group is None:
            reason = UNKNOWN_GROUP.format(language=row.language)
        elif group.text is None:
            reason = GROUP_NOT_EXPRESSED.format(language=row.language)
        elif not row.attribute:
            reason = EMPTY_ATTRIBUTE
        else:
            category = group.category
            own = prompts.templates_for(group)
            if row.template_id:
                template_id = row.template_id if any(t.id == row.template_id for t in own) else ""
                reason = "" if template_id else UNKNOWN_TEMPLATE.format(language=row.language)
            else:
                wanted = normalise_text(row.input)
                template_id = _match_template(prompts, group, own, wanted, row.source_group)
                reason = "" if template_id else NO_TEMPLATE
        templates.append(template_id)
        categories.append(category)
        reasons.append(reason)
    rows = rows.assign(template_id=templates, category=categories, reason=reasons)
    bad = rows["reason"] != ""
    unmatched = pd.concat([_unmatched(part, reason) for reason, part in rows[bad].groupby("reason", sort=False)]
                          or [pd.DataFrame(columns=UNMATCHED_COLUMNS)], ignore_index=True)
    good = rows[~bad].drop(columns="reason")
    duplicate = good.duplicated(["language", "group_id", "template_id", "attribute"])
    if duplicate.any():
        unmatched = pd.concat([unmatched, _unmatched(good[duplicate], DUPLICATE)], ignore_index=True)
    return good[~duplicate].reset_index(drop=True), unmatched


def _match_template(prompts, group, own, wanted: str, source_group: str) -> str:
    names = dict.fromkeys([group.text, *group.surface_forms(), source_group or group.text])
    for template in own:
        for name in names:
            variant = dataclasses.replace(group, text=name)
            try:
                sentence = prompt_files.render(prompts, template, variant, mask_token="")
            except UserError:
                continue
            if normalise_text(sentence) == wanted:
                return template.id
    return ""


def run_manifest(run: Path) -> dict:
    """The probing run's ``manifest.json`` (beside its predictions), or {} if absent or unreadable."""
    manifest = run / "manifest.json" if run.is_dir() else run.parent / "manifest.json"
    try:
        payload = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def run_top_k(run: Path, predictions: pd.DataFrame) -> int:
    """The run's ``parameters.top_k`` (its ``manifest.json``), else its largest rank."""
    top_k = (run_manifest(run).get("parameters") or {}).get("top_k")
    if isinstance(top_k, int):
        return top_k
    return int(predictions["rank"].max()) if len(predictions) else 0


def first_ranks(predictions: pd.DataFrame, stereotypes: pd.DataFrame, lemmatizers: dict[str, str]) -> pd.DataFrame:
    """For each stereotype row: the best rank at which its sentence predicts the attribute
    (``rank``, NaN if never) with the number of tokens of that completion (``n_pieces``), and the best
    rank over all the group's sentences in the run (``group_rank``).

    A completion is matched as a whole: its ``word`` (a whole word of several pieces in word mode),
    lower-cased, or its lemma."""
    table = pd.DataFrame({
        "language": predictions["language"].astype(str), "group_id": predictions["group_id"].astype(str),
        "template_id": predictions["template_id"].astype(str), "rank": predictions["rank"].astype(np.int64),
        "word": predictions["word"].astype(str).map(normalise_word),
        "lemma": predictions["lemma"].astype(str).str.strip().str.lower(),
        "n_pieces": predictions["n_pieces"].astype(np.int64),
    }).sort_values("rank", kind="stable")
    rows = stereotypes.copy()
    rows["lemma"] = [known_lemma(a, lemmatizers[lang]) if lang in lemmatizers else ""
                     for a, lang in zip(rows["attribute"], rows["language"])]
    for keys, out in ((["language", "group_id", "template_id"], "rank"), (["language", "group_id"], "group_rank")):
        best = {}  # per way of matching: the rank and pieces of the best-ranked completion, per row
        for column, candidates in (("word", table), ("lemma", table[table["lemma"] != ""])):
            first = (candidates.drop_duplicates([*keys, column]).set_index([*keys, column])[["rank", "n_pieces"]]
                     .rename(columns={"rank": "_rank", "n_pieces": "_pieces"}))
            merged = rows.merge(first, left_on=[*keys, "attribute" if column == "word" else "lemma"],
                                right_index=True, how="left")
            if column == "lemma":
                merged.loc[merged["lemma"] == "", ["_rank", "_pieces"]] = np.nan
            best[column] = merged["_rank"].to_numpy(float), merged["_pieces"].to_numpy(float)
        (word_rank, word_pieces), (lemma_rank, lemma_pieces) = best["word"], best["lemma"]
        rows[out] = np.fmin(word_rank, lemma_rank)
        if out == "rank":
            rows["n_pieces"] = np.where(np.isnan(word_rank) | (lemma_rank < word_rank), lemma_pieces, word_pieces)
    return rows


def clustered_proportion_interval(hits, n, *, confidence: float = 0.95) -> tuple[float, float]:
    """Korn-Graubard confidence interval for a proportion of rows clustered in groups.

    The proportion is the ratio ``p = sum_g hits_g / sum_g n_g`` over ``G`` groups (``n_g`` rows of
    group ``g``, ``hits_g`` of them recalled). Rows of one group share a sentence or a group's
    predictions and are not independent, so the interval is the exact binomial (Clopper-Pearson)
    interval on an *effective* sample size (Korn and Graubard 1998):

    1. ``v = G / (G - 1) * sum_g (hits_g - p * n_g)**2 / N**2`` with ``N = sum_g n_g``: the
       with-replacement (Taylor linearisation) variance of the ratio over groups;
    2. design effect ``deff = v / (p (1 - p) / N)``, truncated at ``deff >= 1`` (and ``deff = 1`` when
       ``p`` is 0 or 1, where ``v`` is 0): ``n_eff = N / deff``, never above ``N``;
    3. degrees of freedom: ``n_star = n_eff * (t_{N-1} / t_{G-1})**2``, ``t_d`` the
       ``(1 + confidence) / 2`` quantile of Student's t with ``d`` degrees of freedom
       (``scipy.stats.t``), since the variance rests on ``G - 1`` degrees of freedom, not ``N - 1``;
    4. with ``x_star = p * n_star`` and ``a = (1 - confidence) / 2``: ``low = Beta_a(x_star,
       n_star - x_star + 1)`` (0 if no hit), ``high = Beta_{1-a}(x_star + 1, n_star - x_star)`` (1 if
       every row is a hit), ``Beta_q`` the ``q`` quantile of the beta distribution
       (``scipy.stats.beta``).

    Zero hits give ``[0, 1 - a**(1 / n_star)]``, never ``[0, 0]``. With one row per group and
    zero (or all) hits, ``n_star = N`` and this is Clopper-Pearson's interval on ``N`` rows.

    Parameters
    ----------
    hits : array-like of int, shape (G,)
        Recalled rows per group, ``0 <= hits_g <= n_g``.
    n : array-like of int, shape (G,)
        Rows per group, each at least 1.
    confidence : float, default 0.95
        Level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        Bounds on the proportion, in [0, 1]; ``(nan, nan)`` for a single group, whose rows give no
        between-group variance.

    References
    ----------
    Korn, E. L. and Graubard, B. I. (1998). Confidence intervals for proportions with small expected
    number of positive counts estimated from survey data. Survey Methodology 24(2), 193-201.
    Dean, N. and Pagano, M. (2015). Evaluating confidence interval methods for binomial proportions
    in clustered surveys. Journal of Survey Statistics and Methodology 3(4).

    Examples
    --------
    No hit in 4 groups of 5 rows: ``N = 20``, ``deff = 1``, ``n_star = 20 * (2.0930 / 3.1824)**2 =
    8.651``, high ``= 1 - 0.025**(1 / 8.651) = 0.347``:

    >>> low, high = clustered_proportion_interval([0, 0, 0, 0], [5, 5, 5, 5])
    >>> low, round(high, 3)
    (0.0, 0.347)

    Four hits in 4 groups of 5 rows, 3 of them in one group: ``p = 0.2``, residuals ``hits_g - p n_g``
    = (2, -1, -1, 0), ``v = 4 / 3 * 6 / 400 = 0.02`` against ``p (1 - p) / N = 0.008`` (``deff =
    2.5``, ``n_eff = 8``), ``n_star = 8 * 0.43255 = 3.460``, ``x_star = 0.692``: the bounds are
    ``Beta_0.025(0.692, 3.768)`` and ``Beta_0.975(1.692, 2.768)``:

    >>> [round(b, 3) for b in clustered_proportion_interval([3, 0, 0, 1], [5, 5, 5, 5])]
    [0.001, 0.808]
    """
    hits_array, n_array = _group_counts(hits, "hits"), _group_counts(n, "n")
    if hits_array.shape != n_array.shape:
        raise ValueError(f"hits and n must have the same length, got {hits_array.size} and {n_array.size}")
    if hits_array.size == 0:
        raise ValueError("hits and n must hold at least one group")
    if (n_array < 1).any():
        raise ValueError(f"every group needs at least one row (n >= 1), got {n_array.min():g}")
    if (hits_array > n_array).any():
        raise ValueError("hits must not exceed n in any group")
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(confidence, (int, float, np.number)) \
            or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number between 0 and 1, got {confidence!r}")
    groups = hits_array.size
    if groups < 2:
        return np.nan, np.nan
    total, recalled = float(n_array.sum()), float(hits_array.sum())
    p = recalled / total
    n_eff = total
    if 0 < p < 1:
        variance = groups / (groups - 1) * float(((hits_array - p * n_array) ** 2).sum()) / total ** 2
        if variance > 0:  # deff = variance / (p (1 - p) / N), truncated at 1
            n_eff = min(total, p * (1 - p) / variance)
    upper_tail = (1 + confidence) / 2
    n_star = n_eff * (stats.t.ppf(upper_tail, total - 1) / stats.t.ppf(upper_tail, groups - 1)) ** 2
    x_star = p * n_star
    alpha = 1 - upper_tail
    low = 0.0 if recalled == 0 else float(stats.beta.ppf(alpha, x_star, n_star - x_star + 1))
    high = 1.0 if recalled == total else float(stats.beta.ppf(upper_tail, x_star + 1, n_star - x_star))
    return low, high


def _group_counts(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one count per group), got shape {array.shape}")
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must hold numbers (counts of rows), got dtype {array.dtype}")
    array = array.astype(float)
    if not np.isfinite(array).all() or (array < 0).any() or (array != np.round(array)).any():
        raise ValueError(f"{name} must hold non-negative whole numbers (counts of rows)")
    return array


def recall_rows(run: str, rows: pd.DataFrame, ks: list[int], *, confidence: float,
                intervals: bool = True) -> list[dict]:
    """``RECALL_COLUMNS`` rows of one run: row and group level, per language x category (and all) x k,
    with :func:`clustered_proportion_interval` over the groups (NaN without ``intervals``)."""
    out = []
    for language, in_language in rows.groupby("language", sort=True):
        groups_in_language = in_language.drop_duplicates(["group_id", "attribute"])
        scopes = [("all", None)] + [(c, c) for c in sorted(in_language["category"].unique())]
        for level, table, rank_column in (("row", in_language, "rank"), ("group", groups_in_language, "group_rank")):
            for category, chosen in scopes:
                part = table if chosen is None else table[table["category"] == chosen]
                group_codes, _ = pd.factorize(part["group_id"])
                n_group = np.bincount(group_codes, minlength=group_codes.max() + 1 if len(group_codes) else 0)
                for k in ks:
                    hit = (part[rank_column].to_numpy(float) <= k)
                    hits_group = np.bincount(group_codes, weights=hit.astype(float), minlength=len(n_group))
                    low, high = (clustered_proportion_interval(hits_group, n_group, confidence=confidence)
                                 if intervals else (np.nan, np.nan))
                    n = len(part)
                    out.append({"run": run, "language": language, "level": level, "category": category, "k": k,
                                "recall": hit.sum() / n if n else np.nan, "n": n, "recalled": int(hit.sum()),
                                "n_groups": len(n_group), "ci_low": low, "ci_high": high})
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m analysis.recall",
        description="Recall@k of human stereotypes (Choenni et al. 2021 by default, English) in probing runs' "
                    "top-k predictions; writes recall.csv, unmatched.csv and manifest.json.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="probing run folders (with predictions.parquet)")
    parser.add_argument("--k", type=int, nargs="+", default=None,
                        help=f"cut-offs, each at most every run's top_k (default: those of {DEFAULT_K} up to the "
                             f"smallest top_k of the runs)")
    parser.add_argument("--stereotypes", metavar="FILE",
                        help="CSV/TSV with language, group_id, template_id (or input), attribute "
                             f"(default: {CHOENNI_FILE.relative_to(PROJECT_ROOT)}, English)")
    parser.add_argument("--bootstrap", type=int, default=1000,
                        help="0: no intervals; any other count: Korn-Graubard intervals over groups (closed form, "
                             "no resampling; the count is accepted so that older command lines still run)")
    parser.add_argument("--confidence", type=float, default=0.95, help="level of the intervals (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="recorded only: the intervals draw nothing at random")
    parser.add_argument("--output_dir", help="default: results/analysis/recall")
    add_overwrite_option(parser)
    return parser


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_bootstrap_options(args)
    ks = sorted(set(args.k or DEFAULT_K))
    if ks[0] < 1:
        raise UserError(f"--k must be 1 or more, got {ks[0]}")
    target = output_folder(args, "analysis.recall", "recall")

    if args.stereotypes:
        source = Path(args.stereotypes)
        raw, unmatched_groups = load_stereotypes(source), pd.DataFrame(columns=UNMATCHED_COLUMNS)
        n_source = len(raw)
    else:
        source = CHOENNI_FILE
        raw, unmatched_groups = load_choenni()
        n_source = len(raw) + len(unmatched_groups)
    stereotypes, unmatched_rows = resolve_templates(raw)
    unmatched = [unmatched_groups, unmatched_rows]
    if stereotypes.empty:
        raise UserError(f"no row of {source} names one of our groups and templates "
                        f"({len(raw)} rows; check group_id and template_id against prompts/<language>.yaml)")
    lemmatizers = {}
    for language in stereotypes["language"].unique():
        lemmatizers[language] = prompt_files.load_language(language).lemmatizer

    runs, inputs, results, names, warnings, notes = [], [], [], set(), [], []
    for run_arg in args.runs:
        path = Path(run_arg)
        predictions = read_predictions(path)
        top_k = run_top_k(path, predictions)
        if args.k is not None and ks[-1] > top_k:
            raise UserError(f"--k {ks[-1]} is above the top_k of {path} ({top_k}); pass k values up to {top_k}")
        name = (path if path.is_dir() else path.parent).name or str(path)
        while name in names:
            name += "_"
        names.add(name)
        runs.append((name, path, predictions, top_k))
        manifest = run_manifest(path)
        random_weights = bool((manifest.get("model") or {}).get("random_weights", False))
        if random_weights:  # printed once every input is checked: nothing is printed before a refusal
            warnings.append(f"warning: {name} has random weights: its recall measures nothing (for tests and demos "
                            f"only)")
        mode = completion_mode(manifest)
        if mode == "token":
            notes.append(f"note: {name} was probed in token mode: a stereotype word of several tokens cannot be "
                         f"recalled (rerun python -m probing.run with --completions word)")
        inputs.append(input_record(path / "predictions.parquet" if path.is_dir() else path, len(predictions),
                                   run=name, top_k=top_k, random_weights=random_weights, completions=mode))
    if args.k is None:
        smallest = min(top_k for *_, top_k in runs)
        ks = [k for k in ks if k <= smallest] or [smallest]
    used_any = False
    for (name, path, predictions, top_k), record in zip(runs, inputs):
        present = predictions[["language", "group_id", "template_id"]].astype(str).drop_duplicates()
        key = pd.MultiIndex.from_frame(present)
        in_run = pd.MultiIndex.from_frame(stereotypes[["language", "group_id", "template_id"]]).isin(key)
        if (~in_run).any():
            unmatched.append(_unmatched(stereotypes[~in_run], NOT_IN_RUN, run=name))
        used = stereotypes[in_run]
        if used.empty:
            notes.append(f"note: no stereotype row matches a sentence of {path}")
            continue
        used_any = True
        ranked = first_ranks(predictions, used, lemmatizers)
        pieces = ranked["n_pieces"].dropna()  # the recalled rows (at the run's top_k), by the tokens of the match
        record["recalled_rows"] = {"single_token": int((pieces == 1).sum()), "multi_token": int((pieces > 1).sum())}
        results += recall_rows(name, ranked, ks, confidence=args.confidence, intervals=args.bootstrap > 0)
    if not used_any:
        raise UserError(f"no stereotype row of {source} matches a sentence of the run(s) "
                        f"(languages, groups or templates differ); probe the groups of the stereotype file")
    for note in warnings + notes:
        print(note, file=sys.stderr)
    recall = pd.DataFrame(results, columns=RECALL_COLUMNS)
    unmatched_table = pd.concat([u for u in unmatched if len(u)] or [pd.DataFrame(columns=UNMATCHED_COLUMNS)],
                                ignore_index=True)[UNMATCHED_COLUMNS]
    reasons = unmatched_table.groupby(["run", "reason"]).size()
    manifest = {
        "command": command_line("analysis.recall", argv),
        "parameters": {**vars(args), "k": ks},
        "seed": args.seed,
        "interval_method": INTERVAL_METHOD if args.bootstrap > 0 else "none",
        "inputs": [input_record(source, n_source, table="stereotypes"), *inputs],
        "stereotypes": {"rows": n_source, "usable": len(stereotypes),
                        "unmatched": {f"{run or 'data set'}: {reason}": int(n) for (run, reason), n in reasons.items()}},
    }
    save_run(target, {"recall.csv": recall, "unmatched.csv": unmatched_table}, manifest, overwrite=args.overwrite)
    print(f"recall of {len(stereotypes)} of {n_source} stereotype rows in {len(runs)} run(s) written to {target} "
          f"({len(unmatched_table)} unmatched rows listed in unmatched.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
