"""Loading, seeding and saving shared by the analysis commands (no statistics here).

Every analysis folder is written at once (:class:`probing.manifest.AtomicFolder`) and holds its
tidy tables plus ``manifest.json``::

    {
      "schema_version": 1,
      "created": ISO-8601 time (UTC),
      "command": the argv that made it,
      "parameters": every option of the run,
      "seed": int,
      "inputs": [{"path", "sha256", "rows", ...}],   # each input table, with its checksum
      "env": probing.manifest.environment(),
      "outputs": {file name: {"rows", "sha256"}},
      ... command-specific summaries
    }
"""

from __future__ import annotations

import re
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from probing.errors import UserError
from probing.lexicon import EMOTIONS
from probing.manifest import (PROJECT_ROOT, SCHEMA_VERSION, AtomicFolder, check_plain_name, claim_output, environment,
                              now_utc, sha256_file, write_json)

ANALYSIS_DIR = PROJECT_ROOT / "results" / "analysis"


def safe_name(text: str) -> str:
    """``text`` reduced to a file-name-safe slug (letters, digits, ``._-``).

    >>> safe_name("tiny-xlmr vs demo/ft: en")
    'tiny-xlmr_vs_demo_ft_en'
    """
    return re.sub(r"[^0-9A-Za-z._-]+", "_", text).strip("_") or "run"


def output_folder(args, command: str, default_name: str) -> Path:
    """The result folder of an analysis command, checked before any work (:func:`probing.manifest.claim_output`).

    ``args.output_dir`` if given, else ``results/analysis/<args.run_name>`` (a plain folder name) or,
    without ``--run_name``, ``results/analysis/<default_name>`` (made file-name safe). ``command``
    is the module that writes it (``"analysis.correlate"``).
    """
    run_name = getattr(args, "run_name", None)
    if run_name is not None:
        check_plain_name(run_name, "--run_name")
    if args.output_dir:
        target = Path(args.output_dir)
    else:
        target = ANALYSIS_DIR / (run_name or safe_name(default_name))
    claim_output(target, command, overwrite=args.overwrite)
    return target


def find_table(path: str | Path, name: str) -> Path:
    """``path`` itself if it is a file, else ``path/<name>``; a clear error if neither exists."""
    path = Path(path)
    if path.is_dir():
        table = path / name
        if not table.is_file():
            present = sorted(p.name for p in path.iterdir() if p.suffix == ".csv")
            raise UserError(
                f"{path} has no {name} (it has: {', '.join(present) or 'no csv file'}); "
                f"pass a run folder that contains {name}, or the file itself"
            )
        return table
    if not path.is_file():
        raise UserError(f"{path} does not exist; pass a {name} file or a run folder containing one")
    return path


TABLE_FORMATS = {".csv": "CSV", ".tsv": "TSV", ".jsonl": "JSON lines", ".json": "JSON lines",
                 ".parquet": "Parquet"}  # by suffix; any other suffix is read as CSV
FORMAT_HINTS = {
    "CSV": "pass a comma-separated UTF-8 table",
    "TSV": "pass a tab-separated UTF-8 table",
    "JSON lines": "one JSON object a line",
    "Parquet": "pass a Parquet file written by pandas/pyarrow, or a CSV",
}


def read_table(path: Path, *, fmt: str | None = None, **csv_kwargs) -> pd.DataFrame:
    """A CSV, TSV, JSON-lines (``.jsonl``/``.json``) or Parquet file as a DataFrame.

    The format is ``fmt`` (a key of :data:`FORMAT_HINTS`), else the suffix (:data:`TABLE_FORMATS`).
    ``csv_kwargs`` go to :func:`pandas.read_csv` (CSV and TSV only; TSV sets ``sep``); Parquet is
    read with pyarrow. An unreadable or empty file is a :class:`UserError` naming the fix.
    """
    path = Path(path)
    fmt = fmt or TABLE_FORMATS.get(path.suffix.lower(), "CSV")
    errors: tuple[type[BaseException], ...] = (ValueError, OSError)  # parser, encoding and JSON errors too
    try:
        if fmt == "Parquet":
            try:
                import pyarrow
            except ImportError:
                raise UserError(f"reading {path} needs pyarrow; run `pip install pyarrow`") from None
            errors += (pyarrow.ArrowException,)
            table = pd.read_parquet(path, engine="pyarrow")
        elif fmt == "JSON lines":
            table = pd.read_json(path, lines=True, dtype=False)
        else:
            table = pd.read_csv(path, **({"sep": "\t", **csv_kwargs} if fmt == "TSV" else csv_kwargs))
    except errors as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot read {path} as {fmt} ({reason}); {FORMAT_HINTS[fmt]}") from None
    if table.empty:
        raise UserError(f"{path} has no rows")
    return table


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """A CSV as a DataFrame, whatever the suffix; unreadable or empty files are user errors."""
    return read_table(path, fmt="CSV", **kwargs)


def check_bootstrap_options(args) -> None:
    """``--bootstrap`` (resamples, 0 = no intervals) and ``--confidence`` (level in (0, 1)), shared by
    the commands that report bootstrap intervals."""
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if not 0 < args.confidence < 1:
        raise UserError(f"--confidence must be between 0 and 1, got {args.confidence}")


