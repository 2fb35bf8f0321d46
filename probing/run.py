"""Probe a masked LM with the prompt templates and write emotion profiles per group and language.

    python -m probing.run --finetuned_model french

writes ``results/profiles/<run_name>/{predictions.csv, profiles.csv, manifest.json}`` (see
README, "Output formats"). The steps are: load (prompts, lexicons, model), score (top-k at the
mask, :mod:`probing.engine`), filter (:mod:`probing.words`), aggregate
(:mod:`probing.profiles`) and save (:mod:`probing.manifest`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from probing import engine, models, prompts as prompt_files, words as vocab_words
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error
from probing.lexicon import EMOTIONS, Lexicon, _lemmatize, load_lexicon, parse_lexicon_spec
from probing.manifest import SCHEMA_VERSION, AtomicFolder, check_writable, environment, now_utc, sha256_file, write_json
from probing.profiles import WEIGHTINGS, emotion_profile

PROFILES_DIR = Path(__file__).resolve().parent.parent / "results" / "profiles"
PREDICTION_COLUMNS = [
    "model", "language", "category", "group_id", "group", "template_id", "sentence", "rank",
    "token", "word", "lemma", "log_prob", "score", "kept", "drop_reason",
]
PROFILE_COLUMNS = ["model", "language", "category", "group_id", "group", *EMOTIONS, "n_words", "n_covered"]
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}

EXAMPLES = """examples:
  python -m probing.run --model tiny-xlmr                      # offline demo model
  python -m probing.run --finetuned_model french --languages fr en
  python -m probing.run --model /models/xlm-roberta-base --scoring typicality --weighting probability
  python -m probing.run --lexicon nrc:NRC-Emotion-Lexicon-ForVariousLanguages.txt
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m probing.run",
        description="Fill masked templates about social groups and write emotion profiles.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--finetuned_model", default="base",
        help="'base' (FacebookAI/xlm-roberta-base), 'tiny-xlmr', or a name in results/models/ (default: base)")
    add("--model", default=None, metavar="PATH_OR_ID", help="a model folder or hub id; overrides --finetuned_model")
    add("--revision", default=None, help="hub revision (branch, tag or commit) of the model")
    add("--languages", nargs="+", default=None, metavar="LANG", help="default: every language in prompts/")
    add("--categories", nargs="+", default=None, metavar="CATEGORY", help="default: all nine categories")
    add("--top_k", type=int, default=200, help="candidates per sentence (default: 200)")
    add("--scoring", choices=engine.SCORINGS, default="raw", help="raw log p, or typicality log p - log p_prior")
    add("--typicality_pool", type=int, default=engine.DEFAULT_TYPICALITY_POOL,
        help="typicality ranks only the N most probable tokens (default: 1000; at least --top_k)")
    add("--weighting", choices=WEIGHTINGS, default="count", help="profile weighting (default: count)")
    add("--lexicon", default="emoatlas", metavar="emoatlas|nrc:PATH", help="emotion lexicon (default: emoatlas)")
    add("--batch_size", type=int, default=32, help="sentences per forward pass (default: 32)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    add("--precision", default="fp32", choices=sorted(PRECISIONS), help="forward-pass precision (default: fp32)")
    add("--prompts_dir", default=str(prompt_files.PROMPTS_DIR), help="folder of prompt files (default: prompts/)")
    add("--output_dir", default=None, help="result folder (default: results/profiles/<run_name>)")
    add("--run_name", default=None, help="default: the model's name")
    add("--seed", type=int, default=0, help="random seed, recorded in the manifest (default: 0)")
    add("--quiet", action="store_true", help="no progress bar")
    return parser


def validate_args(args) -> None:
    if args.top_k < 1:
        raise UserError(f"--top_k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.typicality_pool < 1:
        raise UserError(f"--typicality_pool must be at least 1, got {args.typicality_pool}")
    if args.categories:
        unknown = [c for c in args.categories if c not in prompt_files.CATEGORIES]
        if unknown:
            raise UserError(
                f"unknown category {unknown[0]!r}; expected some of {', '.join(prompt_files.CATEGORIES)}"
            )
    parse_lexicon_spec(args.lexicon)


@dataclass
class LanguageData:
    prompts: prompt_files.LanguagePrompts
    lexicon: Lexicon


def load_language_data(args) -> dict[str, LanguageData]:
    loaded = prompt_files.load_languages(args.languages, args.prompts_dir)
    return {
        lang: LanguageData(p, load_lexicon(args.lexicon, lang, p.name, p.lemmatizer))
        for lang, p in loaded.items()
    }


def predictions_table(model_name, prompts, top, vocab, data: dict[str, LanguageData]) -> pd.DataFrame:
    """One row per (sentence, rank): the candidate, its lemma, scores and whether it is kept."""
    script_masks = {lang: vocab.script_mask(d.prompts.script) for lang, d in data.items()}
    columns = {name: [] for name in PREDICTION_COLUMNS}
    group_cache: dict[tuple[str, str], tuple[set, set]] = {}
    for prompt, result in zip(prompts, top):
        language = data[prompt.language]
        key = (prompt.language, prompt.group_id)
        if key not in group_cache:
            group = next(g for g in language.prompts.groups if g.id == prompt.group_id)
            forms = vocab_words.group_words(group.surface_forms())
            group_cache[key] = (forms, {_lemmatize(w, language.lexicon.lemmatizer) for w in forms})
        forms, lemmas = group_cache[key]
        ids = result.token_ids
        for rank, token_id in enumerate(ids, start=1):
            word = vocab.words[token_id]
            lemma = ""
            if not vocab.word_start[token_id]:
                reason = vocab_words.NOT_WORD_START
            elif not script_masks[prompt.language][token_id]:
                reason = vocab_words.NOT_SCRIPT
            else:
                lemma, _ = language.lexicon.lookup(word)
                folded = word.lower()
                reason = vocab_words.GROUP_WORD if folded in forms or lemma in lemmas else ""
            columns["rank"].append(rank)
            columns["word"].append(word)
            columns["lemma"].append(lemma)
            columns["drop_reason"].append(reason)
        n = len(ids)
        for name, value in (("model", model_name), ("language", prompt.language), ("category", prompt.category),
                            ("group_id", prompt.group_id), ("group", prompt.group),
                            ("template_id", prompt.template_id), ("sentence", prompt.sentence)):
            columns[name].extend([value] * n)
        columns["token"].extend(vocab.tokens[i] for i in ids)
        columns["log_prob"].extend(result.log_probs.tolist())
        columns["score"].extend(result.scores.tolist())
    table = pd.DataFrame({k: v for k, v in columns.items() if k != "kept"})
    table["kept"] = table["drop_reason"] == ""
    return table[PREDICTION_COLUMNS]


def profiles_table(predictions: pd.DataFrame, data: dict[str, LanguageData], weighting: str,
                   groups: list[tuple[str, str, str, str]], model_name: str) -> pd.DataFrame:
    """One row per (language, group): the emotion profile of its unique kept words."""
    kept = predictions[predictions["kept"]].assign(
        key=lambda t: t["word"].str.lower(), mass=lambda t: np.exp(t["log_prob"]))
    by_group = {k: g for k, g in kept.groupby(["language", "group_id"], sort=False)}
    rows = []
    for language, category, group_id, group_text in groups:
        lexicon = data[language].lexicon
        words = by_group.get((language, group_id))
        if words is None:
            dims, mass = [], []
        else:
            per_word = words.groupby("key", sort=True).agg(word=("word", "first"), mass=("mass", "sum"))
            dims = [lexicon.lookup(w)[1] for w in per_word["word"]]
            mass = per_word["mass"].to_numpy()
        profile = emotion_profile(dims, mass, weighting=weighting)
        rows.append({"model": model_name, "language": language, "category": category,
                     "group_id": group_id, "group": group_text, **profile})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    validate_args(args)
    data = load_language_data(args)
    model_name, source = models.resolve_model(args.finetuned_model, args.model)
    run_name = args.run_name or model_name
    output_dir = Path(args.output_dir) if args.output_dir else PROFILES_DIR / run_name
    check_writable(output_dir)
    device = engine.resolve_device(args.device)

    import torch
    import transformers

    transformers.logging.disable_progress_bar()  # weight-loading bars; ours shows the probing
    torch.manual_seed(args.seed)
    loaded = models.load_masked_lm(model_name, source, revision=args.revision)
    if loaded.random_weights:
        print(f"warning: {model_name} has random weights: its profiles mean nothing (for tests and demos only)",
              file=sys.stderr)
    scorer = engine.MaskedLMScorer(loaded.model, loaded.tokenizer, device=device, batch_size=args.batch_size,
                                   dtype=getattr(torch, PRECISIONS[args.precision]), progress=not args.quiet)
    vocab = vocab_words.vocabulary(loaded.tokenizer)

    prompts = [p for d in data.values()
               for p in prompt_files.build_prompts(d.prompts, mask_token=loaded.tokenizer.mask_token,
                                                   categories=args.categories)]
    if not prompts:
        raise UserError("no groups to probe for these languages and categories")
    top = scorer.top_k([p.sentence for p in prompts], k=args.top_k, scoring=args.scoring,
                       prior_sentences=[p.prior_sentence for p in prompts],
                       prior_mask_index=[p.prior_mask_index for p in prompts],
                       typicality_pool=args.typicality_pool)
    predictions = predictions_table(model_name, prompts, top, vocab, data)
    groups = list(dict.fromkeys((p.language, p.category, p.group_id, p.group) for p in prompts))
    profiles = profiles_table(predictions, data, args.weighting, groups, model_name)

    with AtomicFolder(output_dir) as staging:
        predictions.to_csv(staging / "predictions.csv", index=False)
        profiles.to_csv(staging / "profiles.csv", index=False)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "created": now_utc(),
            "command": ["python", "-m", "probing.run", *(argv if argv is not None else sys.argv[1:])],
            "model": {
                "name": model_name, "source": source, "revision": loaded.revision,
                "random_weights": loaded.random_weights, "head": loaded.head,
                "class": type(loaded.model).__name__,
                "n_parameters": sum(p.numel() for p in loaded.model.parameters()),
                "dtype": args.precision, "device": str(device),
                "lm_head_at_mask_only": scorer.head is not None,
                "onednn_linears": scorer.fast_path,
            },
            "parameters": vars(args),
            "seed": args.seed,
            "prompts": {lang: {"file": str(d.prompts.path.name), "version": d.prompts.version,
                               "sha256": d.prompts.sha256} for lang, d in data.items()},
            "lexicon": {lang: {"source": d.lexicon.source, "files": [str(f) for f in d.lexicon.files],
                               "sha256": d.lexicon.sha256, "n_entries": len(d.lexicon.entries)}
                        for lang, d in data.items()},
            "vocabulary": {"scheme": vocab.scheme, "size": len(vocab.words)},
            "dropped": predictions["drop_reason"].replace("", "kept").value_counts().to_dict(),
            "env": environment(),
            "outputs": {name: {"rows": len(table), "sha256": sha256_file(staging / name)}
                        for name, table in (("predictions.csv", predictions), ("profiles.csv", profiles))},
        }
        write_json(staging / "manifest.json", manifest)
    covered = int((profiles["n_covered"] > 0).sum())
    print(f"wrote {len(predictions)} predictions and {len(profiles)} profiles "
          f"({covered} with lexicon coverage) to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
