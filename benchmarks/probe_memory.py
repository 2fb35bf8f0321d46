"""Peak resident memory and wall time of the probing CLI on tiny-xlmr: 2 and 8 languages, token and word mode.

Run with ``make bench``, or::

    .venv/bin/python benchmarks/probe_memory.py [--languages_small en fr] [--languages_large ...]
        [--top_k 200] [--categories ...] [--keep] [--no-check] [--no-time-check]

What it measures
----------------
* The real command line, end to end (Python start-up, imports, loading prompts, lexicons and the
  model, probing, writing the tables), each run a separate child process::

      python -m probing.run --model tiny-xlmr --top_k 200 --completions token|word [--languages ...] \\
          --output_dir <temp dir>/<run> --run_name <run> --quiet      # with HF_HUB_OFFLINE=1

  once for ``--languages_small`` (default ``en fr``) and once for ``--languages_large`` (default:
  the option left out, i.e. every language in ``prompts/``, all eight, as ``make demo`` probes),
  first in token mode (one token at one mask, the single-token studies' mode), then in word mode
  (the CLI's default: whole words of each language's candidate set, 31,000-80,000 words, scored by
  the chain rule over their pieces; ``probing/candidates.py``, ``probing/word_scoring.py``): four
  measured runs. A warm-up run first (word mode, one language, one category, ``--top_k 1``; not
  checked) builds tiny-xlmr on first use and fills the file cache (model, prompts, lexicons, word
  lists, simplemma's dictionaries), and the lemma tries of every language are built if this
  machine has none yet (``probing.words``: once per simplemma version, as the first run that
  probes a language does), so no measured run pays for that.
* Peak RSS exactly, not sampled: the child is started with ``subprocess.Popen`` and reaped with
  ``os.wait4(pid, 0)``, whose ``ru_maxrss`` (KiB on Linux) is the child's peak resident set
  (``benchmarks/measure.py``). Wall time is measured from the start to the same call.
  GB = 10^9 bytes.
* One line per run: its mode and languages, the sentences it probes (counted from
  ``probing.prompts``, as the CLI renders them) and the prediction rows its ``manifest.json``
  records, wall seconds, peak RSS and the phase ``timings`` of its manifest; for word mode also the
  manifest's ``completions.forward_passes`` (in all and per sentence) and candidate set sizes. The
  load average before each run is printed too (timings assume an idle machine). Then the ratio of
  the word-mode to the token-mode wall time of the large run.

Targets (checked unless ``--no-check``; exit status 1 if one fails)
--------------------------------------------------------------------
* in each mode, peak RSS of the large (8-language) run at most 2.5 GB;
* token mode: peak RSS grows by less than 10% from the small run to the large one;
* word mode: peak RSS grows by less than 25% (``WORD_GROWTH_LIMIT``) from the small run to the
  large one. Not 10% as in token mode: a word-mode run keeps every probed language's candidate
  set for the whole run (packed as Arrow columns, ~40 bytes a word: 446,000 words for the eight
  languages against 79,000 for en+fr), and builds the larger sets of the other languages (72,000
  words for Portuguese) from their word lists and dictionaries, one language at a time. Measured
  on the 2-core machine (December 2026, ``--categories religion``): 1.18 GB for en+fr, 1.38 GB
  for the eight, +17% (before the sets were packed and the lemma caches emptied between
  languages: 1.28 and 1.79 GB, +39%). The 2.5 GB peak is the binding target.
* token mode: wall time of the large run under 30 s (the demo's probing run of tiny-xlmr on every
  language in the single-token mode);
* word mode: wall time of the large run at most 5x the token-mode large run's (the cost target of
  whole-word completions on the 2-core machine);
* token mode: writing the large run's ``predictions.parquet`` under 2 s (the manifest records it).

The two wall-time targets hold for a machine with nothing else running: ``--no-time-check`` skips
them.

``--categories`` passes a subset of categories to every run and ``--languages_large`` restricts
the large run, for quick smoke tests of the script; the targets are meant for the defaults.
Outputs go to a temp dir, removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import (GB, load_average, prediction_rows, probe_command, run_completions, run_measured,  # noqa: E402
                     run_timings, warm_lemma_tries)

MODEL = "tiny-xlmr"
PEAK_LIMIT_GB = 2.5
GROWTH_LIMIT = 0.10
TIME_LIMIT_S = 30.0
WRITE_LIMIT_S = 2.0  # writing predictions.parquet of the large run (manifest "timings")
WORD_GROWTH_LIMIT = 0.25  # word mode: peak RSS growth, small run to large (structural: see the docstring)
WORD_TIME_RATIO = 5.0  # word mode's large run at most this many times token mode's wall time
MODES = ("token", "word")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def count_sentences(languages: list[str] | None, categories: list[str] | None) -> tuple[list[str], int]:
    """``(language codes, sentences)`` the CLI probes for these options (None: every language)."""
    from probing.prompts import build_prompts, load_languages

    loaded = load_languages(languages)
    total = sum(len(build_prompts(p, mask_token="<mask>", categories=categories)) for p in loaded.values())
    return list(loaded), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--languages_small", nargs="+", default=["en", "fr"], metavar="LANG",
                        help="languages of the small run (default: en fr)")
    parser.add_argument("--languages_large", nargs="+", default=None, metavar="LANG",
                        help="languages of the large run (default: --languages left out, every language)")
    parser.add_argument("--top_k", type=int, default=200, help="candidates per sentence (default 200)")
    parser.add_argument("--categories", nargs="+", default=None, metavar="CATEGORY",
                        help="passed to every run (for smoke tests; default: all categories)")
    parser.add_argument("--keep", action="store_true", help="keep the runs' output folders and logs")
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                        help="check the targets, exit status 1 if one fails (default: on)")
    parser.add_argument("--time-check", dest="time_check", action=argparse.BooleanOptionalAction, default=True,
                        help="include the 30 s wall-time target (default: on; it assumes an otherwise idle machine)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")

    small_langs, small_n = count_sentences(args.languages_small, args.categories)
    large_langs, large_n = count_sentences(args.languages_large, args.categories)
    restricted = args.categories is not None or args.languages_large is not None
    tmp = Path(tempfile.mkdtemp(prefix="probe_memory-"))
    print(f"python -m probing.run --model {MODEL} --top_k {args.top_k}"
          f"{' --categories ' + ' '.join(args.categories) if args.categories else ''}, one child process per run; "
          f"outputs in {tmp}")
    failures: list[str] = []
    try:
        from probing.prompts import CATEGORIES

        print(f"  lemma tries of {len(large_langs)} languages ready in {warm_lemma_tries(large_langs):.1f} s (not counted)")
        warm = run_measured(
            probe_command(MODEL, tmp / "warmup", languages=small_langs[:1], top_k=1, completions="word",
                          categories=(args.categories or list(CATEGORIES))[:1], run_name="warmup"),
            log_dir=tmp / "logs", name="warmup")
        print(f"  warm-up (word mode, {small_langs[0]}, 1 category, top_k 1): {warm.wall_s:.1f} s, "
              f"peak RSS {warm.peak_rss / GB:.2f} GB (not checked)")
        if warm.returncode != 0:
            print(f"FAILED: the warm-up run exited with {warm.returncode}:\n{warm.tail()}", file=sys.stderr)
            return 1

        runs = {}
        for mode in MODES:
            for label, languages, n_sentences, option in (
                ("small", small_langs, small_n, args.languages_small),
                ("large", large_langs, large_n, args.languages_large),
            ):
                run_name = f"memory-{mode}-{label}"
                load = load_average()
                run = run_measured(probe_command(MODEL, tmp / run_name, languages=option, top_k=args.top_k,
                                                 completions=mode, categories=args.categories, run_name=run_name),
                                   log_dir=tmp / "logs", name=run_name)
                if run.returncode != 0:
                    print(f"FAILED: the {mode}-mode {label} run exited with {run.returncode}:\n{run.tail()}",
                          file=sys.stderr)
                    return 1
                rows = prediction_rows(tmp / run_name)
                run.timings = run_timings(tmp / run_name)
                completions = run_completions(tmp / run_name)
                phases = ", ".join(f"{name[:-2]} {value:.1f} s" for name, value in run.timings.items())
                extra = ""
                if mode == "word":
                    sizes = {lang: c.get("n") for lang, c in completions.get("candidates", {}).items()}
                    passes = completions.get("forward_passes")
                    extra = (f"; {passes} forward passes ({passes / n_sentences:.2f} per sentence)"
                             if isinstance(passes, int) and n_sentences else "")
                    if sizes:
                        extra += (f"; candidates {min(sizes.values()):,}-{max(sizes.values()):,} words per language, "
                                  f"{sum(sizes.values()):,} in all")
                print(f"  {mode:5s} {plural(len(languages), 'language')} ({' '.join(languages)}): {n_sentences} "
                      f"sentences{'' if rows is None else f', {rows} prediction rows'}, {run.wall_s:.1f} s, "
                      f"peak RSS {run.peak_rss / GB:.3f} GB (load average before: {load})"
                      f"{f'; {phases}' if phases else ''}{extra}")
                runs[mode, label] = run

        token_large = runs["token", "large"]
        ratio = runs["word", "large"].wall_s / token_large.wall_s
        print(f"  word/token wall time, {plural(len(large_langs), 'language')}: "
              f"{runs['word', 'large'].wall_s:.1f} s / {token_large.wall_s:.1f} s = {ratio:.2f}x")
        print()
        note = ", restricted run: the targets are meant for the defaults"
        print(f"summary (top_k {args.top_k}{note if restricted else ''})")
        checks = []
        for mode in MODES:
            small, large = runs[mode, "small"], runs[mode, "large"]
            growth = (large.peak_rss - small.peak_rss) / small.peak_rss
            growth_limit = GROWTH_LIMIT if mode == "token" else WORD_GROWTH_LIMIT
            checks += [
                (f"{mode} mode, peak RSS, {plural(len(large_langs), 'language')}: {large.peak_rss / GB:.3f} GB "
                 f"<= {PEAK_LIMIT_GB} GB", large.peak_rss <= PEAK_LIMIT_GB * GB),
                (f"{mode} mode, peak RSS growth from {plural(len(small_langs), 'language')} to {len(large_langs)}: "
                 f"{growth:+.1%} < {growth_limit:.0%}", growth < growth_limit),
            ]
        checks += [
            (f"token mode, wall time, {plural(len(large_langs), 'language')}: {token_large.wall_s:.1f} s < "
             f"{TIME_LIMIT_S:.0f} s (alone on the machine; load average now {load_average()})",
             token_large.wall_s < TIME_LIMIT_S if args.time_check else None),  # None: skipped
            (f"word mode, wall time, {plural(len(large_langs), 'language')}: {ratio:.2f}x token mode's <= "
             f"{WORD_TIME_RATIO:.0f}x (alone on the machine)", ratio <= WORD_TIME_RATIO if args.time_check else None),
            (f"token mode, writing predictions.parquet, {plural(len(large_langs), 'language')}: "
             f"{token_large.timings.get('write_predictions_s', float('nan')):.2f} s < {WRITE_LIMIT_S:.0f} s",
             token_large.timings.get("write_predictions_s", float("inf")) < WRITE_LIMIT_S),
        ]
        for line, ok in checks:
            if ok is None:
                print(f"  SKIP  {line} (--no-time-check)")
            elif args.check:
                print(f"  {'PASS' if ok else 'FAIL'}  {line}")
                if not ok:
                    failures.append(line)
            else:
                print(f"  ----  {line} (--no-check)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"FAILED: {len(failures)} of the memory/time targets", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