def require_columns(table: pd.DataFrame, columns, path: Path, hint: str = "") -> None:
    """Fail with the missing and the present columns if ``table`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(
            f"{path} lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, table.columns))}"
            + (f"; {hint}" if hint else "")
        )


PROFILE_HINT = "pass the profiles.csv that python -m probing.run wrote"


def check_profiles(table: pd.DataFrame, path: Path, columns=("language", "category", "group_id")) -> list[str]:
    """Refuse a profiles table unless it has ``columns`` and every emotion column of
    :data:`probing.lexicon.EMOTIONS`, each value a number in [0, 1] or empty (an undefined profile).

    The emotion columns are made numeric in place; returns them, in :data:`~probing.lexicon.EMOTIONS` order.
    """
    require_columns(table, [*columns, *EMOTIONS], path, PROFILE_HINT)
    for emotion in EMOTIONS:
        values = pd.to_numeric(table[emotion], errors="coerce")
        empty = table[emotion].isna() | (table[emotion].astype(str).str.strip() == "")
        bad = (~empty & ~values.between(0.0, 1.0)).to_numpy()  # NaN, inf and text fail between
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = str(table[emotion].iloc[row])
            raise UserError(f"{path}: column {emotion}, line {row + 2}, holds {value!r}; profile values must be "
                            f"numbers in [0, 1] (empty: undefined profile); {PROFILE_HINT}")
        table[emotion] = values.where(~empty)
    return list(EMOTIONS)


def completion_mode(manifest: dict) -> str:
    """How a probing run's completions were made, from its ``manifest.json``: ``"word"`` (whole words,
    ``--completions word``) or ``"token"`` (one vocabulary token each). A manifest without
    ``completions`` (every run made before whole-word mode) is a token-mode run.

    >>> completion_mode({"completions": {"mode": "word", "max_pieces": 4}}), completion_mode({})
    ('word', 'token')
    """
    completions = manifest.get("completions") if isinstance(manifest, dict) else None
    mode = completions.get("mode") if isinstance(completions, dict) else None
    return str(mode) if mode else "token"


def completion_label(manifest: dict) -> str:
    """:func:`completion_mode` for tables: ``"word (up to 4 pieces)"`` or ``"token"``.

    >>> completion_label({"completions": {"mode": "word", "max_pieces": 4}})
    'word (up to 4 pieces)'
    """
    mode = completion_mode(manifest)
    pieces = (manifest.get("completions") or {}).get("max_pieces") if mode == "word" else None
    return f"{mode} (up to {pieces} pieces)" if pieces else mode


def lexicon_reach(manifest: dict, language: str) -> str:
    """The run's ``lexicon_reach`` of ``language`` (the share of the lexicon's entries its completions can
    reach) as a percentage, ``"n/a"`` where the manifest does not record it (runs made before it was).

    >>> lexicon_reach({"lexicon_reach": {"en": 0.2612}}, "en"), lexicon_reach({}, "en")
    ('26.1%', 'n/a')
    """
    value = (manifest.get("lexicon_reach") or {}).get(language)
    return f"{100 * float(value):.1f}%" if isinstance(value, (int, float)) else "n/a"


def input_record(path: Path, rows: int, **extra) -> dict:
    return {"path": str(path), "sha256": sha256_file(path), "rows": int(rows), **extra}


def rng_for(seed: int, *key: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and a text key, so that a test's random draws do not depend
    on which other tests run or in what order.

    >>> float(rng_for(0, "a", "b").random()) == float(rng_for(0, "a", "b").random())
    True
    """
    return np.random.default_rng([int(seed), zlib.crc32("\x1f".join(key).encode("utf-8"))])


def command_line(prog: str, argv: list[str] | None) -> list[str]:
    return ["python", "-m", prog, *(argv if argv is not None else sys.argv[1:])]


def save_run(target: Path, tables: dict[str, pd.DataFrame], manifest: dict, files: dict[str, bytes] | None = None,
             *, overwrite: bool = False) -> None:
    """Write ``tables`` (CSV), raw ``files`` and ``manifest.json`` into ``target`` atomically.

    ``manifest`` gets ``schema_version``, ``created``, ``env`` and ``outputs`` (rows and sha256 of
    every table) filled in. Its ``command`` (``["python", "-m", module, ...]``) names the writer whose
    earlier result alone may be replaced, and only with ``overwrite`` (:func:`probing.manifest.claim_output`).
    """
    with AtomicFolder(target, command=manifest["command"][2], overwrite=overwrite) as staging:
        outputs = {}
        for name, table in tables.items():
            table.to_csv(staging / name, index=False)
            outputs[name] = {"rows": len(table), "sha256": sha256_file(staging / name)}
        for name, payload in (files or {}).items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
            outputs[name] = {"sha256": sha256_file(path)}
        full = {"schema_version": SCHEMA_VERSION, "created": now_utc(), **manifest,
                "env": environment(), "outputs": outputs}
        write_json(staging / "manifest.json", full)
