"""How well encoders align languages: translation retrieval and the cosine gap on parallel sentences.

    python -m analysis.alignment --models tiny-xlmr multi single --input identity_set.csv

The input holds parallel sentences: a language column, a text column and key columns that name
the same sentence in every language (default ``group_id frame_id``: the identity sets of
``python -m analysis.identity_sets`` put the same groups in the same frames in every language).
Each model embeds every sentence (:mod:`finetune.embed`: ``--pooling``, the model's projection).
For every unordered language pair ``(A, B)`` with ``n`` keys in common, ``S_ij = cos(a_i, b_j)``
(``a_i``, ``b_j`` the embeddings of key ``i`` in A and key ``j`` in B) and:

* ``retrieval_a_to_b = (1/n) sum_i c_i``: is ``b_i`` the nearest neighbour of ``a_i`` among the
  ``n`` sentences of B? ``c_i = 1 / t_i`` when ``S_ii >= max_j S_ij - tol``, with ``t_i`` the
  number of ``j`` with ``S_ij >= S_ii - tol`` (ties share the credit, the expected accuracy of a
  random tie-break), else 0; ``tol = 1e-6`` (float32 embeddings). ``retrieval_b_to_a`` the same on
  ``S^T``; ``retrieval`` their mean. Chance is ``1/n``.
* ``cosine_pairs = mean_i S_ii``, ``cosine_non_pairs = mean_{i != j} S_ij`` and
  ``cosine_gap = cosine_pairs - cosine_non_pairs`` (Conneau et al. 2020's contrast of translations
  and non-translations; 0 when translations are no closer than any two sentences).

Normalising the embeddings (``finetune.embed --normalize``) scales each vector by a positive number
and so leaves every cosine, and every number here, unchanged.

**Intervals.** Seeded percentile bootstrap over keys (``--bootstrap`` resamples, default 1000): a
replicate draws ``n`` keys with replacement (multinomial counts ``w_k``) and recomputes
``sum_k w_k c_k / n`` for retrieval (the credits ``c_k`` against the full set of ``n`` candidates:
a resampled candidate set would hold only about 63% distinct sentences and make retrieval look
easier), ``sum_k w_k S_kk / n`` for the pairs and ``(w^T S w - sum_k w_k^2 S_kk) / (n^2 - sum_k w_k^2)``
for the non-pairs (all pairs of drawn sentences with different keys). A language pair draws the
same keys for every model (``rng_for(seed, "alignment", A, B)``), so each model's difference from
``--reference`` (default: the first model) gets a paired interval from the same replicates.
Coverage checked by simulation (``tests/test_analysis_alignment.py``; numbers in
``analysis/README.md``).

Writes ``alignment.csv`` (``model, compared_with, language_a, language_b, metric, value, ci_low,
ci_high, n_items``; ``compared_with`` empty for a model's own values, else the reference, and
``value`` the difference model minus reference) and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._common import (check_bootstrap_options, command_line, input_record, output_folder, read_table,
                              require_columns, rng_for, save_run)
from finetune.config import POOLINGS
from finetune.embed import (DEFAULT_POOLING, PROJECTIONS, check_embedding_options, check_projection, embed_texts,
                            load_encoder, model_source)
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.manifest import add_overwrite_option

TIE_TOLERANCE = 1e-6
METRICS = ("retrieval", "retrieval_a_to_b", "retrieval_b_to_a", "cosine_gap", "cosine_pairs", "cosine_non_pairs")
COLUMNS = ["model", "compared_with", "language_a", "language_b", "metric", "value", "ci_low", "ci_high", "n_items"]
DEFAULT_KEYS = ("group_id", "frame_id")
CHUNK = 250  # bootstrap replicates per matrix product (memory: CHUNK x n floats)

EXAMPLES = """examples:
  python -m analysis.identity_sets --languages en fr de --categories gender religion
  python -m analysis.alignment --models tiny-xlmr demo-multitask --input results/analysis/identity_sets/identity_set.csv
  python -m analysis.alignment --models base multi single --input parallel.csv --key_columns sentence_id --max_items 0
