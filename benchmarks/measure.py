"""Run a command as a child process and measure its wall time and exact peak resident memory.

Shared by ``probe_memory.py`` and ``probe_speed.py --end_to_end``. The peak comes from the
kernel's own accounting: ``os.wait4`` returns the finished child's ``rusage``, whose
``ru_maxrss`` is the largest resident set the child (and any child it waited for) ever had,
in KiB on Linux and bytes on macOS. Nothing is sampled, so no short spike is missed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GB = 1e9  # reported sizes are decimal: 1 GB = 10^9 bytes (stricter than GiB for a limit)


@dataclass
class ChildRun:
    command: list[str]
    returncode: int
    wall_s: float
    peak_rss: int  # bytes
    stdout: str
    stderr: str
    timings: dict = field(default_factory=dict)  # the run's manifest "timings", when read
    cpu_s: float = 0.0  # the child's user + system CPU seconds (same rusage)

    def tail(self, lines: int = 15) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(f"    {line}" for line in text[-lines:])


def child_env(**extra: str) -> dict[str, str]:
    """The parent's environment with ``HF_HUB_OFFLINE=1`` (as ``make demo`` runs the CLI)."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def run_measured(command: list[str], *, log_dir: Path, name: str, env: dict[str, str] | None = None,
                 cwd: Path = ROOT) -> ChildRun:
    """Run ``command`` to completion; stdout/stderr go to ``log_dir/name.{stdout,stderr}``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env if env is not None else child_env(),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
    peak = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return ChildRun(command=command, returncode=process.returncode, wall_s=wall, peak_rss=peak,
                    stdout=out_path.read_text(encoding="utf-8", errors="replace"),
                    stderr=err_path.read_text(encoding="utf-8", errors="replace"),
                    cpu_s=usage.ru_utime + usage.ru_stime)


def warm_lemma_tries(languages: list[str] | None) -> float:
    """Build the lemma tries of ``languages`` (None: every language in prompts/) if this machine
    has none yet, as the first run that probes a language does once (``probing.words``); returns
    the seconds it took. Measured runs are then timed as every later run is, not the first one."""
    from probing.prompts import load_languages
    from probing.words import known_lemma

    start = time.perf_counter()
    for prompts in load_languages(languages).values():
        known_lemma("x", prompts.lemmatizer)
    return time.perf_counter() - start


COMPLETIONS = ("word", "token")


def probe_command(model: str, output_dir: Path, *, languages: list[str] | None, top_k: int, completions: str,
                  categories: list[str] | None = None, run_name: str | None = None) -> list[str]:
    """``python -m probing.run ... --completions word|token`` with this interpreter; ``languages=None``:
    every language. ``completions`` is required: every benchmark says which mode it measures."""
    if completions not in COMPLETIONS:
        raise ValueError(f"completions must be one of {COMPLETIONS}, got {completions!r}")
    command = [sys.executable, "-m", "probing.run", "--model", model, "--top_k", str(top_k),
               "--completions", completions, "--output_dir", str(output_dir), "--quiet"]
    if languages:
        command += ["--languages", *languages]
    if categories:
        command += ["--categories", *categories]
    if run_name:
        command += ["--run_name", run_name]
    return command


def prediction_rows(output_dir: Path) -> int | None:
    """Rows of the run's predictions table as its ``manifest.json`` records them (None if absent)."""
    try:
        outputs = json.loads((output_dir / "manifest.json").read_text(encoding="utf-8")).get("outputs", {})
    except (OSError, ValueError):
        return None
    for name in ("predictions.parquet", "predictions.csv", *sorted(outputs)):
        entry = outputs.get(name)
        if name.startswith("predictions") and isinstance(entry, dict) and isinstance(entry.get("rows"), int):
            return entry["rows"]
    return None


def run_timings(output_dir: Path) -> dict:
    """The phase timings (wall seconds) the run's ``manifest.json`` records, or {}."""
    try:
        return json.loads((output_dir / "manifest.json").read_text(encoding="utf-8")).get("timings", {})
    except (OSError, ValueError):
        return {}


def run_completions(output_dir: Path) -> dict:
    """The run's ``manifest.json`` ``completions`` record (``mode``, ``forward_passes``, ...), or {}."""
    try:
        return json.loads((output_dir / "manifest.json").read_text(encoding="utf-8")).get("completions", {})
    except (OSError, ValueError):
        return {}


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"
