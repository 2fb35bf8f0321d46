"""Probe a masked LM with the prompt templates and write emotion profiles per group and language.

    python -m probing.run --finetuned_model french

writes ``results/profiles/<run_name>/{predictions.parquet, profiles.csv, filters.csv,
manifest.json}`` (see README, "Output formats"). The steps are: load (prompts, lexicons, word
lists, model), score shard by shard (top-k at the mask, :mod:`probing.engine`; each shard saved
in a staging folder so that an interrupted run resumes, :mod:`probing.shards`), then build the
tables column-wise (word filters and profiles, :mod:`probing.predictions`) and save them with
their manifest (:mod:`probing.manifest`).
"""

from __future__ import annotations

import os
import signal
import sys

from probing.errors import INTERRUPTED_EXIT_CODE  # a light import (no torch, no pandas): before the handler

if __name__ == "__main__":
    def _interrupted_while_starting(signum, frame):
        sys.stderr.write("interrupted while starting; nothing was written\n")
        sys.stderr.flush()
        os._exit(INTERRUPTED_EXIT_CODE)

    # Why: importing torch and pandas below takes seconds, and Ctrl-C inside an import would print a
    # long traceback; nothing is written yet, so ending at once is all there is to do. The default
    # handler is back before main runs.
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import argparse  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from probing import candidates as candidate_sets, engine, models, prompts as prompt_files, words as vocab_words  # noqa: E402,E501
from probing.errors import OneLineArgumentParser, UserError, exits_on_user_error  # noqa: E402
from probing.lexicon import Lexicon, load_lexicon, parse_lexicon_spec  # noqa: E402
from probing.manifest import (SCHEMA_VERSION, AtomicFolder, add_overwrite_option, check_plain_name,  # noqa: E402
                              claim_output, environment, make_parents, now_utc, remove_created, sha256_file,
                              write_json)
from probing.predictions import (PREDICTION_COLUMNS, PREDICTIONS_FILE, PROFILE_COLUMNS, TokenClassifier,  # noqa: E402,F401
                                 WordClassifier, build_shard, write_predictions)
from probing.profiles import WEIGHTINGS  # noqa: E402
from probing.shards import ShardStore, model_stamp, plan_shards  # noqa: E402
from probing.word_scoring import DEFAULT_SHORTLIST_FACTOR, WordScorer  # noqa: E402

PROFILES_DIR = Path(__file__).resolve().parent.parent / "results" / "profiles"
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}
COMPLETIONS = ("word", "token")
DEFAULT_COMPLETIONS = "word"
CANDIDATES_FILE = "candidates.parquet"
DEFAULT_SHARD_SENTENCES = 2000