"""


# ---- statistics (pure) -----------------------------------------------------------------------

def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``S_ij = a_i . b_j / (||a_i|| ||b_j||)`` in float64 (a zero vector has cosine 0 with everything).

    >>> cosine_matrix(np.array([[1., 0.], [1., 1.]]), np.array([[2., 0.]])).round(4).tolist()
    [[1.0], [0.7071]]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-300)
    return a @ b.T


def retrieval_credits(similarity: np.ndarray, tol: float = TIE_TOLERANCE) -> np.ndarray:
    """Per query ``i`` (row): 1 if its translation (column ``i``) is the nearest candidate, ``1/t`` when it
    ties with ``t - 1`` others, 0 otherwise (see the module docstring).

    >>> retrieval_credits(np.array([[0.9, 0.1], [0.5, 0.5]])).tolist()
    [1.0, 0.5]
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    own = np.diag(similarity)[:, None]
    best = similarity.max(axis=1, keepdims=True)
    tied = (similarity >= own - tol).sum(axis=1)
    return np.where(own[:, 0] >= best[:, 0] - tol, 1.0 / tied, 0.0)


def pair_statistics(similarity: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one similarity matrix (rows: language A, columns: B, aligned by key).

    >>> s = np.array([[0.9, 0.2], [0.4, 0.6]])
    >>> {k: round(v, 3) for k, v in pair_statistics(s).items()}
    {'retrieval': 1.0, 'retrieval_a_to_b': 1.0, 'retrieval_b_to_a': 1.0, 'cosine_gap': 0.45, 'cosine_pairs': 0.75, 'cosine_non_pairs': 0.3}
    """
    n = len(similarity)
    a_to_b = retrieval_credits(similarity).mean()
    b_to_a = retrieval_credits(similarity.T).mean()
    pairs = float(np.trace(similarity)) / n
    non_pairs = (float(similarity.sum()) - float(np.trace(similarity))) / (n * n - n) if n > 1 else float("nan")
    return {"retrieval": float((a_to_b + b_to_a) / 2), "retrieval_a_to_b": float(a_to_b),
            "retrieval_b_to_a": float(b_to_a), "cosine_gap": pairs - non_pairs, "cosine_pairs": pairs,
            "cosine_non_pairs": non_pairs}


def key_weights(n: int, bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """``bootstrap`` x ``n`` multinomial counts: how often each key is drawn in each replicate."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=bootstrap).astype(np.float64)


def bootstrap_statistics(similarity: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` in each replicate of ``weights`` (see the module docstring).

    With all weights 1 this is :func:`pair_statistics`.
    """
    n = len(similarity)
    diagonal = np.diag(similarity)
    a_to_b = weights @ retrieval_credits(similarity) / n
    b_to_a = weights @ retrieval_credits(similarity.T) / n
    pairs = weights @ diagonal / n
    quadratic = np.concatenate([np.einsum("bi,bi->b", chunk @ similarity, chunk)
                                for chunk in np.split(weights, range(CHUNK, len(weights), CHUNK))])
    squares = weights ** 2
    count = n * n - squares.sum(axis=1)  # 0 when a replicate drew one key n times: no non-pair, NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        non_pairs = np.where(count > 0, (quadratic - squares @ diagonal) / np.where(count > 0, count, 1), np.nan)
    return {"retrieval": (a_to_b + b_to_a) / 2, "retrieval_a_to_b": a_to_b, "retrieval_b_to_a": b_to_a,
            "cosine_gap": pairs - non_pairs, "cosine_pairs": pairs, "cosine_non_pairs": non_pairs}


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of the finite replicates (NaN, NaN when there are none)."""
    replicates = None if replicates is None else np.asarray(replicates, dtype=float)
    if replicates is None or not np.isfinite(replicates).any():
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def pair_rows(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], language_a: str, language_b: str, *,
              reference: str, bootstrap: int, confidence: float, seed: int) -> list[dict]:
    """The rows of ``alignment.csv`` for one language pair: every model's metrics, then each other model's
    difference from ``reference``; ``embeddings[model] = (A's vectors, B's vectors)``, rows aligned by key."""
    n = len(next(iter(embeddings.values()))[0])
    weights = key_weights(n, bootstrap, rng_for(seed, "alignment", language_a, language_b)) if bootstrap else None
    values, replicates = {}, {}
    for model, (a, b) in embeddings.items():
        similarity = cosine_matrix(a, b)
        values[model] = pair_statistics(similarity)
        replicates[model] = bootstrap_statistics(similarity, weights) if bootstrap else {}
    rows = []
    base = {"language_a": language_a, "language_b": language_b, "n_items": n}
    for model in embeddings:
        for metric in METRICS:
            low, high = percentile_interval(replicates[model].get(metric), confidence)
            rows.append({"model": model, "compared_with": "", **base, "metric": metric,
                         "value": values[model][metric], "ci_low": low, "ci_high": high})
    for model in embeddings:
        if model == reference:
            continue
        for metric in METRICS:
            difference = (replicates[model][metric] - replicates[reference][metric]) if bootstrap else None
            low, high = percentile_interval(difference, confidence)
            rows.append({"model": model, "compared_with": reference, **base, "metric": metric,
                         "value": values[model][metric] - values[reference][metric], "ci_low": low, "ci_high": high})
    return rows


# ---- input -----------------------------------------------------------------------------------

def parallel_sentences(table: pd.DataFrame, path: Path, args) -> tuple[pd.DataFrame, list[str]]:
    """The input reduced to (language, key, text) of ``--languages`` and a seeded sample of ``--max_items`` keys."""
    keys = list(args.key_columns)
    require_columns(table, [args.language_column, args.text_column, *keys], path,
                    "pass --language_column, --text_column and --key_columns naming them (the identity sets of "
                    "analysis.identity_sets have language, text, group_id and frame_id)")
    table = table.assign(_language=table[args.language_column].astype(str),
                         _key=table[keys].astype(str).agg("\x1f".join, axis=1))
    present = list(dict.fromkeys(table["_language"]))
    languages = args.languages or sorted(present)
    missing = [language for language in languages if language not in present]
    if missing:
        raise UserError(f"{path} has no sentences in {', '.join(missing)}; its languages are {', '.join(present)}")
    if len(languages) < 2:
        raise UserError(f"alignment needs at least two languages; {path} has {', '.join(present)} (pass --languages)")
    table = table[table["_language"].isin(languages)]
    if table[args.text_column].isna().any():
        row = int(np.flatnonzero(table[args.text_column].isna().to_numpy())[0])
        raise UserError(f"{path}: a row of language {table['_language'].iloc[row]} has no text in "
                        f"{args.text_column!r}; every parallel sentence needs its text")
    duplicated = table.duplicated(["_language", "_key"])
    if duplicated.any():
        first = table[duplicated].iloc[0]
        raise UserError(f"{path}: key ({', '.join(keys)}) = {first['_key'].replace(chr(31), ', ')!r} occurs twice in "
                        f"{first['_language']}; pass --key_columns that name one sentence per language")
    if args.max_items:
        all_keys = sorted(set(table["_key"]))
        if len(all_keys) > args.max_items:
            rng = rng_for(args.seed, "alignment", "max_items")
            kept = set(rng.choice(np.array(all_keys, dtype=object), size=args.max_items, replace=False))
            table = table[table["_key"].isin(kept)]
    return table[["_language", "_key", args.text_column]].rename(columns={args.text_column: "_text"}), languages


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m analysis.alignment",
        description="Translation retrieval accuracy and cosine gap of several encoders on parallel sentences, per "
                    "language pair, with bootstrap intervals over the sentences (keys).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
    )
    add = parser.add_argument
    add("--models", nargs="+", required=True, metavar="MODEL",
        help="tiny-xlmr, base, names in results/models/, model folders or hub ids")
    add("--input", required=True, help="parallel sentences: identity_set.csv of analysis.identity_sets, or any "
                                       "csv/tsv/jsonl/parquet with language, text and key columns")
    add("--key_columns", nargs="+", default=list(DEFAULT_KEYS), metavar="COLUMN",
        help="columns naming the same sentence in every language (default: group_id frame_id)")
    add("--language_column", default="language", help="default: language")
    add("--text_column", default="text", help="default: text")
    add("--languages", nargs="+", default=None, metavar="LANG", help="default: every language of the input")
    add("--max_items", type=int, default=1000,
        help="use a seeded random sample of this many keys (default: 1000; 0 = all)")
    add("--reference", default=None, help="the model the others are compared with (default: the first)")
    add("--pooling", default=None, choices=POOLINGS,
        help=f"default: each multi-task model's training pooling, else {DEFAULT_POOLING}")
    add("--projection", default="auto", choices=PROJECTIONS,
        help="apply each model's embedding_size projection: auto (when it has one; default), on, off")
    add("--bootstrap", type=int, default=1000, help="bootstrap resamples of the keys (default: 1000; 0 = none)")
    add("--confidence", type=float, default=0.95, help="default: 0.95")
    add("--seed", type=int, default=0, help="default: 0")
    add("--batch_size", type=int, default=32, help="texts per forward pass (default: 32)")
    add("--max_length", type=int, default=None, help="tokens per text (default: each model's)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    add("--output_dir", default=None, help="default: results/analysis/<run_name>")
    add("--run_name", default=None, help="default: alignment_<models>")
    add_overwrite_option(parser)
    return parser


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_bootstrap_options(args)
    check_embedding_options(args.pooling, "none")
    if args.max_items < 0:
        raise UserError(f"--max_items must be 0 (all) or more, got {args.max_items}")
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    sources = [model_source(name) for name in args.models]
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        raise UserError(f"two models have the same name ({', '.join(names)}); pass each model once, or folders with "
                        f"distinct names")
    reference = args.reference or names[0]
    if reference not in names:
        raise UserError(f"--reference {reference!r} is not one of the models ({', '.join(names)})")
    projections = {name: check_projection(args.projection, name, source) for name, source in sources}
    path = Path(args.input)
    table, languages = parallel_sentences(read_table(path), path, args)
    target = output_folder(args, "analysis.alignment", "alignment_" + "_".join(names))

    from probing.engine import resolve_device

    device = resolve_device(args.device)
    texts = list(dict.fromkeys(table["_text"].astype(str)))
    vectors, models_used = {}, []
    for name, source in sources:
        encoder = load_encoder(name, source, max_length=args.max_length)
        pooling = args.pooling or encoder.trained_pooling or DEFAULT_POOLING
        matrix = embed_texts(encoder, texts, pooling=pooling, normalization="none", project=projections[name],
                             batch_size=args.batch_size, device=device)
        vectors[name] = dict(zip(texts, matrix))
        models_used.append({**encoder.record(), "pooling": pooling, "projection": projections[name]})
        del encoder
    by_language = {language: block.set_index("_key")["_text"].astype(str)
                   for language, block in table.groupby("_language")}
    rows, skipped = [], []
    for language_a, language_b in itertools.combinations(languages, 2):
        common = sorted(set(by_language[language_a].index) & set(by_language[language_b].index))
        if len(common) < 2:
            skipped.append(f"{language_a}-{language_b}")
            continue
        embeddings = {name: (np.stack([vectors[name][t] for t in by_language[language_a][common]]),
                             np.stack([vectors[name][t] for t in by_language[language_b][common]]))
                      for name in names}
        rows += pair_rows(embeddings, language_a, language_b, reference=reference, bootstrap=args.bootstrap,
                          confidence=args.confidence, seed=args.seed)
    if not rows:
        raise UserError(f"no language pair of {path} shares two keys ({', '.join(args.key_columns)}); pass "
                        f"--key_columns that name the same sentence across languages")
    result = pd.DataFrame(rows, columns=COLUMNS)
    manifest = {
        "command": command_line("analysis.alignment", argv),
        "parameters": vars(args),
        "seed": args.seed,
        "inputs": [input_record(path, len(table), languages=languages, key_columns=args.key_columns)],
        "models": models_used,
        "reference": reference,
        "normalize": "none (cosines do not depend on it)",
        "pairs": "unordered language pairs; retrieval_a_to_b queries language_a among language_b's sentences",
        "interval": f"percentile bootstrap over keys, {args.bootstrap} resamples, the same keys for every model "
                    f"(paired differences); retrieval credits against the full candidate set",
        "tie_tolerance": TIE_TOLERANCE,
        "skipped_pairs": skipped,
    }
    save_run(target, {"alignment.csv": result}, manifest, overwrite=args.overwrite)
    if skipped:
        print(f"note: {len(skipped)} language pair(s) share fewer than 2 keys and were skipped: {', '.join(skipped)}",
              file=sys.stderr)
    n_pairs = len(result[["language_a", "language_b"]].drop_duplicates())
    print(f"wrote alignment of {len(names)} model(s) over {n_pairs} language pair(s) to {target / 'alignment.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
