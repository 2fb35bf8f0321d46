"""Peak resident memory and wall time of the probing CLI on tiny-xlmr, for 2 and for 8 languages.

Run with ``make bench``, or::

    .venv/bin/python benchmarks/probe_memory.py [--languages_small en fr] [--languages_large ...]
        [--top_k 200] [--categories ...] [--keep] [--no-check] [--no-time-check]

What it measures
----------------
* The real command line, end to end (Python start-up, imports, loading prompts, lexicons and the
  model, probing, writing the tables), each run a separate child process::

      python -m probing.run --model tiny-xlmr --top_k 200 [--languages ...] \\
          --output_dir <temp dir>/<run> --run_name <run> --quiet      # with HF_HUB_OFFLINE=1

  once for ``--languages_small`` (default ``en fr``) and once for ``--languages_large`` (default:
  the option left out, i.e. every language in ``prompts/``, all eight, as ``make demo`` probes).
  A warm-up run first (one language, one category, ``--top_k 1``; not checked) builds tiny-xlmr
  on first use and fills the file cache, and the lemma tries of every language are built if
  this machine has none yet (``probing.words``: once per simplemma version, as the first run that
  probes a language does), so neither measured run pays for that.
* Peak RSS exactly, not sampled: the child is started with ``subprocess.Popen`` and reaped with
  ``os.wait4(pid, 0)``, whose ``ru_maxrss`` (KiB on Linux) is the child's peak resident set
  (``benchmarks/measure.py``). Wall time is measured from the start to the same call.
  GB = 10^9 bytes.
* One line per run: its languages, the sentences it probes (counted from ``probing.prompts``, as
  the CLI renders them) and the prediction rows its ``manifest.json`` records, wall seconds and
  peak RSS; the load average before each run is printed too (timings assume an idle machine).

Targets (checked unless ``--no-check``; exit status 1 if one fails)
--------------------------------------------------------------------
* peak RSS of the large (8-language) run at most 2.5 GB;
* peak RSS grows by less than 10% from the small run to the large one;
* wall time of the large run under 30 s (the demo's probing run of tiny-xlmr on every language;
  the target holds for a machine with nothing else running: ``--no-time-check`` skips it);
* writing the large run's ``predictions.parquet`` under 2 s (the run's manifest records it).

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

from measure import (GB, load_average, prediction_rows, probe_command, run_measured, run_timings,  # noqa: E402
                     warm_lemma_tries)

MODEL = "tiny-xlmr"
PEAK_LIMIT_GB = 2.5
GROWTH_LIMIT = 0.10
TIME_LIMIT_S = 30.0
WRITE_LIMIT_S = 2.0  # writing predictions.parquet of the large run (manifest "timings")


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
            probe_command(MODEL, tmp / "warmup", languages=small_langs[:1], top_k=1,
                          categories=(args.categories or list(CATEGORIES))[:1], run_name="warmup"),
            log_dir=tmp / "logs", name="warmup")
        print(f"  warm-up ({small_langs[0]}, 1 category, top_k 1): {warm.wall_s:.1f} s, "
              f"peak RSS {warm.peak_rss / GB:.2f} GB (not checked)")
        if warm.returncode != 0:
            print(f"FAILED: the warm-up run exited with {warm.returncode}:\n{warm.tail()}", file=sys.stderr)
            return 1

        runs = {}
        for label, languages, n_sentences, option in (
            ("small", small_langs, small_n, args.languages_small),
            ("large", large_langs, large_n, args.languages_large),
        ):
            run_name = f"memory-{label}"
            load = load_average()
            run = run_measured(probe_command(MODEL, tmp / run_name, languages=option, top_k=args.top_k,
                                             categories=args.categories, run_name=run_name),
                               log_dir=tmp / "logs", name=run_name)
            if run.returncode != 0:
                print(f"FAILED: the {label} run exited with {run.returncode}:\n{run.tail()}", file=sys.stderr)
                return 1
            rows = prediction_rows(tmp / run_name)
            run.timings = run_timings(tmp / run_name)
            phases = ", ".join(f"{name[:-2]} {value:.1f} s" for name, value in run.timings.items())
            print(f"  {plural(len(languages), 'language')} ({' '.join(languages)}): {n_sentences} sentences"
                  f"{'' if rows is None else f', {rows} prediction rows'}, {run.wall_s:.1f} s, "
                  f"peak RSS {run.peak_rss / GB:.3f} GB (load average before: {load})"
                  f"{f'; {phases}' if phases else ''}")
            runs[label] = run

        small, large = runs["small"], runs["large"]
        growth = (large.peak_rss - small.peak_rss) / small.peak_rss
        print()
        note = ", restricted run: the targets are meant for the defaults"
        print(f"summary (top_k {args.top_k}{note if restricted else ''})")
        checks = [
            (f"peak RSS, {plural(len(large_langs), 'language')}: {large.peak_rss / GB:.3f} GB <= {PEAK_LIMIT_GB} GB",
             large.peak_rss <= PEAK_LIMIT_GB * GB),
            (f"peak RSS growth from {plural(len(small_langs), 'language')} to {len(large_langs)}: {growth:+.1%} < "
             f"{GROWTH_LIMIT:.0%}", growth < GROWTH_LIMIT),
            (f"wall time, {plural(len(large_langs), 'language')}: {large.wall_s:.1f} s < {TIME_LIMIT_S:.0f} s "
             f"(alone on the machine; load average now {load_average()})",
             large.wall_s < TIME_LIMIT_S if args.time_check else None),  # None: skipped
            (f"writing predictions.parquet, {plural(len(large_langs), 'language')}: "
             f"{large.timings.get('write_predictions_s', float('nan')):.2f} s < {WRITE_LIMIT_S:.0f} s",
             large.timings.get("write_predictions_s", float("inf")) < WRITE_LIMIT_S),
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