EXAMPLES = """examples:
  python -m probing.run --model tiny-xlmr                      # offline demo model
  python -m probing.run --finetuned_model french --languages fr en
  python -m probing.run --model /models/xlm-roberta-base --scoring typicality --weighting probability
  python -m probing.run --lexicon nrc:NRC-Emotion-Lexicon-ForVariousLanguages.txt
  python -m probing.run --model tiny-xlmr --min_zipf 3     # stricter: only words seen once per million

An interrupted run (Ctrl-C, a crash, a killed job) resumes when the same command is run again.
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
    add("--completions", choices=COMPLETIONS, default=DEFAULT_COMPLETIONS,
        help="word: rank whole words of a candidate set, each scored by the chain rule over its pieces; token: "
             f"one token at one mask, as the single-token studies did (default: {DEFAULT_COMPLETIONS})")
    add("--candidates", nargs="+", default=None, metavar="LANG=PATH",
        help="word mode: your own candidate words for a language, one per line (default: the lexicon's "
             "entries and their dictionary forms, and the language's frequent words)")
    add("--max_pieces", type=int, default=candidate_sets.MAX_PIECES,
        help=f"word mode: longest candidate in pieces; longer ones are dropped and counted in filters.csv "
             f"(default: {candidate_sets.MAX_PIECES})")
    add("--frequent_words", type=int, default=candidate_sets.DEFAULT_FREQUENT_WORDS,
        help=f"word mode: how many of the language's most frequent words join the candidates "
             f"(default: {candidate_sets.DEFAULT_FREQUENT_WORDS})")
    add("--shortlist_factor", type=float, default=DEFAULT_SHORTLIST_FACTOR,
        help=f"word mode: the first stage keeps this many times --top_k (or the typicality pool) words for exact "
             f"chain-rule scoring (default: {DEFAULT_SHORTLIST_FACTOR})")
    add("--top_k", type=int, default=200, help="completions per sentence (default: 200)")
    add("--scoring", choices=engine.SCORINGS, default="raw", help="raw log p, or typicality log p - log p_prior")
    add("--typicality_pool", type=int, default=engine.DEFAULT_TYPICALITY_POOL,
        help="typicality ranks only the N most probable tokens (default: 1000; at least --top_k)")
    add("--weighting", choices=WEIGHTINGS, default="count", help="profile weighting (default: count)")
    add("--lexicon", default="emoatlas", metavar="emoatlas|nrc:PATH", help="emotion lexicon (default: emoatlas)")
    add("--min_zipf", type=float, default=vocab_words.DEFAULT_MIN_ZIPF,
        help="a completion is a word of the language if its word-frequency list has it (or its lemma) at this "
             f"Zipf frequency or more, or its lexicon lists it (default: {vocab_words.DEFAULT_MIN_ZIPF}; "
             "3 = once per million words)")
    add("--batch_size", type=int, default=64, help="sentences per forward pass (default: 64)")
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    add("--precision", default="fp32", choices=sorted(PRECISIONS), help="forward-pass precision (default: fp32)")
    add("--prompts_dir", default=str(prompt_files.PROMPTS_DIR), help="folder of prompt files (default: prompts/)")
    add("--output_dir", default=None, help="result folder (default: results/profiles/<run_name>)")
    add("--run_name", default=None, help="default: the model's name")
    add_overwrite_option(parser)
    add("--seed", type=int, default=0, help="random seed, recorded in the manifest (default: 0)")
    add("--shard_sentences", type=int, default=DEFAULT_SHARD_SENTENCES,
        help=f"at most this many sentences per saved shard; an interrupted run resumes from the last complete "
             f"shard (default: {DEFAULT_SHARD_SENTENCES})")
    add("--quiet", action="store_true", help="no progress bar")
    return parser


def validate_args(args) -> None:
    if args.top_k < 1:
        raise UserError(f"--top_k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.typicality_pool < 1:
        raise UserError(f"--typicality_pool must be at least 1, got {args.typicality_pool}")
    if args.shard_sentences < 1:
        raise UserError(f"--shard_sentences must be at least 1, got {args.shard_sentences}")
    if args.max_pieces < 1:
        raise UserError(f"--max_pieces must be at least 1, got {args.max_pieces}")
    if args.frequent_words < 0:
        raise UserError(f"--frequent_words must be 0 or more, got {args.frequent_words}")
    if not args.shortlist_factor >= 1:
        raise UserError(f"--shortlist_factor must be at least 1, got {args.shortlist_factor}")
    args.candidate_files = user_candidate_files(args)
    if not 0 <= args.min_zipf <= 8:
        raise UserError(f"--min_zipf must lie in [0, 8] (3 = once per million words), got {args.min_zipf}")
    if args.categories:
        unknown = [c for c in args.categories if c not in prompt_files.CATEGORIES]
        if unknown:
            raise UserError(
                f"unknown category {unknown[0]!r}; expected some of {', '.join(prompt_files.CATEGORIES)}"
            )
    parse_lexicon_spec(args.lexicon)


def user_candidate_files(args) -> dict[str, Path]:
    """``--candidates LANG=PATH ...`` as ``{language: path}`` (checked: word mode, known syntax)."""
    if not args.candidates:
        return {}
    if args.completions != "word":
        raise UserError("--candidates needs --completions word (token mode ranks the vocabulary's tokens)")
    files = {}
    for spec in args.candidates:
        language, sep, path = spec.partition("=")
        if not sep or not language or not path:
            raise UserError(f"--candidates {spec!r} is not LANG=PATH; write e.g. --candidates fr=my_words_fr.txt")
        if language in files:
            raise UserError(f"--candidates names {language} twice; pass one file per language")
        if args.languages and language not in args.languages:
            raise UserError(f"--candidates gives a list for {language}, which is not among --languages "
                            f"{' '.join(args.languages)}")
        files[language] = Path(path)
    return files


@dataclass
class LanguageData:
    prompts: prompt_files.LanguagePrompts
    lexicon: Lexicon


def load_language_data(args) -> dict[str, LanguageData]:
    loaded = prompt_files.load_languages(args.languages, args.prompts_dir)
    data = {lang: LanguageData(p, load_lexicon(args.lexicon, lang, p.name, p.lemmatizer)) for lang, p in loaded.items()}
    for lang in data:  # noted once every lexicon has loaded: nothing is printed before a refusal
        if not vocab_words.has_word_list(lang):
            print(f"note: wordfreq has no word list for {lang}; only words the lexicon lists (or their lemmas) "
                  f"are kept", file=sys.stderr)
    return data


def build_candidates(args, data: dict[str, LanguageData], tokenizer) -> dict:
    """Word mode: each language's candidate set (:class:`probing.candidates.PackedCandidateSet`:
    one language's word list and candidate set in Python objects at a time); ``{}`` in token mode."""
    if args.completions != "word":
        return {}
    unknown = sorted(set(args.candidate_files) - set(data))
    if unknown:
        raise UserError(f"--candidates gives a list for {unknown[0]}, which is not a probed language "
                        f"({' '.join(data)})")
    sets = {}
    for language, d in data.items():
        sets[language] = candidate_sets.language_candidate_set(
            language, d.prompts, d.lexicon, tokenizer, min_zipf=args.min_zipf, max_pieces=args.max_pieces,
            frequent_words=args.frequent_words, user_list=args.candidate_files.get(language)).pack()
        d.lexicon.keys_index.forget()
        vocab_words.forget_lemmas()
        release_freed_memory()
        if args.top_k > len(sets[language]):
            raise UserError(f"--top_k {args.top_k} is more than the {len(sets[language])} candidate words of "
                            f"{language}; pass --top_k {len(sets[language])} or less")
    return sets


