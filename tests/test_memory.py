"""Peak memory of a probing run does not grow with the number of sentences it scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_bytes(argv: list[str], tmp_path: Path) -> tuple[int, int]:
    """``(peak resident bytes, sentences)`` of one ``python -m probing.run`` child process."""
    log = open(tmp_path / "log.txt", "w")
    process = subprocess.Popen([sys.executable, "-m", "probing.run", *argv], cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, status, usage = os.wait4(process.pid, 0)
    log.close()
    assert os.waitstatus_to_exitcode(status) == 0, (tmp_path / "log.txt").read_text()
    out = Path(argv[argv.index("--output_dir") + 1])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    rows = manifest["outputs"]["predictions.parquet"]["rows"]
    return usage.ru_maxrss * 1024, rows // manifest["parameters"]["top_k"]


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 (POSIX) to read a child's peak RSS")
def test_peak_memory_does_not_grow_with_sentences(tiny_dir, tmp_path):
    """Before the engine reused its buffers, each batch of 32 left ~32 MB behind (1900 sentences:
    ~1.9 GB more than 100); now the peak may only grow by the larger run's own outputs."""
    common = ["--model", "tiny-xlmr", "--completions", "token", "--languages", "en", "--top_k", "200", "--batch_size", "32", "--quiet"]
    small, n_small = peak_rss_bytes([*common, "--categories", "religion", "--output_dir", str(tmp_path / "s")],
                                    tmp_path)
    large, n_large = peak_rss_bytes([*common, "--output_dir", str(tmp_path / "l")], tmp_path)
    assert n_large >= 15 * n_small
    assert large - small < 200e6, f"peak grew from {small / 1e9:.2f} GB ({n_small} sentences) " \
                                  f"to {large / 1e9:.2f} GB ({n_large} sentences)"
