"""Peak resident memory and wall time of ``analysis.correlate`` on a comparison of 2,400 groups.

Run with ``make bench``, or::

    .venv/bin/python benchmarks/correlate_scale.py [--categories 120] [--groups_per_category 20]
        [--extra ...] [--keep] [--no-check]

What it measures
----------------
* Two synthetic ``profiles.csv`` files (a reference and an "other" model) in a temp folder: one
  language, ``--categories`` categories of ``--groups_per_category`` groups (default 120 x 20 =
  2,400 groups, the size issue 20 reported killed for memory on a 24 GB machine), the 10 emotion
  columns. Each group's profile is a logistic transform of its category's latent vector plus the
  group's own, seen by each model through its own noise (so both models agree, partly through
  the categories), values in (0, 1).
* The real command line at its default options (every method, the default numbers of
  permutations and bootstrap resamples), a separate child process::

      python -m analysis.correlate <tmp>/reference <tmp>/other --output_dir <tmp>/run

  and, as the baseline, the same command with ``--permutations 0 --bootstrap 0`` (imports, the
  input tables, alignment and the point statistics, including the two 2,400 x 2,400 similarity
  matrices of RSA; no resampling).
* Peak RSS exactly, not sampled (``os.wait4``'s ``ru_maxrss``, ``benchmarks/measure.py``); wall
  time and the child's CPU time (user + system, from the same ``rusage``). GB = 10^9 bytes.

Target (checked unless ``--no-check``; exit status 1 if it fails)
------------------------------------------------------------------
* peak RSS of the default run at most the baseline's + 1 GB (``EXTRA_LIMIT_GB``): permutations
  and resamples are processed in chunks sized to the number of groups
  (``analysis.correlations.CHUNK_BYTES``), so their memory does not grow with their number.

The wall time is printed, not checked (it depends on the machine's load). Measured on the shared
2-core machine (December 2026): see ``analysis/README.md``, section Correlations.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import GB, load_average, run_measured  # noqa: E402

EXTRA_LIMIT_GB = 1.0


def write_profiles(folder: Path, n_categories: int, per_category: int, seed: int = 0) -> None:
    """``folder/reference/profiles.csv`` and ``folder/other/profiles.csv`` of the same groups."""
    from probing.lexicon import EMOTIONS

    rng = np.random.default_rng(seed)
    d = len(EMOTIONS)
    category = np.repeat(np.arange(n_categories), per_category)
    latent = rng.normal(size=(n_categories, d))[category] + 0.7 * rng.normal(size=(len(category), d))
    for model in ("reference", "other"):
        values = 1 / (1 + np.exp(-(latent + 0.7 * rng.normal(size=latent.shape))))
        table = pd.DataFrame(values, columns=list(EMOTIONS))
        table.insert(0, "model", model)
        table.insert(1, "language", "en")
        table.insert(2, "category", [f"category_{k:03d}" for k in category])
        table.insert(3, "group_id", [f"group_{g:05d}" for g in range(len(category))])
        table.insert(4, "group", table["group_id"])
        (folder / model).mkdir(parents=True)
        table.to_csv(folder / model / "profiles.csv", index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--categories", type=int, default=120, help="categories (default 120)")
    parser.add_argument("--groups_per_category", type=int, default=20, help="groups per category (default 20)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further options for the measured run (e.g. --permutations 200); default: none")
    parser.add_argument("--keep", action="store_true", help="keep the inputs, outputs and logs")
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                        help="check the memory target, exit status 1 if it fails (default: on)")
    args = parser.parse_args(argv)
    if args.categories < 1 or args.groups_per_category < 3:
        parser.error("--categories must be at least 1 and --groups_per_category at least 3")

    tmp = Path(tempfile.mkdtemp(prefix="correlate_scale-"))
    n_groups = args.categories * args.groups_per_category
    try:
        write_profiles(tmp, args.categories, args.groups_per_category)
        inputs = [str(tmp / "reference"), str(tmp / "other")]
        size = sum((tmp / model / "profiles.csv").stat().st_size for model in ("reference", "other"))
        print(f"python -m analysis.correlate on {n_groups:,} groups ({args.categories} categories of "
              f"{args.groups_per_category}, one language, 10 emotions; inputs {size / 1e6:.1f} MB); outputs in {tmp}")
        runs = {}
        for name, options in (("baseline", ["--permutations", "0", "--bootstrap", "0"]), ("default", args.extra)):
            load = load_average()
            command = [sys.executable, "-m", "analysis.correlate", *inputs, "--output_dir", str(tmp / name), *options]
            run = run_measured(command, log_dir=tmp / "logs", name=name)
            if run.returncode != 0:
                print(f"FAILED: the {name} run exited with {run.returncode}:\n{run.tail()}", file=sys.stderr)
                return 1
            print(f"  {name:8s} ({' '.join(options) or 'default options'}): {run.wall_s:.1f} s wall, "
                  f"{run.cpu_s:.1f} s CPU, peak RSS {run.peak_rss / GB:.3f} GB (load average before: {load}); "
                  f"{run.stdout.strip()}")
            runs[name] = run
        extra = (runs["default"].peak_rss - runs["baseline"].peak_rss) / GB
        line = (f"peak RSS above the baseline (inputs, imports, point statistics): {extra:.3f} GB "
                f"<= {EXTRA_LIMIT_GB} GB")
        if not args.check:
            print(f"  ----  {line} (--no-check)")
            return 0
        print(f"  {'PASS' if extra <= EXTRA_LIMIT_GB else 'FAIL'}  {line}")
        return 0 if extra <= EXTRA_LIMIT_GB else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