def completions_record(args, candidates: dict) -> dict:
    """How completions were made (the manifest's ``completions``; part of the run's fingerprint)."""
    if args.completions == "token":
        return {"mode": "token"}
    return {"mode": "word", "max_pieces": args.max_pieces, "shortlist_factor": args.shortlist_factor,
            "frequent_words": args.frequent_words,
            "candidates": {language: {"n": len(c), "description": c.description, "sha256": c.sha256,
                                      "by_source": c.by_source, "by_pieces": c.by_pieces, "dropped": c.drop_counts}
                           for language, c in candidates.items()}}


def run_fingerprint(args, loaded, scorer, prompts, plan, candidates) -> dict:
    """Everything that changes the engine's arrays (what a shard holds), for resuming.

    The lexicon, word filters and weighting act after the engine: a rerun that changes only them
    reuses the shards.
    """
    sentences = hashlib.sha256()
    for p in prompts:
        sentences.update(f"{p.sentence}\x1f{p.prior_sentence}\x1f{p.prior_mask_index}\x1e".encode())
    env = environment()
    return {
        "model": model_stamp(loaded.source, loaded.revision),
        "engine": {"top_k": args.top_k, "scoring": args.scoring, "typicality_pool": args.typicality_pool,
                   "batch_size": args.batch_size, "device": str(scorer.device), "precision": args.precision,
                   "onednn_linears": scorer.fast_path, "last_layer_at_mask": scorer.last_layer_at_mask},
        "sentences_sha256": sentences.hexdigest(),
        "completions": ({"mode": "token"} if args.completions == "token" else
                        {"mode": "word", "shortlist_factor": args.shortlist_factor,
                         "candidates": {language: c.sha256 for language, c in candidates.items()}}),
        "shards": [[shard.language, shard.start, shard.stop] for shard in plan],
        "packages": {name: env["packages"].get(name) for name in ("torch", "transformers", "tokenizers")},
        "git_commit": env["git"]["commit"],
    }


