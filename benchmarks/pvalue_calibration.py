"""Power and calibration of ``analysis.correlate``'s p-values at the scale of a real run.

Run with::

    .venv/bin/python benchmarks/pvalue_calibration.py [--replicates 40] [--seed 0]

What it measures
----------------
Each simulated run mirrors the demo's: two inputs of 8 languages x 9 categories of 42 groups
(378 groups per language) with 10 emotions; ``analysis.correlate`` makes 960 tests (per language
10 rows per method: 9 categories and ``all``; ``spearman``, ``rsa`` and ten ``emotion`` rows).
Profiles are independent uniform draws in [0, 1] (the global null: OTHER's groups carry no
information about BASE's), except where an effect is planted.

(a) **Four clear true effects.** In four (language, category, emotion) cells OTHER's column is
    ``0.51 * BASE + 0.49 * U`` (Spearman's rho about 0.72 across the 42 groups, against a chance
    level about 0); the other 956 tests are null (the pooled ``all`` rows of the same language
    and emotion inherit a diluted effect and are not counted as false). Reported: the planted
    tests' p, adjusted p and significance under the default settings, and under the settings the
    issue found wanting (``--permutations 1000 --exceedances 0 --bh_family run``).
(b) **Global null.** ``--replicates`` runs without effects at the default settings: per BH
    family the false-discovery proportion (1 if the family rejects anything, else 0: under the
    global null every rejection is false) averaged over runs, which Benjamini-Hochberg bounds by
    alpha = 0.05 within each family; the same for the whole run (three families together may
    reject more often than one); and the validity of the p-values themselves,
    ``P(p <= a)`` for a = 0.01, 0.05, 0.1 over all null tests (at most a, up to Monte Carlo error),
    with the mean permutations a null test used.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import correlate
from probing.lexicon import EMOTIONS

LANGUAGES = ["de", "el", "en", "es", "fr", "it", "nl", "pt"]
CATEGORIES = [f"category{k}" for k in range(9)]
PER_CATEGORY = 42
WEIGHT = 0.51  # OTHER = w BASE + (1 - w) U: rho = w / sqrt(w^2 + (1 - w)^2) = 0.72 for uniform BASE and U
PLANTED = [("de", "category0", EMOTIONS[0]), ("en", "category3", EMOTIONS[4]), ("fr", "category5", EMOTIONS[7]),
           ("nl", "category8", EMOTIONS[9])]


def simulated_inputs(rng: np.random.Generator, planted=()) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys = pd.DataFrame([(language, category, f"{category}-g{g}") for language in LANGUAGES
                         for category in CATEGORIES for g in range(PER_CATEGORY)],
                        columns=["language", "category", "group_id"])
    base = rng.random((len(keys), len(EMOTIONS)))
    other = rng.random((len(keys), len(EMOTIONS)))
    for language, category, emotion in planted:
        rows = ((keys["language"] == language) & (keys["category"] == category)).to_numpy()
        d = EMOTIONS.index(emotion)
        other[rows, d] = WEIGHT * base[rows, d] + (1 - WEIGHT) * other[rows, d]
    frame = lambda values: keys.assign(group=keys["group_id"], **dict(zip(EMOTIONS, values.T)))  # noqa: E731
    return frame(base), frame(other)


def correlate_run(base: pd.DataFrame, other: pd.DataFrame, *options: str) -> tuple[pd.DataFrame, float]:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name, table in (("base", base), ("other", other)):
            (folder / name).mkdir()
            table.to_csv(folder / name / "profiles.csv", index=False)
        started = time.process_time()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = correlate.main([str(folder / "base"), str(folder / "other"), "--bootstrap", "0",
                                   "--output_dir", str(folder / "out"), *options])
        assert code == 0
        seconds = time.process_time() - started
        table = pd.read_csv(folder / "out" / "correlations.csv", keep_default_na=False, na_values=[""])
    return table, seconds


def planted_rows(table: pd.DataFrame) -> pd.DataFrame:
    keys = set(PLANTED)
    mask = [(row.language, row.category, row.emotion) in keys for row in table.itertuples()]
    return table[mask]


def affected(table: pd.DataFrame) -> np.ndarray:
    """Planted rows and the pooled rows of the same language and emotion (they hold the effect too)."""
    cells = set(PLANTED) | {(language, correlate.ALL_CATEGORIES, emotion) for language, _, emotion in PLANTED}
    return np.array([(row.language, row.category, row.emotion) in cells for row in table.itertuples()])


def four_effects(seed: int) -> None:
    base, other = simulated_inputs(np.random.default_rng(seed), PLANTED)
    print("(a) four planted effects among 960 tests")
    for label, options in (("defaults (h = 20, B per family, BH per comparison and method)", ()),
                           ("--permutations 1000 --exceedances 0 --bh_family run",
                            ("--permutations", "1000", "--exceedances", "0", "--bh_family", "run"))):
        table, seconds = correlate_run(base, other, *options)
        rows = planted_rows(table)
        false = table["significant"].to_numpy(dtype=bool) & ~affected(table)
        print(f"  {label}: {len(table)} tests, {seconds:.0f} s CPU")
        for row in rows.itertuples():
            print(f"    {row.language} {row.category} {row.emotion}: rho {row.rho:.2f} "
                  f"(null mean {row.null_mean:.3f}), "
                  f"p {row.p:.2g}, p_adjusted {row.p_adjusted:.2g} [{row.bh_family}], significant {row.significant}, "
                  f"{row.n_permutations} permutations")
        print(f"    planted significant: {int(rows['significant'].sum())}/4; other significant rows: "
              f"{int(table['significant'].sum()) - int(rows['significant'].sum())} ({int(false.sum())} false)")


def global_null(seed: int, replicates: int) -> None:
    rng = np.random.default_rng(seed + 1)
    family_fdp, run_fdp, p_values, used, seconds = [], [], [], [], []
    for _ in range(replicates):
        table, cpu = correlate_run(*simulated_inputs(rng))
        seconds.append(cpu)
        rejected = table.groupby("bh_family")["significant"].any()
        family_fdp += rejected.astype(float).tolist()
        run_fdp.append(float(rejected.any()))
        tested = table["p"].notna()
        p_values.append(table.loc[tested, "p"].to_numpy())
        used.append(table.loc[tested, "n_permutations"].to_numpy(dtype=float))
    p_values, used = np.concatenate(p_values), np.concatenate(used)
    family_fdp, run_fdp = np.array(family_fdp), np.array(run_fdp)
    se = lambda x: np.sqrt(x.mean() * (1 - x.mean()) / len(x))  # noqa: E731
    print(f"(b) global null, {replicates} runs of 960 tests at the defaults ({np.mean(seconds):.0f} s CPU per run)")
    print(f"  FDP per BH family (mean over {len(family_fdp)} families): {family_fdp.mean():.3f} "
          f"(+- {se(family_fdp):.3f}); whole run: {run_fdp.mean():.3f} (+- {se(run_fdp):.3f})")
    print("  P(p <= a) over " + f"{len(p_values)} null tests: " + ", ".join(
        f"a = {a}: {np.mean(p_values <= a):.4f}" for a in (0.01, 0.05, 0.1, 0.5)))
    print(f"  permutations per null test: mean {used.mean():.0f}, median {np.median(used):.0f}, "
          f"95th percentile {np.percentile(used, 95):.0f}, max {used.max():.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=40, help="global-null runs (default: 40)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    four_effects(args.seed)
    global_null(args.seed, args.replicates)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