def score_shards(scorer, prompts, plan, store: ShardStore, done: set[int], args, candidates: dict) -> None:
    """Score every shard not yet in ``done`` and save it (in word mode with the shard's language's
    candidate words: the arrays' ids are candidate indices)."""
    words: dict = {}
    for shard in plan:
        if shard.index in done:
            continue
        chunk = prompts[shard.start:shard.stop]
        engine_for_shard = scorer
        if candidates:
            if words.get("language") != shard.language:
                words.clear()
                release_freed_memory()
                words.update(language=shard.language, scorer=WordScorer(
                    scorer, candidates[shard.language].unpack().pieces, shortlist_factor=args.shortlist_factor))
            engine_for_shard = words["scorer"]
        top = engine_for_shard.top_k([p.sentence for p in chunk], k=args.top_k, scoring=args.scoring,
                           prior_sentences=[p.prior_sentence for p in chunk],
                           prior_mask_index=[p.prior_mask_index for p in chunk],
                           typicality_pool=args.typicality_pool, desc=f"shard {shard.index + 1}/{len(plan)} {shard.language}")
        store.save(shard.index, top.token_ids, top.log_probs, top.scores)
        done.add(shard.index)


def assemble(staging: Path, model_name, prompts, plan, store: ShardStore, vocab, data, args, candidates: dict):
    """Build predictions.parquet shard by shard (each a row group) and the profiles of all groups.

    Returns ``(rows, seconds spent writing predictions, profiles, filters, word_lists, lexicon_reach)``.
    One language's word list and lemma dictionary are in memory at a time (shards are ordered by
    language), so memory does not grow with the number of languages. (Word mode needs no word
    list here: the candidates passed the word filters when the set was built.)
    """
    profiles, counts, word_lists, reach = [], {}, {}, {}
    current: dict = {}
    other_languages = vocab_words.other_language_index(vocab.word_keys()) if not candidates else None

    def for_language(language: str) -> dict:
        if current.get("language") != language:
            if current:
                data[current["language"]].lexicon.keys_index.forget()
            current.clear()  # release the previous language's word list first
            vocab_words.forget_lemmas()
            release_freed_memory()
            d = data[language]
            if candidates:
                unpacked = candidates[language].unpack()
                classifier = WordClassifier(unpacked, vocab, d.prompts.lemmatizer, d.lexicon)
                reach[language] = lexicon_reach(d.lexicon, unpacked.words)
            else:
                words = vocab_words.language_words(language, d.prompts.lemmatizer, d.lexicon.keys_index,
                                                   min_zipf=args.min_zipf, other_languages=other_languages)
                word_lists[language] = {"source": "wordfreq" if words.frequent is not None else None,
                                        "min_zipf": words.min_zipf,
                                        "n_words": len(words.frequent) if words.frequent is not None else 0}
                classifier = TokenClassifier(vocab, d.prompts.script, words, d.lexicon)
                reach[language] = lexicon_reach(d.lexicon, classifier.reachable_words())
            current.update(language=language, classifier=classifier,
                           group_keys={g.id: vocab_words.group_word_keys(g.surface_forms(), d.prompts.lemmatizer)
                                       for g in d.prompts.groups})
        return current

    def tables():
        for shard in plan:
            token_ids, log_probs, scores = store.load(shard.index)
            language = for_language(shard.language)
            built = build_shard(model_name, prompts[shard.start:shard.stop], token_ids, log_probs, scores,
                                language["classifier"], language["group_keys"], args.weighting)
            profiles.append(built.profiles)
            language_counts = counts.setdefault(shard.language, {})
            for reason, n in built.drop_counts.items():
                language_counts[reason] = language_counts.get(reason, 0) + n
            yield built.predictions
        current.clear()

    rows, write_seconds = write_predictions(staging / PREDICTIONS_FILE, tables())
    dropped = {language: {"kept": len(c), **c.drop_counts} for language, c in candidates.items()}
    return (rows, write_seconds, pd.concat(profiles, ignore_index=True)[PROFILE_COLUMNS],
            filters_table(counts, dropped), word_lists, reach)


def lexicon_reach(lexicon: Lexicon, words) -> float:
    """The share of ``lexicon``'s entries that at least one of ``words`` matches
    (:meth:`probing.lexicon.Lexicon.entry_of`): which emotions a run's completions could express at
    all. Token mode passes the words of the single tokens that pass the word filters; word mode the
    candidate words."""
    if not lexicon.entries:
        return float("nan")
    reached = {lexicon.entry_of(word) for word in words}
    reached.discard(None)
    return len(reached) / len(lexicon.entries)


def release_freed_memory() -> None:
    """Hand the freed heap back to the OS (glibc's ``malloc_trim``).

    Why: a language's word list and lemma dictionary are ~10^5-10^6 small objects; once freed
    (by reference counting: they hold no cycles), glibc keeps their pages, fragmented, and the next
    language's land beside them, so without this the peak grows with every language probed.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to trim
        pass


FILTER_STAGES = ("candidates", "completions")


def filters_table(counts: dict[str, dict[str, int]], dropped: dict[str, dict[str, int]] | None = None) -> pd.DataFrame:
    """One row per language, stage and outcome, with its count and share within the stage.

    ``completions`` (``counts``): the top-k rows, ``kept`` or a drop reason. ``candidates``
    (word mode, ``dropped``): the words left out of the candidate set before scoring, by reason
    (e.g. ``too_many_pieces``), their share being of all words considered for the set.
    """
    rows = []
    for stage, table in (("candidates", dropped or {}), ("completions", counts)):
        for language, by_reason in table.items():
            total = sum(by_reason.values())
            for reason, n in by_reason.items():
                rows.append({"language": language, "stage": stage, "outcome": reason, "n": n,
                             "share": n / total if total else float("nan")})
    return pd.DataFrame(rows, columns=["language", "stage", "outcome", "n", "share"])


def write_results(output_dir: Path, argv, args, model_name: str, model_info: dict, prompts, plan,
                  store: ShardStore, vocab, data, candidates: dict, *, timings: dict, resumed: int, passes: int):
    """Build the tables from the saved shards and write the result folder at once, manifest last.

    Returns ``(prediction rows, profiles, manifest)``.
    """
    tables_started = time.perf_counter()
    with AtomicFolder(output_dir, command="probing.run", overwrite=args.overwrite) as staging:
        rows, write_seconds, profiles, filters, word_lists, reach = assemble(
            staging, model_name, prompts, plan, store, vocab, data, args, candidates)
        timings = {**timings, "tables_s": time.perf_counter() - tables_started, "write_predictions_s": write_seconds}
        profiles.to_csv(staging / "profiles.csv", index=False)
        filters.to_csv(staging / "filters.csv", index=False)
        outputs = [(PREDICTIONS_FILE, rows), ("profiles.csv", len(profiles)), ("filters.csv", len(filters))]
        if candidates:
            candidate_rows = write_candidates(staging / CANDIDATES_FILE, candidates)
            outputs.append((CANDIDATES_FILE, candidate_rows))
        completed = filters[filters["stage"] == "completions"]
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "created": now_utc(),
            "command": ["python", "-m", "probing.run", *(argv if argv is not None else sys.argv[1:])],
            "model": model_info,
            "parameters": vars(args),
            "seed": args.seed,
            "prompts": {lang: {"file": str(d.prompts.path.name), "version": d.prompts.version,
                               "sha256": d.prompts.sha256} for lang, d in data.items()},
            "lexicon": {lang: {"source": d.lexicon.source, "files": [str(f) for f in d.lexicon.files],
                               "sha256": d.lexicon.sha256, "n_entries": len(d.lexicon.entries),
                               "n_emotional_entries": sum(1 for dims in d.lexicon.entries.values() if dims)}
                        for lang, d in data.items()},
            "word_lists": word_lists,
            "vocabulary": {"scheme": vocab.scheme, "size": len(vocab.words)},
            # forward passes of this invocation (a resumed run's earlier shards not counted)
            "completions": {**completions_record(args, candidates), "forward_passes": passes},
            "lexicon_reach": {lang: round(share, 6) for lang, share in reach.items()},
            "filters": {lang: {row.outcome: int(row.n) for row in part.itertuples()}
                        for lang, part in completed.groupby("language", sort=False)},
            "kept_share": {lang: float(part.loc[part["outcome"] == "kept", "share"].sum())
                           for lang, part in completed.groupby("language", sort=False)},
            "shards": {"planned": len(plan), "resumed": resumed, "max_sentences": args.shard_sentences},
            "timings": {name: round(value, 3) for name, value in timings.items()},
            "env": environment(),
            "outputs": {name: {"rows": n, "sha256": sha256_file(staging / name)} for name, n in outputs},
        }
        write_json(staging / "manifest.json", manifest)
    return rows, profiles, manifest


def write_candidates(path: Path, candidates: dict) -> int:
    """Every language's candidate set as one Parquet table (language, word, source, n_pieces,
    pieces), so a run's completions can be checked against what could have been completed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.concat([c.to_frame() for c in candidates.values()], ignore_index=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="zstd")
    return len(frame)


@dataclass
class RunState:
    """How far a run got: what Ctrl-C or a failure must say, and what it must clean up."""

    stage: str = "loading"  # then "scoring", "writing" (every shard saved), "done" (result in place)
    store: ShardStore | None = None
    created: list[Path] = field(default_factory=list)  # folders made for the output (make_parents)
    output_dir: Path | None = None

    def abandon(self) -> None:
        """If no shard is saved, delete the staging folder and the folders made for the output (so
        a run that fails or is stopped early leaves nothing behind); otherwise keep the shards."""
        if self.store is not None and not self.store.abandon():
            return
        remove_created(self.created)

    def interrupted(self) -> int:
        """Clean up after Ctrl-C, say in one line what is kept, and return the exit code."""
        store = self.store
        saved = store.n_done() if store is not None else 0
        if self.stage == "writing":  # every shard is saved: a rerun only builds the tables
            store.release()
            message = (f"interrupted while writing the tables; all {store.n_shards} shards are saved in "
                       f"{store.folder}; run the same command again to finish")
        elif self.stage == "done":
            store.release()
            message = f"interrupted while cleaning up; the results in {self.output_dir} are complete"
        else:
            self.abandon()
            if not saved:
                message = ("interrupted before any shard was complete; nothing was saved" if self.stage == "scoring"
                           else "interrupted while loading, before scoring; nothing was written")
            elif self.stage == "scoring":
                message = (f"interrupted: {saved} of {store.n_shards} shards saved in {store.folder}; run the same "
                           f"command again to resume")
            else:
                message = (f"interrupted while loading; the {saved} shard(s) saved earlier in {store.folder} are "
                           f"kept; run the same command again to resume")
        print(message, file=sys.stderr)
        return INTERRUPTED_EXIT_CODE


@exits_on_user_error
def main(argv: list[str] | None = None) -> int:
    """Run the probe (see the module docstring) and return the exit code.

    Ctrl-C at any moment is one line on stderr and exit code 130. A failure or Ctrl-C before any
    shard is saved leaves nothing behind (the staging folder and the folders made for the output
    are removed); after that the saved shards are kept and the same command resumes from them.
    """
    state = RunState()
    try:
        return probe(argv, state)
    except KeyboardInterrupt:
        return state.interrupted()
    except BaseException:
        state.abandon()
        raise
    finally:
        if state.store is not None:
            state.store.release()


def probe(argv: list[str] | None, state: RunState) -> int:
    """The steps of :func:`main`, recording in ``state`` how far they got."""
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    validate_args(args)
    data = load_language_data(args)
    model_name, source = models.resolve_model(args.finetuned_model, args.model)
    run_name = check_plain_name(args.run_name, "--run_name") if args.run_name is not None else model_name
    output_dir = state.output_dir = Path(args.output_dir) if args.output_dir else PROFILES_DIR / run_name
    claim_output(output_dir, "probing.run", overwrite=args.overwrite)
    state.created = make_parents(output_dir)
    # Why before the model loads: a second run into the same place is refused at once, not after
    # minutes of loading (or, worse, after replacing the first run's result)
    store = state.store = ShardStore(output_dir)
    store.lock()
    device = engine.resolve_device(args.device)

    import torch
    import transformers

    transformers.logging.disable_progress_bar()  # weight-loading bars; ours shows the probing
    torch.manual_seed(args.seed)
    loaded = models.load_masked_lm(model_name, source, revision=args.revision)
    engine.check_top_k(args.top_k, len(loaded.tokenizer))
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
    candidates = build_candidates(args, data, loaded.tokenizer)
    loaded_at = time.perf_counter()
    plan = plan_shards(prompts, args.shard_sentences)
    done = store.open(run_fingerprint(args, loaded, scorer, prompts, plan, candidates), plan, columns=args.top_k)
    resumed = len(done)
    state.stage = "scoring"
    score_shards(scorer, prompts, plan, store, done, args, candidates)

    state.stage = "writing"
    scored_at = time.perf_counter()
    model_info = {
        "name": model_name, "source": source, "revision": loaded.revision,
        "random_weights": loaded.random_weights, "head": loaded.head,
        "class": type(loaded.model).__name__,
        "n_parameters": sum(p.numel() for p in loaded.model.parameters()),
        "dtype": args.precision, "device": str(device),
        "lm_head_at_mask_only": scorer.head is not None,
        "last_layer_at_mask_only": scorer.last_layer_at_mask,
        "onednn_linears": scorer.fast_path,
        "tokenizer_class": type(loaded.tokenizer).__name__,
    }
    forward_passes = scorer.forward_passes
    del scorer, loaded  # the weights are not needed to build the tables: free them first
    gc.collect()
    rows, profiles, manifest = write_results(
        output_dir, argv, args, model_name, model_info, prompts, plan, store, vocab, data, candidates,
        timings={"load_s": loaded_at - started, "score_s": scored_at - loaded_at}, resumed=resumed,
        passes=forward_passes)
    state.stage = "done"
    store.remove()
    covered = int((profiles["n_covered"] > 0).sum())
    shares = ", ".join(f"{lang} {100 * share:.1f}%" for lang, share in manifest["kept_share"].items())
    print(f"wrote {rows} predictions and {len(profiles)} profiles ({covered} with lexicon coverage) to {output_dir}")
    print(f"kept candidates (words of the language, not the group's own): {shares}")
    return 0


def exit_at_once(code: int) -> None:
    """End the process with ``code`` without finalising the interpreter.

    Why: tearing down torch's and transformers' modules takes ~1.7 s at exit, and by the time
    :func:`main` returns every result file is written, closed and renamed into place and every
    shard saved; only the standard streams (and logging) still hold buffered output.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C from here on: main's one line
    exit_at_once(main())
